"""``easel style CONTENT STYLE [STYLE...] -o OUT``: style transfer, headless.

Optimises the content picture towards the style images with random-weight features; with
``--fast NAME``, restyles it in one pass with a fast style model (then no STYLE is needed);
with ``--one-pass``, restyles it in one pass after the STYLE images with the one-pass net
(any painting, no training per painting; ``--strength`` is then 0 to 1); with ``--tile``, the
result is a seamless tile (it repeats without seams).
Kept free of torch at import time (``easel --help``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core.cli.common import (
    CliError,
    add_run_options,
    check_output,
    int_at_least,
    report,
    run_spec,
    write_result,
)


def add_parser(sub: Any) -> None:
    from core.jobs import MAX_SEED
    from core.specs.style import ONE_PASS_MODEL, StyleSpec

    p = sub.add_parser("style", help="restyle a picture after one or more paintings")
    p.add_argument("content", metavar="CONTENT", help="the picture to restyle")
    p.add_argument("styles", metavar="STYLE", nargs="*",
                   help="style images (paintings); not needed with --fast")
    p.add_argument("--weights", default=None, metavar="W1,W2,...",
                   help="one weight per style image (default: equal)")
    p.add_argument("--size", type=int_at_least(64, 2048), default=None, metavar="PX",
                   help="long side the style is worked at (default 512; never enlarges)")
    p.add_argument("--steps", type=int_at_least(1, 2000), default=None, metavar="N",
                   help=f"optimisation steps over the whole pyramid (default {StyleSpec.steps})")
    p.add_argument("--optimizer", choices=("lbfgs", "adam"), default=None)
    p.add_argument("--strength", type=float, default=None, metavar="S",
                   help="weight of the style (default 10; the content weighs 1); with "
                   "--one-pass, from 0 (the picture as it is) to 1 (the full style, default)")
    p.add_argument("--preserve-color", nargs="?", const="luminance", default=None,
                   choices=("luminance", "histogram"),
                   help="keep the picture's colours (luminance: the default when given; "
                   "histogram: recolour the styles to the picture first)")
    p.add_argument("--mask", default=None, metavar="MASK",
                   help="restyle only where this mask (white) is painted")
    p.add_argument("--feather", type=int_at_least(0, 256), default=None, metavar="PX")
    p.add_argument("--fast", default=None, metavar="NAME",
                   help="a fast style model (style_fast_brush, ...): one pass, no STYLE")
    p.add_argument("--one-pass", nargs="?", const=ONE_PASS_MODEL, default=None,
                   metavar="NAME", dest="one_pass",
                   help=f"one pass after the STYLE images with the one-pass net (default "
                   f"{ONE_PASS_MODEL}; easel train style_onepass makes it)")
    p.add_argument("--tile", action="store_true",
                   help="a seamless tile: the result repeats without seams (circular padding)")
    p.add_argument("--seed", type=int_at_least(0, MAX_SEED), default=0)
    add_run_options(p)
    p.set_defaults(func=run)


def _weights(text: str | None, n: int) -> tuple[float, ...]:
    if text is None:
        return ()
    try:
        weights = tuple(float(v) for v in text.split(","))
    except ValueError:
        weights = ()
    if len(weights) != n:
        raise CliError(f"--weights takes one number per style image ({n}), e.g. 2,1.")
    return weights


def _rgba(loaded: Any) -> Any:
    """A style image's pixels with its transparency (the job composites it over white)."""
    import numpy as np

    return loaded.rgb if loaded.alpha is None else np.dstack([loaded.rgb, loaded.alpha])


def run(args: argparse.Namespace) -> int:
    from core import imageio
    from core.jobs import ImageRef
    from core.pipelines.style import StyleSpec

    if not args.styles and not args.fast:
        raise CliError("give at least one STYLE image, or a fast style with --fast NAME.")
    if args.fast and args.one_pass:
        raise CliError("--fast and --one-pass are two ways to restyle: choose one.")
    if args.one_pass and args.strength is not None and not 0 <= args.strength <= 1:
        raise CliError(f"with --one-pass, --strength is from 0 (the picture as it is) to 1 "
                       f"(the full style), not {args.strength:g}.")
    content_path = Path(args.content).expanduser().resolve()
    style_paths = [Path(s).expanduser().resolve() for s in args.styles]
    mask_path = Path(args.mask).expanduser().resolve() if args.mask else None
    inputs = [content_path, *style_paths, *([mask_path] if mask_path else [])]
    out = check_output(args.output, inputs, args.overwrite)
    loaded = imageio.load_image(content_path)
    h, w = loaded.rgb.shape[:2]
    styles = tuple(ImageRef.of(_rgba(imageio.load_image(p)), path=str(p)) for p in style_paths)
    options: dict[str, Any] = {k: v for k in ("size", "steps", "optimizer", "strength",
                                                "feather", "one_pass")
                               if (v := getattr(args, k)) is not None}
    if args.one_pass:  # the one pass's strength is its content <-> style blend
        options["alpha"] = options.pop("strength", 1.0)
    if args.preserve_color:
        options["preserve_color"] = args.preserve_color
    if args.fast:
        options["fast"] = args.fast
    if args.tile:
        if mask_path is not None:
            raise CliError("--tile restyles the whole picture: leave out --mask.")
        options["tile"] = True
    mask = None
    if mask_path is not None:
        mask = ImageRef.of(imageio.load_mask(mask_path, size=(w, h)), path=str(mask_path),
                           embed=True)
    spec = StyleSpec(image=ImageRef.of(loaded.rgb, path=str(content_path)), styles=styles,
                     style_weights=_weights(args.weights, len(styles)), mask=mask,
                     seed=args.seed, **options)
    result = run_spec(spec, args.device)
    write_result(out, result, result.alpha if result.alpha is not None else loaded.alpha,
                 edited=True, overwrite=args.overwrite)
    for note in result.info.get("notes", []):
        print(f"note: {note}", file=sys.stderr)
    report(args, out, result)
    return 0
