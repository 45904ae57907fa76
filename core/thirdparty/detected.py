"""The one answer every family's detector gives about a user's model file.

A detector is ``detect(state_dict) -> Detected | None``: it takes the file's tensors
(unwrapped, on the CPU) and returns None when the file is not of its family, raises
ThirdPartyError with a phrase such as "looks like X, but ..." (the import puts the file's name
before it) when the file is of its family but cannot be run, and otherwise a :class:`Detected`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Detected:
    """A user's file read as one of the networks Easel builds."""

    family: str  # the models folder it goes in ("upscale", "lama")
    architecture: str  # the core.registry name that builds the net
    config: dict[str, Any]  # the architecture's config, read from the tensor shapes
    state_dict: dict[str, torch.Tensor]  # the net's tensors under its module's own key names
    description: str  # a few words for the user ("ESRGAN RRDB x4 (23 blocks, 64 features)")
    layout: str  # the file layout it was read as ("Real-ESRGAN (BasicSR)", "old ESRGAN", ...)


Detector = Callable[[dict[str, torch.Tensor]], Detected | None]
