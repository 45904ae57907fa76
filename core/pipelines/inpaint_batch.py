"""One picture of a batch inpaint (core/specs/inpaint_batch.py): read the picture and its mask,
fill it with the inpaint pipeline, write the result as a PNG.

The result is written atomically (core.paths.atomic_write, through save_png) and only once the
fill is done, so a cancel or a crash leaves no half-written file. The job reports refused input
(a corrupt picture, a mask of another size, an output that exists, a model that is missing) as
its Result's outcome, so the batch goes on and the caller can tell it from an unexpected
failure, which is raised as for any job. Both the CLI and the app's batch dialog run this.
"""

from __future__ import annotations

import errno
from collections.abc import Generator
from pathlib import Path

import numpy as np
from PIL import Image

from core.imageio import ImageError, load_image, load_mask, save_png
from core.jobs import Context, ImageRef, JobError, Progress, Result, pipeline
from core.pipelines.inpaint import run as run_inpaint
from core.specs.inpaint import InpaintSpec
from core.specs.inpaint_batch import REFUSED, WRITTEN, InpaintFileSpec, fill_settings
from core.weights import WeightsError

# What a refused picture raises: unreadable or refused images, bad settings or masks, missing
# models, and files that cannot be read or written (an existing output, a full disk).
REFUSALS = (ImageError, JobError, WeightsError, OSError)


@pipeline("inpaint_file")
def run(spec: InpaintFileSpec, ctx: Context) -> Generator[Progress, None, Result]:
    try:
        return (yield from _fill_file(spec, ctx))
    except REFUSALS as exc:
        if getattr(exc, "out_of_memory", False) and ctx.device.type != "cpu":
            raise  # the app runs it again on the CPU
        return Result(images=[], spec=spec,
                      info={"status": REFUSED, "message": _refusal(exc, spec)})


def _fill_file(spec: InpaintFileSpec, ctx: Context) -> Generator[Progress, None, Result]:
    out = Path(spec.output)
    if not spec.overwrite and out.exists():  # before the fill: it would be wasted
        raise FileExistsError(errno.EEXIST, "already exists", str(out))
    name = Path(spec.picture).name
    yield Progress(0, 1, f"Reading {name}")
    loaded = load_image(spec.picture)
    mask, notes = _mask(spec, loaded.size, name)
    fill = InpaintSpec(**fill_settings(spec), image=ImageRef.of(loaded.rgb, path=spec.picture),
                       mask=ImageRef.of(mask, path=spec.mask_file, embed=True))
    result = yield from run_inpaint(fill, ctx)
    ctx.check()  # a cancel during the last step: nothing is written
    alpha = result.alpha if result.alpha is not None else loaded.alpha
    save_png(out, result.images[0], alpha, spec=fill,
             extra={"models": result.info.get("models", {})}, edited=True,
             overwrite=spec.overwrite)
    notes += [str(n) for n in result.info.get("notes", [])]
    return Result(images=[], spec=fill,
                  info={"status": WRITTEN, "output": str(out), "notes": notes,
                        "models": result.info.get("models", {})})


def _mask(spec: InpaintFileSpec, size: tuple[int, int], name: str
          ) -> tuple[np.ndarray, list[str]]:
    """The picture's mask (HxW uint8, 255 = fill) and notes. A batch's one mask is resized to
    each picture, nearest pixel, so it stays a clean 0/255 mask; a mask of its own must fit."""
    if not spec.fit_mask:
        return load_mask(spec.mask_file, size=size), []
    mask = load_mask(spec.mask_file)
    if (mask.shape[1], mask.shape[0]) == size:
        return mask, []
    w, h = size
    note = (f"The mask {Path(spec.mask_file).name} is {mask.shape[1]}x{mask.shape[0]}; it "
            f"was resized (nearest pixel) to {w}x{h} for {name}.")
    return np.asarray(Image.fromarray(mask).resize(size, Image.Resampling.NEAREST)), [note]


def _refusal(exc: BaseException, spec: InpaintFileSpec) -> str:
    if isinstance(exc, FileExistsError):
        return (f"{Path(spec.output).name} already exists in {Path(spec.output).parent}; it "
                "was kept (allow overwriting to replace it).")
    if isinstance(exc, OSError):
        where = exc.filename or spec.output
        return f"{where}: {exc.strerror or exc}."
    return str(exc) or type(exc).__name__
