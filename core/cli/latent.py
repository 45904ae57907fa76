"""``easel latent sample|arith|edit|walk|directions``: the latent pipelines for batch use.

Every image written carries a ``latent_edit`` spec that redraws it exactly (``easel rerun``)
and its final latent (``"latent"`` in the Easel metadata), so any output can be a slot of the
next command without encoding it again. Other images given as slots are encoded (a VAE's
encoder, a DCGAN's inversion). Kept free of torch at import time (``easel --help``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from core.cli.common import (
    CliError,
    add_run_options,
    check_output,
    int_at_least,
    number_between,
    run_spec,
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("latent", help="sample, compose (A - B + C), edit and walk latent models")
    cmds = p.add_subparsers(dest="latent_command", metavar="ACTION", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--model", default=None,
                       help="a VAE or DCGAN name or .safetensors path (default: vae_faces)")
        q.add_argument("--seed", type=int_at_least(0), default=0)
        q.add_argument("--truncation", type=number_between(0, 1), default=1.0, metavar="PSI",
                       help="variety <-> fidelity: pull the decoded latents toward the mean "
                       "latent by PSI in [0, 1] (1 = off; lower = more typical faces, less "
                       "variety)")

    def composing(q: argparse.ArgumentParser) -> None:
        q.add_argument("--edit", action="append", default=[], metavar="NAME=AMOUNT",
                       help="move along a direction, e.g. --edit smiling=1 (repeatable)")
        q.add_argument("--method", choices=("mean", "classifier"), default="mean",
                       help="attribute directions from class means or a linear classifier")
        q.add_argument("--no-upscale", action="store_true", help="keep the model's size")
        q.add_argument("--steps", type=int_at_least(1, 2000), default=300,
                       help="inversion steps for slot images a DCGAN must invert")

    q = cmds.add_parser("sample", help="a seeded set of samples, one PNG each")
    common(q)
    q.add_argument("--count", type=int_at_least(1, 64), default=16)
    q.add_argument("-o", "--output", required=True, metavar="DIR", help="a folder")
    q.add_argument("--overwrite", action="store_true")
    q.add_argument("--json", action="store_true")
    q.add_argument("--device", default=argparse.SUPPRESS)

    q = cmds.add_parser("arith", help="mean(A) - mean(B) + mean(C), optionally edited")
    common(q)
    for slot in "abc":
        q.add_argument(f"--{slot}", nargs="+", default=[], metavar="IMAGE", required=slot == "a",
                       help=f"slot {slot.upper()}: images (Easel PNGs reuse their latent)")
    composing(q)
    add_run_options(q)

    q = cmds.add_parser("edit", help="move one image along directions")
    common(q)
    q.add_argument("image", metavar="IMAGE")
    composing(q)
    add_run_options(q)

    q = cmds.add_parser("walk", help="frames between two images (GIF, WebP or a folder)")
    common(q)
    q.add_argument("start", metavar="START")
    q.add_argument("end", metavar="END")
    q.add_argument("--frames", type=int_at_least(2, 120), default=16)
    q.add_argument("--mode", choices=("slerp", "linear"), default="slerp")
    q.add_argument("--frame-ms", type=int_at_least(10), default=100)
    q.add_argument("--no-upscale", action="store_true")
    q.add_argument("--steps", type=int_at_least(1, 2000), default=300)
    q.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="an .gif or .webp animation, or a folder for PNG frames")
    q.add_argument("--overwrite", action="store_true")
    q.add_argument("--json", action="store_true")
    q.add_argument("--device", default=argparse.SUPPRESS)

    q = cmds.add_parser("directions", help="compute and save a model's attribute directions")
    q.add_argument("model", metavar="MODEL")
    q.add_argument("--samples", type=int_at_least(100), default=None, metavar="N",
                   help="labelled latents per computation (default 2000)")
    q.add_argument("--beside", action="store_true",
                   help="write beside the model's weights (how the shipped file is made) "
                   "instead of the user models folder")
    q.add_argument("--json", action="store_true")
    q.add_argument("--device", default=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return {"sample": _sample, "arith": _arith, "edit": _arith, "walk": _walk,
            "directions": _directions}[args.latent_command](args)


# --------------------------------------------------------------------------- helpers


def _model(args: argparse.Namespace) -> str:
    from core.pipelines.latent import DEFAULT_MODEL

    return args.model or DEFAULT_MODEL


def latent_of(path: str, model: str, args: argparse.Namespace) -> tuple[float, ...]:
    """The latent an image stands for: the one recorded in an Easel PNG made with ``model``,
    else the image encoded (or inverted) by ``model``."""
    from core import imageio
    from core.jobs import ImageRef
    from core.pipelines.latent import LatentEncodeSpec

    src = Path(path).expanduser().resolve()
    if not src.is_file():
        raise CliError(f"{path}: no such file.")
    meta = imageio.read_metadata(src) or {}
    spec = meta.get("spec") or {}
    if isinstance(meta.get("latent"), list) and spec.get("model") == model:
        return tuple(float(v) for v in meta["latent"])
    loaded = imageio.load_image(src)
    enc = LatentEncodeSpec(model=model, image=ImageRef.of(loaded.rgb, path=str(src)),
                           steps=args.steps, seed=args.seed)
    info = run_spec(enc, args.device).info
    if info.get("note"):  # far from the model's world: said, and encoded anyway
        print(f"{path}: {info['note']}", file=sys.stderr)
    return tuple(info["latent"])


def _moves(edits: list[str]) -> tuple[tuple[str, float], ...]:
    out = []
    for e in edits:
        name, sep, amount = e.rpartition("=")
        try:
            out.append((name.strip(), float(amount)))
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise CliError(f"--edit {e!r}: write NAME=AMOUNT, e.g. smiling=1.")
    return tuple(out)


def write_latent_png(out: Path, rgb: Any, spec: Any, latent: list[float],
                     overwrite: bool = True) -> None:
    from core.imageio import save_png

    save_png(out, rgb, spec=spec, extra={"latent": [float(v) for v in latent]},
             overwrite=overwrite)


def _folder(out: str, overwrite: bool) -> Path:
    path = Path(out).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise CliError(f"{out} is a file; give a folder.")
    if path.is_dir() and any(path.glob("*.png")) and not overwrite:
        raise CliError(f"{out} already holds PNG files; pass --overwrite to replace them.")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _print(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    print(json.dumps(payload) if args.json else text)


# --------------------------------------------------------------------------- actions


def _sample(args: argparse.Namespace) -> int:
    from core.pipelines.latent import LatentEditSpec, LatentSampleSpec

    model = _model(args)
    folder = _folder(args.output, args.overwrite)
    result = run_spec(LatentSampleSpec(model=model, count=args.count, seed=args.seed,
                                       truncation=args.truncation), args.device)
    files = []
    for i, (rgb, z) in enumerate(zip(result.images, result.info["latents"], strict=True)):
        path = folder / f"sample_{i:03d}.png"
        write_latent_png(path, rgb, LatentEditSpec(model=model, a=(z,), upscale=False,
                                                   seed=args.seed, truncation=args.truncation),
                         z, args.overwrite)
        files.append(str(path))
    _print(args, {"outputs": files, "latents": result.info["latents"], "model": model},
           f"Wrote {len(files)} samples to {folder}")
    return 0


def _arith(args: argparse.Namespace) -> int:
    from core.pipelines.latent import LatentEditSpec

    model = _model(args)
    slots = {"a": [args.image]} if args.latent_command == "edit" else {
        s: getattr(args, s) for s in "abc"}
    inputs = [Path(p).expanduser() for paths in slots.values() for p in paths]
    out = check_output(args.output, inputs, args.overwrite)
    latents = {s: tuple(latent_of(p, model, args) for p in paths) for s, paths in slots.items()}
    spec = LatentEditSpec(model=model, directions=_moves(args.edit), method=args.method,
                          upscale=not args.no_upscale, seed=args.seed,
                          truncation=args.truncation, **latents)
    result = run_spec(spec, args.device)
    write_latent_png(out, result.images[0], result.spec, result.info["latent"], args.overwrite)
    note = result.info.get("note")
    _print(args, {"output": str(out), "spec": result.spec.to_dict(),
                  "latent": result.info["latent"], "note": note,
                  "seconds": result.info.get("seconds")},
           f"Wrote {out}" + (f" ({note})" if note else ""))
    return 0


def _walk(args: argparse.Namespace) -> int:
    from core.imageio import ANIMATION_FORMATS, save_animation
    from core.pipelines.latent import LatentEditSpec, LatentWalkSpec

    model = _model(args)
    out = Path(args.output).expanduser().resolve()
    animated = out.suffix.lower() in ANIMATION_FORMATS
    if animated and out.exists() and not args.overwrite:
        raise CliError(f"{args.output} already exists; pass --overwrite to replace it.")
    if not animated:
        out = _folder(args.output, args.overwrite)
    start, end = (latent_of(p, model, args) for p in (args.start, args.end))
    spec = LatentWalkSpec(model=model, start=start, end=end, frames=args.frames, mode=args.mode,
                          upscale=not args.no_upscale, seed=args.seed,
                          truncation=args.truncation)
    result = run_spec(spec, args.device)
    if animated:
        save_animation(out, result.images, args.frame_ms, overwrite=args.overwrite)
        files = [str(out)]
    else:
        files = []
        for i, (rgb, z) in enumerate(zip(result.images, result.info["latents"], strict=True)):
            path = out / f"frame_{i:03d}.png"
            frame = LatentEditSpec(model=model, a=(tuple(z),), upscale=spec.upscale,
                                   truncation=spec.truncation)
            write_latent_png(path, rgb, frame, z, args.overwrite)
            files.append(str(path))
    _print(args, {"outputs": files, "spec": result.spec.to_dict(),
                  "seconds": result.info.get("seconds")},
           f"Wrote {len(result.images)} frames to {out}")
    return 0


def _directions(args: argparse.Namespace) -> int:
    from core.algorithms import directions as dirs
    from core.device import pick_device
    from core.jobs import Context
    from core.pipelines import latent

    spec = latent.LatentInfoSpec(model=args.model)
    ctx = Context.for_spec(spec, device=pick_device(args.device))
    model = latent.load(args.model, ctx)
    dset = latent.attribute_directions(model, n=args.samples)
    path = dirs.directions_path(model.path) if args.beside else latent.user_directions_path(model)
    dirs.save_directions(path, dset)
    _print(args, {"path": str(path), "directions": dset.names()},
           f"Wrote {len(dset.names())} directions of {model.name} to {path}")
    return 0
