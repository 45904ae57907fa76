"""Inpainting pipeline: fill the masked part of an image.

Engines: ``patchmatch`` (weight-free, core/algorithms/patchmatch.py). Diffusion joins later.
Pixels outside the (grown) mask are bit-identical to the input; ``feather`` only blends the
fill towards the original inside the mask.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np

from core.algorithms import masks, patchmatch
from core.device import torch_threads
from core.jobs import Context, ImageRef, JobError, JobSpec, Progress, Result, input_image, pipeline

ENGINES = ("patchmatch",)
PATCH_SIZES = (3, 15)  # inclusive range of odd patch sizes
MAX_ITERATIONS = 50
MAX_RADIUS = 512  # grow / feather, pixels


@dataclass(frozen=True)
class InpaintSpec(JobSpec):
    kind = "inpaint"
    panel = "inpaint"

    image: ImageRef | None = None  # HxWx3 uint8 RGB
    mask: ImageRef | None = None  # HxW uint8, nonzero = fill (embedded in metadata)
    engine: str = "patchmatch"
    patch_size: int = 7  # odd, pixels
    iterations: int = 4  # PatchMatch search/vote rounds per scale
    grow: int = 0  # dilate the mask by this many pixels before filling
    feather: int = 0  # blend the fill into the surround over this many pixels (inside the mask)


@pipeline("inpaint")
def run(spec: InpaintSpec, ctx: Context) -> Generator[Progress, None, Result]:
    rgb, alpha_channel, mask = _validate(spec)
    hole = masks.grow(mask, int(spec.grow)) > 0
    ctx.check()
    yield Progress(0, 1, "Preparing the fill")

    t0 = time.perf_counter()
    latest: list[np.ndarray] = []  # the newest preview from the engine, sent with the next step
    fill = patchmatch.fill(rgb, hole, rng=ctx.rng, patch_size=int(spec.patch_size),
                           iterations=int(spec.iterations), check=ctx.check, preview=latest.append)
    total = 1
    with torch_threads(1):  # see torch_threads: robust when the machine is busy
        while True:
            try:
                step, total, message = next(fill)
            except StopIteration as done:
                filled: np.ndarray = done.value
                break
            preview = latest.pop() if latest else None
            latest.clear()
            yield Progress(step, total, message, preview)
    ctx.check()

    out = composite(rgb, filled, hole, int(spec.feather))
    info = {
        "engine": spec.engine,
        "filled_pixels": int(hole.sum()),
        "coverage": round(float(hole.mean()), 6),
        "steps": total,
        "fill_seconds": round(time.perf_counter() - t0, 3),
    }
    return Result(images=[out], spec=spec, alpha=alpha_channel, info=info)


def composite(original: np.ndarray, filled: np.ndarray, hole: np.ndarray,
              feather_px: int) -> np.ndarray:
    """``filled`` inside ``hole``, blended towards ``original`` over ``feather_px`` pixels inside
    the hole's edge; everything outside the hole is copied from ``original`` untouched."""
    out = original.copy()
    alpha = masks.feather(hole, feather_px)[hole][:, None]
    inside = alpha * filled[hole].astype(np.float32) + (1.0 - alpha) * original[hole]
    out[hole] = np.clip(np.rint(inside), 0, 255).astype(np.uint8)
    return out


def _validate(spec: InpaintSpec) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    image = input_image(spec.image, "No image to fill: open an image first.")
    h, w = image.shape[:2]
    if spec.mask is None:
        raise JobError("The mask is empty: paint the area to fill first.")
    mask = np.asarray(spec.mask.array())
    if mask.ndim != 2 or mask.shape != (h, w):
        size = f"{mask.shape[1]}x{mask.shape[0]}" if mask.ndim >= 2 else str(mask.shape)
        kind = "" if mask.ndim == 2 else f" with {mask.ndim} dimensions (it must be 2-D)"
        raise JobError(f"The mask is {size}{kind} but the image is {w}x{h}: they must match.")
    if masks.is_empty(mask):
        raise JobError("The mask is empty: paint the area to fill first.")
    if spec.engine not in ENGINES:
        raise JobError(f"Unknown inpaint engine {spec.engine!r}; choose one of: "
                       f"{', '.join(ENGINES)}.")
    for name in ("patch_size", "iterations", "grow", "feather"):
        value = getattr(spec, name)
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise JobError(f"{name} must be a whole number, got {value!r}.")
    lo, hi = PATCH_SIZES
    if not lo <= spec.patch_size <= hi or spec.patch_size % 2 == 0:
        raise JobError(f"The patch size must be an odd number from {lo} to {hi}, "
                       f"got {spec.patch_size}.")
    if not 1 <= spec.iterations <= MAX_ITERATIONS:
        raise JobError(f"Iterations must be from 1 to {MAX_ITERATIONS}, got {spec.iterations}.")
    for name in ("grow", "feather"):
        value = getattr(spec, name)
        if not 0 <= value <= MAX_RADIUS:
            raise JobError(f"{name.capitalize()} must be from 0 to {MAX_RADIUS} pixels, "
                           f"got {value}.")
    rgb = np.ascontiguousarray(image[..., :3])
    alpha = np.ascontiguousarray(image[..., 3]) if image.shape[2] == 4 else None
    return rgb, alpha, mask
