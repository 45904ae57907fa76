"""``easel inpaint IMAGE --mask MASK -o OUT`` and ``easel outpaint IMAGE --left PX ... -o OUT``:
fill the masked part of a picture, or extend its canvas, with PatchMatch or a diffusion model.

Kept free of torch at import time (``easel --help``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core.cli.common import CliError, add_run_options, check_output, int_at_least, report, run_spec
from core.jobs import MAX_SEED

DIFFUSION_OPTIONS = ("model", "sampler", "steps", "strength", "variations", "jump", "resample",
                     "attribute", "guidance")
SD_OPTIONS = ("model", "sampler", "steps", "strength", "variations", "prompt", "negative_prompt",
              "cfg", "prediction")  # the sd engine's (a user's Stable Diffusion model)
PATCHMATCH_OPTIONS = ("context", "source")  # those only PatchMatch uses
FILL_OPTIONS = tuple(dict.fromkeys(("seed", "engine", "patch_size", "iterations", "context",
                                    "feather", *DIFFUSION_OPTIONS, *SD_OPTIONS)))


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "inpaint", help="fill the masked part of an image, or of every picture in a folder",
        epilog="A FOLDER of pictures: each picture's mask is the file of MASKFOLDER with the "
        "picture's name (any image suffix), or the one MASK file for all (resized to each "
        "picture); the fills go to the folder OUT as NAME.png. A picture that is refused or "
        "fails does not stop the others. Exit code 0 when every picture was written, 2 when "
        "any was refused (bad input), 1 when any failed unexpectedly.")
    p.add_argument("image", metavar="IMAGE|FOLDER")
    p.add_argument("--mask", required=True, metavar="MASK|MASKFOLDER",
                   help="an image of the same size; white = fill. For a FOLDER: a folder of "
                   "masks named like the pictures, or one mask for all")
    p.add_argument("--grow", type=int_at_least(0), default=None, metavar="PX")
    _add_fill_options(p, output_help="the PNG to write; for a FOLDER, the folder to write to",
                      json_help="print one JSON object on stdout (for a FOLDER: one line per "
                      "picture)")
    p.set_defaults(func=run_inpaint)

    p = sub.add_parser("outpaint", help="extend an image's canvas and fill the new area")
    p.add_argument("image", metavar="IMAGE")
    for side in ("left", "right", "top", "bottom"):
        p.add_argument(f"--{side}", type=int_at_least(0), default=None, metavar="PX",
                       help=f"pixels to add on the {side}")
    _add_fill_options(p)
    p.set_defaults(func=run_outpaint)


def _add_fill_options(p: argparse.ArgumentParser, **run_help: str) -> None:
    """The fill engine's settings, shared by inpaint and outpaint."""
    p.add_argument("--engine", default=None,
                   help="patchmatch (the default: copies from the picture), diffusion "
                   "(draws with a trained model), lama (an imported LaMa model) or sd (an "
                   "imported Stable Diffusion model)")
    p.add_argument("--seed", type=int_at_least(0, MAX_SEED), default=None)
    p.add_argument("--feather", type=int_at_least(0), default=None, metavar="PX")
    g = p.add_argument_group("patchmatch")
    g.add_argument("--patch-size", type=int_at_least(3), default=None, metavar="N")
    g.add_argument("--iterations", type=int_at_least(1), default=None, metavar="N")
    g.add_argument("--context", type=int_at_least(0), default=None, metavar="PX",
                   help="copy only from within PX pixels of the mask's bounding box (default "
                   "0: chosen from the mask's size)")
    g.add_argument("--source", default=None, metavar="MASK",
                   help="an image of the same size; white (nonzero) = where the fill may copy "
                   "from (default: anywhere outside the mask)")
    g = p.add_argument_group("diffusion")
    g.add_argument("--model", default=None, metavar="NAME",
                   help="an installed diffusion model or a .safetensors path "
                   "(default: diffusion_faces); with --engine lama or sd, an imported LaMa "
                   "or Stable Diffusion model")
    g.add_argument("--sampler", default=None, choices=("ddim", "ddpm", "euler", "dpm++"),
                   help="ddim (the default) or ddpm; with --engine sd: ddim, euler or dpm++")
    g.add_argument("--steps", type=int_at_least(1), default=None, metavar="N",
                   help="sampling steps (default 20)")
    g.add_argument("--strength", type=float, default=None, metavar="S",
                   help="1 (the default) draws the masked area anew; less keeps some of it")
    g.add_argument("--variations", type=int_at_least(1), default=None, metavar="N",
                   help="fills to draw; the 2nd and later go to OUT-2.png, ...")
    g.add_argument("--jump", type=int_at_least(1), default=None, metavar="N",
                   help="RePaint jump length in steps (default 5)")
    g.add_argument("--resample", type=int_at_least(1), default=None, metavar="N",
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
    add_run_options(p, **run_help)


def run_inpaint(args: argparse.Namespace) -> int:
    from core import imageio
    from core.jobs import ImageRef
    from core.pipelines.inpaint import InpaintSpec

    image_path = Path(args.image).expanduser().resolve()
    if image_path.is_dir():
        from core.cli.inpaint_batch import run_batch

        if args.source is not None:
            raise CliError("--source is an area of one picture: it cannot be used when "
                           "inpainting a folder.")

        return run_batch(args, _fill_options(args, ("grow",)))
    mask_path = Path(args.mask).expanduser().resolve()
    out = check_output(args.output, [image_path, mask_path], args.overwrite)
    options = _fill_options(args, ("grow",))
    loaded = imageio.load_image(image_path)
    h, w = loaded.rgb.shape[:2]
    mask = imageio.load_mask(mask_path, size=(w, h))
    spec = InpaintSpec(image=ImageRef.of(loaded.rgb, path=str(image_path)),
                       mask=ImageRef.of(mask, path=str(mask_path), embed=True),
                       source=_source(args, (w, h)), **options)
    return _write_fills(args, spec, out, loaded.alpha)


def run_outpaint(args: argparse.Namespace) -> int:
    from core import imageio
    from core.jobs import ImageRef
    from core.pipelines.inpaint import OutpaintSpec

    image_path = Path(args.image).expanduser().resolve()
    out = check_output(args.output, [image_path], args.overwrite)
    options = _fill_options(args, ("left", "right", "top", "bottom"))
    loaded = imageio.load_image(image_path)
    h, w = loaded.rgb.shape[:2]
    spec = OutpaintSpec(image=ImageRef.of(loaded.rgb, path=str(image_path)),
                        source=_source(args, (w, h)), **options)
    alpha = None
    if loaded.alpha is not None:
        import numpy as np

        pad = ((spec.top, spec.bottom), (spec.left, spec.right))
        alpha = np.pad(loaded.alpha, pad, constant_values=255)
    return _write_fills(args, spec, out, alpha)


def _source(args: argparse.Namespace, size: tuple[int, int]) -> Any:
    """The --source mask (an ImageRef, embedded), read at the picture's ``size`` (w, h)."""
    if args.source is None:
        return None
    from core import imageio
    from core.jobs import ImageRef

    path = Path(args.source).expanduser().resolve()
    src = imageio.load_mask(path, size=size)
    if not src.any():
        raise CliError(f"the source mask {path.name} is empty: paint white where the fill may "
                       "copy from.")
    return ImageRef.of(src, path=str(path), embed=True)


def _fill_options(args: argparse.Namespace, extra: tuple[str, ...]) -> dict[str, Any]:
    from core.pipelines.inpaint import ENGINES

    if args.engine is not None and args.engine not in ENGINES:
        raise CliError(f"unknown engine {args.engine!r}; choose one of {', '.join(ENGINES)}.")
    for k in PATCHMATCH_OPTIONS:
        if getattr(args, k) is not None and args.engine not in (None, "patchmatch"):
            raise CliError(f"--{k} is a setting of the patchmatch engine: it copies from the "
                           f"picture, --engine {args.engine} does not.")
    needs_model = {"lama": "a LaMa model", "sd": "a Stable Diffusion model"}
    if args.engine in needs_model and args.model is None:
        raise CliError(f"--engine {args.engine} needs --model NAME: {needs_model[args.engine]} "
                       "imported with 'easel models import FILE'.")
    engines = {"diffusion": DIFFUSION_OPTIONS, "sd": SD_OPTIONS, "lama": ("model",)}
    allowed = engines.get(args.engine, ())
    for k in dict.fromkeys(DIFFUSION_OPTIONS + SD_OPTIONS):
        if getattr(args, k) is not None and k not in allowed:
            owners = [e for e in ("diffusion", "sd") if k in engines[e]]
            flag = "--" + ("negative" if k == "negative_prompt" else k.replace("_", "-"))
            hint = (" (the sd engine's guidance scale is --cfg)" if k == "guidance"
                    and args.engine == "sd" else "")
            raise CliError(f"{flag} is a setting of the {' or '.join(owners)} engine: add "
                           f"--engine {owners[0]}{hint}.")
    return {k: getattr(args, k) for k in FILL_OPTIONS + extra if getattr(args, k) is not None}


def _write_fills(args: argparse.Namespace, spec: Any, out: Path, alpha: Any) -> int:
    """Run an inpaint/outpaint spec; the first fill goes to OUT, other variations beside it
    (OUT-2.png, ...)."""
    paths = [out] + [out.with_name(f"{out.stem}-{i}{out.suffix}")
                     for i in range(2, spec.variations + 1)]
    for path in paths[1:]:  # before the job runs, not after
        if path.exists() and not args.overwrite:
            raise CliError(f"{path} already exists; pass --overwrite to replace it.")
    result = run_spec(spec, args.device)
    alpha = result.alpha if result.alpha is not None else alpha
    from core.imageio import save_png

    for rgb, path in zip(result.images, paths, strict=True):
        save_png(path, rgb, alpha=alpha, spec=result.spec.to_dict(),
                 extra={"models": result.info.get("models", {})}, edited=True,
                 overwrite=args.overwrite)
    for note in result.info.get("notes", []):
        print(f"note: {note}", file=sys.stderr)
    report(args, out, result)
    if len(paths) > 1 and not args.json:
        print(f"Wrote {len(paths) - 1} more variations beside it: "
              f"{', '.join(p.name for p in paths[1:])}")
    return 0
