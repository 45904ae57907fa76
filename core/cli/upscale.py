"""``easel upscale IMAGE -o OUT``: a picture upscaled by a learned upscaler at its scale, its
transparency resized with it.

Kept free of torch at import time (``easel --help``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.cli.common import add_run_options, check_output, fit_alpha, report, run_spec, write_result


def add_parser(sub: Any) -> None:
    p = sub.add_parser("upscale", help="upscale an image with a learned upscaler, at its scale")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--model", default=None, metavar="NAME",
                   help="an installed upscale model (Easel's x4, or a Real-ESRGAN, ESRGAN, "
                   "compact or SPAN file imported with 'easel models import') or a "
                   ".safetensors path (default: upscale_faces)")
    p.add_argument("--tile", type=int, default=None, metavar="PX",
                   help="input pixels per tile side (default 192); smaller tiles need less "
                   "memory and give the same pixels")
    add_run_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from core import imageio
    from core.jobs import ImageRef
    from core.pipelines.upscale import DEFAULT_MODEL, TILE, UpscaleSpec

    image_path = Path(args.image).expanduser().resolve()
    out = check_output(args.output, [image_path], args.overwrite)
    loaded = imageio.load_image(image_path)
    spec = UpscaleSpec(image=ImageRef.of(loaded.rgb, path=str(image_path)),
                       model=args.model or DEFAULT_MODEL,
                       tile=TILE if args.tile is None else args.tile)
    result = run_spec(spec, args.device)
    # The spec holds the RGB only (its hash names the input file); the alpha is the file's.
    write_result(out, result, fit_alpha(loaded.alpha, result.images[0]), edited=True,
                 overwrite=args.overwrite)
    report(args, out, result)
    return 0
