"""Super-resolution job specs and the limits of their settings.

Torch-free: the desktop panels build and restore these specs on the GUI thread, and importing
this module registers their kinds. The pipeline that runs them is core/pipelines/upscale.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.jobs import ImageRef, JobSpec

FAMILY = "upscale"
DEFAULT_MODEL = "upscale_faces"
# Architectures (core.registry names, as model cards record them) the upscale job runs:
# Easel's own x4 net, and the users' ESRGAN/Real-ESRGAN RRDB, SRVGG compact and SPAN nets.
ARCHITECTURES = ("upscale", "esrgan", "compact", "span")


@dataclass(frozen=True)
class UpscaleSpec(JobSpec):
    kind = "upscale"
    panel = ""  # an action of the Image menu, not of one panel; results go to the strip

    image: ImageRef | None = None  # HxWx3 (or HxWx4) uint8
    model: str = DEFAULT_MODEL  # an installed upscale model's name, or a .safetensors path;
    # the scale is the model's (its card's config: 4 for Easel's, 1, 2 or 4 for imported ones)
