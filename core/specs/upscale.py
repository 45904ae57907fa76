"""x4 super-resolution job specs and the limits of their settings.

Torch-free: the desktop panels build and restore these specs on the GUI thread, and importing
this module registers their kinds. The pipeline that runs them is core/pipelines/upscale.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.jobs import ImageRef, JobSpec

FAMILY = "upscale"
DEFAULT_MODEL = "upscale_faces"


@dataclass(frozen=True)
class UpscaleSpec(JobSpec):
    kind = "upscale"
    panel = ""  # an action of the Image menu, not of one panel; results go to the strip

    image: ImageRef | None = None  # HxWx3 (or HxWx4) uint8
    model: str = DEFAULT_MODEL  # an installed upscale model's name, or a .safetensors path
