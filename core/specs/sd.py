"""Stable Diffusion job settings: the text-to-image spec and the checks the SD inpaint engine
shares with it.

Torch-free: the desktop panels build and restore these specs on the GUI thread, and importing
this module registers their kinds. The pipeline that runs them is core/pipelines/sd.py; the
models are users' own checkpoints, registered in the ``sd`` family (core/thirdparty/sd).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.jobs import JobError, JobSpec

SD_FAMILY = "sd"
SD_SAMPLERS = ("ddim", "euler", "dpm++")  # DDIM; Euler (k-diffusion); DPM-Solver++(2M)
PREDICTIONS = ("", "epsilon", "v")  # "": what the model's card says
DEFAULT_STEPS = 25
DEFAULT_CFG = 7.5
MAX_STEPS = 150
MAX_CFG = 30.0
MIN_SIZE, MAX_SIZE = 64, 2048  # pixels, a multiple of 8 (the VAE's cell)
MAX_PROMPT_CHARS = 4000


def check_sd_settings(spec: Any) -> None:
    """JobError for SD settings out of range (text-to-image and the inpaint engine alike)."""
    for name in ("prompt", "negative_prompt"):
        text = getattr(spec, name)
        if not isinstance(text, str) or len(text) > MAX_PROMPT_CHARS:
            raise JobError(f"The {name.replace('_', ' ')} must be a text of at most "
                           f"{MAX_PROMPT_CHARS} characters.")
    if not isinstance(spec.model, str) or not spec.model.strip():
        raise JobError("Choose a Stable Diffusion model (easel models import FILE adds one).")
    steps = spec.steps
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise JobError(f"Steps must be from 1 to {MAX_STEPS}, got {steps!r}.")
    cfg = spec.cfg
    if isinstance(cfg, bool) or not isinstance(cfg, int | float) or not 0 <= cfg <= MAX_CFG:
        raise JobError(f"The CFG scale must lie from 0 to {MAX_CFG:g}, got {cfg!r}.")
    for name, allowed in (("sampler", SD_SAMPLERS), ("prediction", PREDICTIONS)):
        if getattr(spec, name) not in allowed:  # prediction '': the model card's
            raise JobError(f"Unknown Stable Diffusion {name} {getattr(spec, name)!r}; choose "
                           f"one of: {', '.join(map(repr, allowed))}.")


@dataclass(frozen=True)
class SDSceneSpec(JobSpec):
    """Text to image with a user's Stable Diffusion 1.x/2.x checkpoint."""

    kind = "sd_scene"
    panel = "scene"

    prompt: str = ""
    negative_prompt: str = ""
    model: str = ""  # an installed SD model's name (family "sd")
    steps: int = DEFAULT_STEPS
    cfg: float = DEFAULT_CFG  # classifier-free guidance scale; 1 or less: none
    width: int = 0  # pixels, a multiple of 8; 0: the model's own size (512 or 768)
    height: int = 0
    sampler: str = "dpm++"
    prediction: str = ""  # "epsilon" or "v" overrides the model card's
    attention_slicing: bool = False  # less memory, a little slower, the same picture
    vae_tiling: bool = False  # decode large pictures in tiles (less memory; tiles may show)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_sd_settings(self)
        for name in ("width", "height"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v != 0 and not (
                    MIN_SIZE <= v <= MAX_SIZE and v % 8 == 0):
                raise JobError(f"The {name} must be a multiple of 8 from {MIN_SIZE} to "
                               f"{MAX_SIZE} pixels (or 0: the model's own size), got {v!r}.")
        for name in ("attention_slicing", "vae_tiling"):
            if not isinstance(getattr(self, name), bool):
                raise JobError(f"{name.replace('_', ' ').capitalize()} is on or off.")
