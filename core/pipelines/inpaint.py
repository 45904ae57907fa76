"""Inpainting pipeline: fill the masked part of an image.

Engines: ``patchmatch`` (weight-free, core/algorithms/patchmatch.py). Diffusion joins later.
Pixels outside the (grown) mask are bit-identical to the input.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

from core.jobs import Context, ImageRef, JobError, JobSpec, Progress, Result, pipeline

ENGINES = ("patchmatch",)


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
    raise JobError("not built yet")
    yield  # pragma: no cover
