"""Latent space job specs (sample, encode, edit, walk, directions, info) and their limits.

Torch-free: the desktop panels build and restore these specs on the GUI thread, and importing
this module registers their kinds. The pipeline that runs them is core/pipelines/latent.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.jobs import ImageRef, JobError, JobSpec

FAMILIES = ("vae", "dcgan")
DEFAULT_MODEL = "vae_faces"
DEFAULT_UPSCALER = "upscale_faces"
MAX_COUNT = 64  # samples per grid
MAX_FRAMES = 120  # frames per walk
MAX_SLOT = 32  # latents averaged per slot
MAX_INVERSION_STEPS = 2000
METHODS = ("mean", "classifier")  # how a direction is found (core.algorithms.directions)
MAX_AMOUNT = 5.0  # slider range is far inside this; the bound keeps specs sane
NO_TRUNCATION = 1.0  # PSI of the truncation trick that leaves latents as they are
Latents = tuple[tuple[float, ...], ...]


# --------------------------------------------------------------------------- specs


def _latents(value: Any, what: str, limit: int = MAX_SLOT) -> Latents:
    """Normalise nested lists (as read back from JSON) to a tuple of float tuples."""
    try:
        out = tuple(tuple(float(x) for x in z) for z in value)
    except (TypeError, ValueError):
        raise JobError(f"{what} must be a list of latent vectors (lists of numbers).") from None
    if len(out) > limit:
        raise JobError(f"{what} holds {len(out)} latents; at most {limit} are allowed.")
    if any(not all(math.isfinite(x) for x in z) for z in out):
        raise JobError(f"{what} contains a number that is not finite.")
    return out


def _vector(value: Any, what: str) -> tuple[float, ...]:
    return _latents([value], what)[0] if len(value) else ()


@dataclass(frozen=True)
class LatentSpec(JobSpec):
    """Fields every latent job shares."""

    panel = "latent"
    model: str = DEFAULT_MODEL  # a model name (shipped or user) or a .safetensors path

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.model, str) or not self.model.strip():
            raise JobError("Choose a latent model (a VAE or a DCGAN).")


@dataclass(frozen=True)
class LatentInfoSpec(LatentSpec):
    kind = "latent_info"


@dataclass(frozen=True)
class LatentDecodeSpec(LatentSpec):
    """Fields of the jobs that decode latents they draw or compose (sample, edit, walk)."""

    # PSI of the truncation trick (core.pipelines.latent.truncate): each decoded latent is
    # pulled toward the mean latent, z' = mean + PSI (z - mean). 1 = off (full variety); lower
    # gives more typical faces with less variety; 0 decodes the mean latent itself.
    truncation: float = NO_TRUNCATION

    def __post_init__(self) -> None:
        super().__post_init__()
        psi = self.truncation
        if isinstance(psi, bool) or not isinstance(psi, int | float) or not 0 <= psi <= 1:
            raise JobError(f"The truncation (variety <-> fidelity) must be a number from 0 to 1 "
                           f"(1 = off), not {psi!r}.")  # NaN fails the range test too
        object.__setattr__(self, "truncation", float(psi))


@dataclass(frozen=True)
class LatentSampleSpec(LatentDecodeSpec):
    kind = "latent_sample"
    count: int = 16

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.count, int) or not 1 <= self.count <= MAX_COUNT:
            raise JobError(f"The grid holds 1 to {MAX_COUNT} samples, not {self.count!r}.")


@dataclass(frozen=True)
class LatentEncodeSpec(LatentSpec):
    kind = "latent_encode"
    image: ImageRef | None = None
    crop: tuple[int, ...] = ()  # (left, top, right, bottom) in image pixels; () = centre square
    method: str = "auto"  # auto | encoder | inversion
    steps: int = 300  # inversion steps

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "crop", tuple(int(v) for v in self.crop))
        if self.crop and len(self.crop) != 4:
            raise JobError("A crop is four numbers: left, top, right, bottom.")
        if self.method not in ("auto", "encoder", "inversion"):
            raise JobError(f"Unknown encoding method {self.method!r}; use auto, encoder or "
                           "inversion.")
        if not isinstance(self.steps, int) or not 1 <= self.steps <= MAX_INVERSION_STEPS:
            raise JobError(f"Inversion steps must be 1 to {MAX_INVERSION_STEPS}.")


@dataclass(frozen=True)
class LatentEditSpec(LatentDecodeSpec):
    """mean(a) - mean(b) + mean(c), moved along ``directions`` ((name, amount) pairs)."""

    kind = "latent_edit"
    a: Latents = ()
    b: Latents = ()
    c: Latents = ()
    directions: tuple[tuple[str, float], ...] = ()
    method: str = "mean"  # which kind of attribute direction: mean | classifier
    upscale: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("a", "b", "c"):
            object.__setattr__(self, name, _latents(getattr(self, name), f"Slot {name.upper()}"))
        try:
            moves = tuple((str(n), float(v)) for n, v in self.directions)
        except (TypeError, ValueError):
            raise JobError("Directions must be (name, amount) pairs.") from None
        if any(not math.isfinite(v) or abs(v) > MAX_AMOUNT for _, v in moves):
            raise JobError(f"Direction amounts must be between -{MAX_AMOUNT:g} and "
                           f"{MAX_AMOUNT:g}.")
        object.__setattr__(self, "directions", moves)
        if self.method not in METHODS:
            raise JobError(f"Unknown direction method {self.method!r}; use "
                           f"{' or '.join(METHODS)}.")


@dataclass(frozen=True)
class LatentWalkSpec(LatentDecodeSpec):
    kind = "latent_walk"
    start: tuple[float, ...] = ()
    end: tuple[float, ...] = ()
    frames: int = 8
    mode: str = "slerp"  # slerp | linear
    upscale: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "start", _vector(self.start, "The walk's start"))
        object.__setattr__(self, "end", _vector(self.end, "The walk's end"))
        if not isinstance(self.frames, int) or not 2 <= self.frames <= MAX_FRAMES:
            raise JobError(f"A walk has 2 to {MAX_FRAMES} frames, not {self.frames!r}.")
        if self.mode not in ("slerp", "linear"):
            raise JobError(f"Unknown interpolation {self.mode!r}; use slerp or linear.")


@dataclass(frozen=True)
class LatentDirectionSpec(LatentSpec):
    """A user direction from ``those`` towards ``these`` (latents of the images picked)."""

    kind = "latent_direction"
    name: str = ""
    these: Latents = ()
    those: Latents = ()
    method: str = "mean"

    def __post_init__(self) -> None:
        super().__post_init__()
        name = " ".join(str(self.name).split())
        if not name or len(name) > 40:
            raise JobError("Name the direction (1 to 40 characters).")
        object.__setattr__(self, "name", name)
        for f in ("these", "those"):
            object.__setattr__(self, f, _latents(getattr(self, f), f"The {f!r} set", 256))
        if self.method not in METHODS:
            raise JobError(f"Unknown direction method {self.method!r}.")


# --------------------------------------------------------------------------- models
