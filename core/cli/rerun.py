"""``easel rerun PNG -o OUT``: the job recorded in an Easel PNG's metadata, run again.

Kept free of torch at import time (``easel --help``).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from core.cli.common import (
    CliError,
    add_run_options,
    check_output,
    fit_alpha,
    report,
    run_spec,
    write_result,
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("rerun", help="run the job recorded in an Easel PNG again")
    p.add_argument("png", metavar="PNG")
    add_run_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from core import imageio
    from core.jobs import read_spec

    src = Path(args.png).expanduser().resolve()
    if not src.is_file():
        raise CliError(f"{args.png}: no such file.")
    spec = read_spec(src)
    if spec is None:
        raise CliError(f"{args.png} carries no Easel metadata, so there is no job to rerun.")
    refs = _image_inputs(spec)
    out = check_output(args.output, [src, *(Path(r.path) for r in refs)], args.overwrite)
    result = run_spec(spec, args.device)
    alpha = result.alpha
    if alpha is None and refs:
        # the edited image's transparency (resized for a result of another size: upscale)
        alpha = fit_alpha(imageio.load_image(refs[0].path).alpha, result.images[0])
    write_result(out, result, alpha, edited=bool(refs), overwrite=args.overwrite)
    report(args, out, result)
    return 0


def _image_inputs(spec: Any) -> list[Any]:
    """The spec's ImageRef fields that point at user files (not embedded pixels)."""
    from core.jobs import ImageRef

    refs = [getattr(spec, f.name) for f in dataclasses.fields(spec)]
    return [r for r in refs if isinstance(r, ImageRef) and r.path and not r.embed]
