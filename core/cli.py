"""The ``easel`` command line: headless runs of the same pipelines the desktop app uses.

``easel`` with no subcommand opens the desktop app; with a subcommand it never imports Qt.
Exit codes: 0 ok, 1 internal error (or failed verification), 2 bad input, 130 cancelled.
Errors are one line on stderr; ``EASEL_DEBUG=1`` adds the traceback.

Heavy modules (torch, the pipelines) are imported inside the subcommands, so ``--help`` and
``--version`` answer at once.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from core.imageio import versions
from core.jobs import MAX_SEED

PROG = "easel"


class CliError(Exception):
    """Bad input noticed by the command line itself (exit code 2)."""


# --------------------------------------------------------------------------- versions


def version_text() -> str:
    """A few lines naming every version (the About box and ``easel info`` show it)."""
    labels = {"easel": "Easel", "python": "Python", "torch": "PyTorch", "numpy": "NumPy",
              "pillow": "Pillow", "safetensors": "safetensors", "pyside6": "PySide6"}
    return "\n".join(f"{labels[k]} {v or 'not installed'}" for k, v in versions().items())


# --------------------------------------------------------------------------- progress


class ProgressBar:
    """A one-line ``\\r`` progress bar with percent, ETA and the step's message."""

    def __init__(self, stream: TextIO, width: int = 24) -> None:
        self.stream = stream
        self.width = width
        self.t0 = time.monotonic()
        self._last_draw = 0.0
        self._last_len = 0

    def __call__(self, p: Any) -> None:  # p: core.jobs.Progress
        now = time.monotonic()
        if now - self._last_draw < 0.1 and p.step < p.total:
            return  # redrawing more than ten times a second only costs time
        self._last_draw = now
        frac = p.fraction
        filled = round(frac * self.width)
        elapsed = now - self.t0
        eta = _clock(elapsed * (1 - frac) / frac) if frac > 0 else "--:--"
        line = f"[{'#' * filled}{'.' * (self.width - filled)}] {frac * 100:3.0f}%  ETA {eta}"
        if p.message:
            line += f"  {p.message}"
        line = line[: max(20, shutil.get_terminal_size().columns - 1)]
        self.stream.write("\r" + line.ljust(self._last_len))
        self.stream.flush()
        self._last_len = len(line)

    def close(self) -> None:
        if self._last_len:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


@contextlib.contextmanager
def _sigint_cancels(event: threading.Event) -> Iterator[None]:
    """Ctrl-C asks the job to stop at its next step; a second Ctrl-C interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if event.is_set():
            raise KeyboardInterrupt
        event.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# --------------------------------------------------------------------------- shared steps


def _check_output(out: str, inputs: list[Path], overwrite: bool) -> Path:
    """Refuse outputs that would replace an input or, without --overwrite, any existing file."""
    path = Path(out).expanduser().resolve()
    if path.suffix.lower() != ".png":
        raise CliError(f"{out}: the output must be a .png file (it carries the job's metadata).")
    if not path.parent.is_dir():
        what = "is a file, not a folder" if path.parent.exists() else "does not exist"
        raise CliError(f"{out}: {path.parent} {what}.")
    for inp in inputs:
        same = path == inp.resolve() or (
            path.exists() and inp.exists() and os.path.samefile(path, inp))
        if same:
            raise CliError(f"{out} is an input of this job; results never overwrite an input.")
    if path.exists() and not overwrite:
        raise CliError(f"{out} already exists; pass --overwrite to replace it.")
    return path


def _run(spec: Any, device: str | None) -> Any:
    """Run ``spec`` to its Result on ``device``, with a progress bar when stderr is a terminal."""
    from core.device import GIVEN_THREADS, pick_device, use_cpu_threads
    from core.jobs import Context, run_job
    from core.weights import ModelCache

    ctx = Context.for_spec(spec, device=pick_device(device), models=ModelCache())
    use_cpu_threads(GIVEN_THREADS)
    ctx.preview_wanted = lambda: False  # a progress bar shows no pictures
    bar = ProgressBar(sys.stderr) if sys.stderr.isatty() else None
    with _sigint_cancels(ctx.cancel_event):
        try:
            return run_job(spec, ctx, bar)
        finally:
            if bar is not None:
                bar.close()


def _image_inputs(spec: Any) -> list[Any]:
    """The spec's ImageRef fields that point at user files (not embedded pixels)."""
    from core.jobs import ImageRef

    refs = [getattr(spec, f.name) for f in dataclasses.fields(spec)]
    return [r for r in refs if isinstance(r, ImageRef) and r.path and not r.embed]


def _write_result(out: Path, result: Any, alpha: Any, edited: bool, overwrite: bool) -> None:
    from core.imageio import save_png

    save_png(out, result.images[0], alpha=alpha, spec=result.spec.to_dict(),
             extra={"models": result.info.get("models", {})}, edited=edited,
             overwrite=overwrite)


def _fit_alpha(alpha: Any, image: Any) -> Any:
    """``alpha`` (HxW uint8 or None) resized bicubic to ``image``'s size when it differs."""
    if alpha is None or alpha.shape == image.shape[:2]:
        return alpha
    import numpy as np
    from PIL import Image

    h, w = image.shape[:2]
    return np.asarray(Image.fromarray(alpha, "L").resize((w, h), Image.Resampling.BICUBIC))


def _report(args: argparse.Namespace, out: Path, result: Any) -> None:
    seconds = result.info.get("seconds")
    if args.json:
        print(json.dumps({"output": str(out), "spec": result.spec.to_dict(), "seconds": seconds}))
    else:
        print(f"Wrote {out} ({seconds:.2f} s)" if seconds is not None else f"Wrote {out}")


# --------------------------------------------------------------------------- subcommands


DIFFUSION_OPTIONS = ("model", "sampler", "steps", "strength", "variations", "jump", "resample",
                     "attribute", "guidance")
SD_OPTIONS = ("model", "sampler", "steps", "strength", "variations", "prompt", "negative_prompt",
              "cfg", "prediction")  # the sd engine's (a user's Stable Diffusion model)
FILL_OPTIONS = tuple(dict.fromkeys(("seed", "engine", "patch_size", "iterations", "feather",
                                    *DIFFUSION_OPTIONS, *SD_OPTIONS)))


def cmd_inpaint(args: argparse.Namespace) -> int:
    from core import imageio
    from core.jobs import ImageRef
    from core.pipelines.inpaint import InpaintSpec

    image_path = Path(args.image).expanduser().resolve()
    mask_path = Path(args.mask).expanduser().resolve()
    out = _check_output(args.output, [image_path, mask_path], args.overwrite)
    loaded = imageio.load_image(image_path)
    h, w = loaded.rgb.shape[:2]
    mask = imageio.load_mask(mask_path, size=(w, h))
    spec = InpaintSpec(image=ImageRef.of(loaded.rgb, path=str(image_path)),
                       mask=ImageRef.of(mask, path=str(mask_path), embed=True),
                       **_fill_options(args, ("grow",)))
    return _write_fills(args, spec, out, loaded.alpha)


def cmd_outpaint(args: argparse.Namespace) -> int:
    from core import imageio
    from core.jobs import ImageRef
    from core.pipelines.inpaint import OutpaintSpec

    image_path = Path(args.image).expanduser().resolve()
    out = _check_output(args.output, [image_path], args.overwrite)
    loaded = imageio.load_image(image_path)
    spec = OutpaintSpec(image=ImageRef.of(loaded.rgb, path=str(image_path)),
                        **_fill_options(args, ("left", "right", "top", "bottom")))
    alpha = None
    if loaded.alpha is not None:
        import numpy as np

        pad = ((spec.top, spec.bottom), (spec.left, spec.right))
        alpha = np.pad(loaded.alpha, pad, constant_values=255)
    return _write_fills(args, spec, out, alpha)


def _fill_options(args: argparse.Namespace, extra: tuple[str, ...]) -> dict[str, Any]:
    from core.pipelines.inpaint import ENGINES

    if args.engine is not None and args.engine not in ENGINES:
        raise CliError(f"unknown engine {args.engine!r}; choose one of {', '.join(ENGINES)}.")
    engines = {"diffusion": DIFFUSION_OPTIONS, "sd": SD_OPTIONS}
    allowed = engines.get(args.engine, ())
    for k in dict.fromkeys(DIFFUSION_OPTIONS + SD_OPTIONS):
        if getattr(args, k) is not None and k not in allowed:
            owners = [e for e, options in engines.items() if k in options]
            flag = "--" + ("negative" if k == "negative_prompt" else k.replace("_", "-"))
            hint = (" (the sd engine's guidance scale is --cfg)" if k == "guidance"
                    and args.engine == "sd" else "")
            raise CliError(f"{flag} is a setting of the {' or '.join(owners)} engine: add "
                           f"--engine {owners[0]}{hint}.")
    if args.engine == "sd" and args.model is None:
        raise CliError("--engine sd needs --model NAME: a Stable Diffusion model imported with "
                       "easel models import.")
    return {k: getattr(args, k) for k in FILL_OPTIONS + extra if getattr(args, k) is not None}


def _write_fills(args: argparse.Namespace, spec: Any, out: Path, alpha: Any) -> int:
    """Run an inpaint/outpaint spec; the first fill goes to OUT, other variations beside it
    (OUT-2.png, ...)."""
    paths = [out] + [out.with_name(f"{out.stem}-{i}{out.suffix}")
                     for i in range(2, spec.variations + 1)]
    for path in paths[1:]:  # before the job runs, not after
        if path.exists() and not args.overwrite:
            raise CliError(f"{path} already exists; pass --overwrite to replace it.")
    result = _run(spec, args.device)
    alpha = result.alpha if result.alpha is not None else alpha
    from core.imageio import save_png

    for rgb, path in zip(result.images, paths, strict=True):
        save_png(path, rgb, alpha=alpha, spec=result.spec.to_dict(),
                 extra={"models": result.info.get("models", {})}, edited=True,
                 overwrite=args.overwrite)
    for note in result.info.get("notes", []):
        print(f"note: {note}", file=sys.stderr)
    _report(args, out, result)
    if len(paths) > 1 and not args.json:
        print(f"Wrote {len(paths) - 1} more variations beside it: "
              f"{', '.join(p.name for p in paths[1:])}")
    return 0


def cmd_upscale(args: argparse.Namespace) -> int:
    from core import imageio
    from core.jobs import ImageRef
    from core.pipelines.upscale import DEFAULT_MODEL, UpscaleSpec

    image_path = Path(args.image).expanduser().resolve()
    out = _check_output(args.output, [image_path], args.overwrite)
    loaded = imageio.load_image(image_path)
    spec = UpscaleSpec(image=ImageRef.of(loaded.rgb, path=str(image_path)),
                       model=args.model or DEFAULT_MODEL)
    result = _run(spec, args.device)
    # The spec holds the RGB only (its hash names the input file); the alpha is the file's.
    _write_result(out, result, _fit_alpha(loaded.alpha, result.images[0]), edited=True,
                  overwrite=args.overwrite)
    _report(args, out, result)
    return 0


def cmd_rerun(args: argparse.Namespace) -> int:
    from core import imageio
    from core.jobs import read_spec

    src = Path(args.png).expanduser().resolve()
    if not src.is_file():
        raise CliError(f"{args.png}: no such file.")
    spec = read_spec(src)
    if spec is None:
        raise CliError(f"{args.png} carries no Easel metadata, so there is no job to rerun.")
    refs = _image_inputs(spec)
    out = _check_output(args.output, [src, *(Path(r.path) for r in refs)], args.overwrite)
    result = _run(spec, args.device)
    alpha = result.alpha
    if alpha is None and refs:
        # the edited image's transparency (resized for a result of another size: upscale)
        alpha = _fit_alpha(imageio.load_image(refs[0].path).alpha, result.images[0])
    _write_result(out, result, alpha, edited=bool(refs), overwrite=args.overwrite)
    _report(args, out, result)
    return 0


def cmd_dataset(args: argparse.Namespace) -> int:
    from core.data.report import folder_report

    report = folder_report(args.folder)
    if args.json:
        print(json.dumps(report.to_dict()))
        return 0
    spread = report.spread()
    print(f"{report.root}: {report.count} usable images")
    if report.count:
        print(f"  sides {spread['min_side']}..{spread['max_side']} px (median "
              f"{spread['median_side']}); {spread['square']} square, {spread['landscape']} "
              f"landscape, {spread['portrait']} portrait")
    for group in report.duplicates:
        print(f"  near-duplicates: {', '.join(group)}")
    for skipped in report.skipped:
        print(f"  skipped {skipped['path']}: {skipped['reason']}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from core import paths
    from core.device import available_devices, describe, pick_device
    from core.weights import verify_all

    chosen = pick_device(args.device)
    folders = {"data": paths.data_dir(), "config": paths.config_dir(), "logs": paths.log_dir(),
               "models": paths.models_dir(), "autosave": paths.autosave_dir(),
               "shipped weights": paths.shipped_weights_dir()}
    models = [_model_row(info, ok, msg) for info, ok, msg in verify_all()]
    if args.json:
        print(json.dumps({"versions": versions(), "devices": available_devices(),
                          "device": str(chosen), "device_name": describe(chosen),
                          "folders": {k: str(v) for k, v in folders.items()},
                          "models": models}))
        return 0
    print(version_text())
    print(f"Devices: {', '.join(available_devices())}; using {chosen} ({describe(chosen)})")
    print("Folders:")
    for label, folder in folders.items():
        print(f"  {label + ':':17}{folder}" + ("" if folder.is_dir() else "  (missing)"))
    print("Models:" if models else "Models: none")
    for row in models:
        print(f"  {'ok  ' if row['ok'] else 'FAIL'}  {row['family']}/{row['name']} "
              f"({row['source']}): {row['message']}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from core import paths
    from core.weights import list_models, registered, verify_all

    if args.action == "import":
        return _import_model(args)
    if args.file is not None or args.name is not None or args.prediction is not None:
        raise CliError(f"'models {args.action}' takes no FILE, --name or --prediction.")
    if args.action == "list":
        infos = list_models(args.family)
        rows = [{"name": i.name, "family": i.family, "source": i.source,
                 "path": (registered(i.card) or {}).get("path", str(i.path)),  # used in place
                 "card": i.card.to_dict() if i.card else None, "error": i.error} for i in infos]
        checked = None
    else:
        checked = verify_all(args.family)
        rows = [_model_row(info, ok, msg) for info, ok, msg in checked]
    failed = [r for r in rows if r.get("ok") is False]
    if args.json:
        print(json.dumps({"models": rows, "ok": not failed}))
    elif not rows:
        print(f"No models found (shipped: {paths.shipped_weights_dir()}, "
              f"user: {paths.models_dir()}).")
    else:
        for r in rows:
            status = r["message"] if checked is not None else (r["error"] or r["path"])
            mark = "" if checked is None else ("ok    " if r["ok"] else "FAIL  ")
            print(f"{mark}{r['family']}/{r['name']} ({r['source']}): {status}")
    if failed:
        _error(f"{len(failed)} of {len(rows)} models failed verification: "
               + "; ".join(f"{r['family']}/{r['name']}" for r in failed))
        return 1
    return 0


def _import_model(args: argparse.Namespace) -> int:
    """``easel models import FILE``: the model manager's import, chosen by the file's type."""
    from core.model_manager import FamilyRequired, ModelManagerError, import_model

    if args.file is None:
        raise CliError("'models import' needs the FILE to import (a .safetensors with its "
                       ".json card beside it, or a .zip exported by Easel).")
    try:
        info = import_model(args.file, family=args.family, name=args.name,
                            prediction=args.prediction)
    except FamilyRequired as exc:
        raise CliError(f"{exc} (--family NAME)") from None
    except ModelManagerError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps({"name": info.name, "family": info.family, "path": str(info.path)}))
    else:
        print(f"Installed {info.family}/{info.name} at {info.path}")
    return 0


def _model_row(info: Any, ok: bool, message: str) -> dict[str, Any]:
    return {"name": info.name, "family": info.family, "source": info.source,
            "path": str(info.path), "ok": ok, "message": message}


def cmd_self_test(args: argparse.Namespace) -> int:
    """``easel --self-test``: core/selftest.py, one line per check; 1 when any failed."""
    if args.command is not None:
        raise CliError(f"--self-test runs on its own, not with the {args.command!r} command.")
    from core.device import pick_device
    from core.selftest import run_self_test

    checks = run_self_test(str(pick_device(args.device)),
                           report=lambda line: print(line, flush=True))
    return 0 if all(c.ok for c in checks) else 1


def cmd_train(args: argparse.Namespace) -> int:
    from core.training.cli import run_train

    return run_train(args)


def open_gui(argv: list[str]) -> int:
    try:
        from desktop.app import main as gui_main
    except ImportError as exc:
        _error(f"the desktop app cannot start ({exc}); the headless commands still work: "
               f"{PROG} --help")
        return 1
    return int(gui_main(argv) or 0)


def cmd_eval(args: argparse.Namespace) -> int:
    from core.device import pick_device
    from core.evaluation import evaluate as ev

    try:
        path = ev.resolve_model(args.model)
        result = ev.evaluate(path, n=args.n, device=pick_device(args.device), judge=args.judge)
    except ev.EvaluationError as exc:
        raise CliError(str(exc)) from None
    if args.write_card:
        result["card"] = str(ev.write_metrics(path, result["metrics"]))
    if args.json:
        print(json.dumps(ev.json_safe(result)))  # NaN is not JSON: null
    else:
        print(ev.format_report(result))
        if args.write_card:
            print(f"Wrote the metrics into {result['card']}")
    return 0


# --------------------------------------------------------------------------- parser


def _int_at_least(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, not {value}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, not {value}")
        return value

    return parse


def _add_fill_options(p: argparse.ArgumentParser) -> None:
    """The fill engine's settings, shared by inpaint and outpaint."""
    p.add_argument("--engine", default=None,
                   help="patchmatch (the default: copies from the picture), diffusion "
                   "(draws with a trained model) or sd (with an imported Stable Diffusion "
                   "model)")
    p.add_argument("--seed", type=_int_at_least(0, MAX_SEED), default=None)
    p.add_argument("--feather", type=_int_at_least(0), default=None, metavar="PX")
    g = p.add_argument_group("patchmatch")
    g.add_argument("--patch-size", type=_int_at_least(3), default=None, metavar="N")
    g.add_argument("--iterations", type=_int_at_least(1), default=None, metavar="N")
    g = p.add_argument_group("diffusion")
    g.add_argument("--model", default=None, metavar="NAME",
                   help="an installed diffusion model or a .safetensors path "
                   "(default: diffusion_faces)")
    g.add_argument("--sampler", default=None, choices=("ddim", "ddpm", "euler", "dpm++"),
                   help="ddim (the default) or ddpm; with --engine sd: ddim, euler or dpm++")
    g.add_argument("--steps", type=_int_at_least(1), default=None, metavar="N",
                   help="sampling steps (default 20)")
    g.add_argument("--strength", type=float, default=None, metavar="S",
                   help="1 (the default) draws the masked area anew; less keeps some of it")
    g.add_argument("--variations", type=_int_at_least(1), default=None, metavar="N",
                   help="fills to draw; the 2nd and later go to OUT-2.png, ...")
    g.add_argument("--jump", type=_int_at_least(1), default=None, metavar="N",
                   help="RePaint jump length in steps (default 5)")
    g.add_argument("--resample", type=_int_at_least(1), default=None, metavar="N",
                   help="RePaint resample count (default 3; 1: no resampling)")
    g.add_argument("--attribute", default=None, metavar="NAME=CLASS",
                   help="ask the fill for something the model's world names, e.g. "
                   "smiling=smiling: the world's judge steers every step")
    g.add_argument("--guidance", type=float, default=None, metavar="G",
                   help="how hard --attribute steers (default 0.2)")
    g = p.add_argument_group("sd (also --model, --sampler, --steps, --strength, --variations)")
    g.add_argument("--prompt", default=None, metavar="TEXT", help="what to draw in the mask")
    g.add_argument("--negative", dest="negative_prompt", default=None, metavar="TEXT",
                   help="what not to draw")
    g.add_argument("--cfg", type=float, default=None, metavar="G",
                   help="classifier-free guidance scale (default 7.5)")
    g.add_argument("--prediction", default=None, choices=("epsilon", "v"),
                   help="override what the model predicts (its card says)")
    _add_run_options(p)


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="the PNG to write")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    # SUPPRESS: without it the subcommand's default would hide a global --device.
    p.add_argument("--device", default=argparse.SUPPRESS, help="auto, cuda, mps or cpu")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Easel, an offline generative image studio. "
        "With no command it opens the desktop app.")
    parser.add_argument("--version", action="version",
                        version=f"{PROG} {versions()['easel']}")
    parser.add_argument("--device", default=None,
                        help="auto, cuda, mps or cpu (default: $EASEL_DEVICE, else the best)")
    parser.add_argument("--self-test", action="store_true",
                        help="verify every installed model and run each panel's engine once on "
                        "tiny inputs; exit 0 when all pass, else 1 naming what failed")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("inpaint", help="fill the masked part of an image")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--mask", required=True, metavar="MASK",
                   help="an image of the same size; white (nonzero) = fill")
    p.add_argument("--grow", type=_int_at_least(0), default=None, metavar="PX")
    _add_fill_options(p)
    p.set_defaults(func=cmd_inpaint)

    p = sub.add_parser("outpaint", help="extend an image's canvas and fill the new area")
    p.add_argument("image", metavar="IMAGE")
    for side in ("left", "right", "top", "bottom"):
        p.add_argument(f"--{side}", type=_int_at_least(0), default=None, metavar="PX",
                       help=f"pixels to add on the {side}")
    _add_fill_options(p)
    p.set_defaults(func=cmd_outpaint)

    p = sub.add_parser("upscale", help="upscale an image x4 with a learned upscaler")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--model", default=None, metavar="NAME",
                   help="an installed upscale model or a .safetensors path "
                   "(default: upscale_faces)")
    _add_run_options(p)
    p.set_defaults(func=cmd_upscale)

    p = sub.add_parser("rerun", help="run the job recorded in an Easel PNG again")
    p.add_argument("png", metavar="PNG")
    _add_run_options(p)
    p.set_defaults(func=cmd_rerun)

    p = sub.add_parser("dataset", help="what a folder holds as a training set: usable images, "
                       "skipped files, near-duplicates, sizes")
    p.add_argument("folder", metavar="FOLDER")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_dataset)

    p = sub.add_parser("info", help="versions, devices, folders and models")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("models", help="list, verify or import models")
    p.add_argument("action", choices=("list", "verify", "import"))
    p.add_argument("file", nargs="?", metavar="FILE", help="for import: a .safetensors file "
                   "(its .json card beside it), a .zip exported by Easel, or a Stable "
                   "Diffusion checkpoint or diffusers folder (used where it lies)")
    p.add_argument("--name", default=None, help="for import: install under this name")
    p.add_argument("--family", default=None, help="only this family (vae, dcgan, ...); for "
                   "import of a file without a card, the family it belongs to")
    p.add_argument("--prediction", default=None, choices=("epsilon", "v"),
                   help="for import of a Stable Diffusion model: what it predicts (default: "
                   "its NAME.yaml, else its kind)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("eval", help="measure a model (judge accuracy, FJD, GenEval, ...)")
    p.add_argument("model", metavar="MODEL", help="a .safetensors file or an installed model's "
                   "name (name or family/name)")
    p.add_argument("--n", type=_int_at_least(2), default=2000, metavar="N",
                   help="held-out images to measure on (default 2000)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--write-card", action="store_true",
                   help="store the metrics in the model card")
    p.add_argument("--judge", choices=("faces", "scenes"), default=None,
                   help="for a model trained on a folder: the world whose judge computes FJD")
    p.add_argument("--device", default=argparse.SUPPRESS, help="auto, cuda, mps or cpu")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("train", help="train a model from a recipe (core/training/recipes)")
    from core.training.cli import add_arguments as add_train_arguments  # no torch import

    add_train_arguments(p, _int_at_least)
    p.set_defaults(func=cmd_train)

    from core.cli_latent import add_arguments as add_latent_arguments  # no torch import

    add_latent_arguments(sub, _int_at_least, _add_run_options)

    from core.cli_scene import add_arguments as add_scene_arguments  # no torch import

    add_scene_arguments(sub, _int_at_least, _add_run_options)

    from core.cli_style import add_arguments as add_style_arguments  # no torch import

    add_style_arguments(sub, _int_at_least, _add_run_options)
    return parser


# --------------------------------------------------------------------------- main


def _error(message: str) -> None:
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)


def _bad_input_types() -> tuple[type[BaseException], ...]:
    """Exception types that mean bad input (exit 2), imported late so --help stays fast."""
    types: list[type[BaseException]] = [CliError, OSError]
    for module, name in (("core.imageio", "ImageError"), ("core.jobs", "JobError"),
                         ("core.weights", "WeightsError"), ("core.device", "DeviceError"),
                         ("core.evaluation.judges", "JudgeError"),
                         ("core.tensors", "ImageShapeError"),
                         ("core.data.folder", "FolderError"),
                         ("core.thirdparty.files", "ThirdPartyError")):
        mod = sys.modules.get(module)
        if mod is not None and hasattr(mod, name):
            types.append(getattr(mod, name))
    return tuple(types)


def _is_cancel(exc: BaseException) -> bool:
    jobs = sys.modules.get("core.jobs")
    return isinstance(exc, KeyboardInterrupt) or (jobs is not None
                                                  and isinstance(exc, jobs.Cancelled))


def _remove_stale_temps() -> None:
    """Clean what a killed write left in Easel's folders; never a reason to fail a command."""
    from core.paths import remove_stale_temps

    with contextlib.suppress(Exception):  # a cleanup must not stop the command asked for
        remove_stale_temps()


def _opens_a_file(argv: list[str], commands: set[str]) -> bool:
    """``easel picture.png`` opens the picture in the app, like ``easel-gui picture.png``."""
    return bool(argv) and argv[0] not in commands and not argv[0].startswith("-") \
        and Path(argv[0]).is_file()


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    commands = {name for action in parser._actions if action.dest == "command"
                for name in (action.choices or ())}
    if _opens_a_file(argv, commands):
        return open_gui(argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors (argparse prints them)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    try:
        if args.device is not None:
            from core.device import pick_device

            pick_device(args.device)  # an unknown or missing device is bad input, found early
        if args.self_test:
            return cmd_self_test(args)
        if args.command is None:
            return open_gui(argv)
        _remove_stale_temps()
        return args.func(args)
    except BaseException as exc:  # every failure becomes one line and an exit code
        if isinstance(exc, SystemExit):
            raise
        if os.environ.get("EASEL_DEBUG") == "1":
            traceback.print_exc()
        if _is_cancel(exc):
            _error("cancelled.")
            return 130
        if isinstance(exc, FileExistsError) and exc.filename:
            # a file that appeared while the job ran: nothing was replaced
            _error(f"{exc.filename} already exists; pass --overwrite to replace it.")
            return 2
        if isinstance(exc, _bad_input_types()):
            _error(str(exc) or type(exc).__name__)
            return 2
        _error(f"internal error: {type(exc).__name__}: {exc} "
               "(set EASEL_DEBUG=1 to see the traceback)")
        return 1
