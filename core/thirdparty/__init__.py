"""Users' own third-party model files: upscalers and LaMa through Easel's own loaders, Stable
Diffusion through diffusers. ``files.read_state_dict`` reads any of them without unpickling;
each family module's ``detect(state_dict)`` says whether a file is one of its own.

A detector takes the file's state dict (unwrapped, on the CPU) and returns None when the file
is not of its family, raises ThirdPartyError (a phrase such as "looks like X, but ...") when
it is but cannot be run, and otherwise returns a dict with:

    architecture  the core.registry name that builds the net
    family        the models folder it goes in ("upscale", ...)
    config        the architecture's config, read from the tensor shapes
    state_dict    the tensors under the net's own key names (renamed where the file's differ)
    layout        the file layout it was read as ("Real-ESRGAN (BasicSR)", "old ESRGAN", ...)
    description   a few words for the user ("ESRGAN RRDB x4 (23 blocks, 64 features, ...)")

:func:`convert` tries :data:`DETECTORS` in order and turns the first match into the tensors
and model card of an Easel model file (core/model_manager.py writes them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from core.thirdparty import upscalers
from core.thirdparty.files import ThirdPartyError, parse_state_dict
from core.weights import ModelCard, WeightsError, check_fit

Detector = Callable[[dict[str, torch.Tensor]], dict[str, Any] | None]

DETECTORS: list[Detector] = [*upscalers.DETECTORS]
OPENS = ("Real-ESRGAN/ESRGAN RRDB, SRVGG compact, SPAN upscalers, LaMa, Stable Diffusion "
         "1.x/2.x")
RGB = 3


class UnknownModel(ThirdPartyError):
    """A file that no detector recognises."""


def detect(state: dict[str, torch.Tensor], path: Path) -> dict[str, Any]:
    """The first detector's reading of ``state`` (from file ``path``); ThirdPartyError naming
    the file when no detector knows it or the one that does finds it broken."""
    for detector in DETECTORS:
        try:
            found = detector(state)
        except ThirdPartyError as exc:
            raise ThirdPartyError(f"{path.name} {exc}.") from None
        if found is not None:
            return found
    raise UnknownModel(f"{path.name} is not a model Easel can open (it opens {OPENS}).")


def convert(data: bytes, path: Path) -> tuple[dict[str, torch.Tensor], ModelCard]:
    """The tensors and model card (named after the file, sha256 not yet filled in) of user
    file ``path`` whose bytes are ``data``; ThirdPartyError with one line naming the file when
    it is unreadable, of no architecture Easel runs, or shaped unlike the one it resembles."""
    found = detect(parse_state_dict(data, path), path)
    config, description = found["config"], found["description"]
    channels = (config.get("in_channels", RGB), config.get("out_channels", RGB))
    if found["family"] == upscalers.FAMILY and channels != (RGB, RGB):
        raise ThirdPartyError(f"{path.name} is an upscaler for {channels[0]}-channel "
                              f"pictures giving {channels[1]} channels; Easel upscales RGB "
                              "pictures (3 channels).")
    card = ModelCard(
        name=path.stem, family=found["family"], architecture=found["architecture"],
        config=config, command=f"easel models import {path.name}",
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        notes=f"Imported from {path.name}: {description}.",
        extra={"imported_from": str(path), "source_file": path.name, "source_size": len(data),
               "source_sha256": hashlib.sha256(data).hexdigest(), "layout": found["layout"],
               "description": description})
    tensors = found["state_dict"]
    try:  # the net, built on the meta device, must be exactly these tensors
        check_fit(card, {k: tuple(v.shape) for k, v in tensors.items()}, Path(path.name))
    except WeightsError as exc:
        raise ThirdPartyError(f"{exc} It looked like {description}.") from None
    return tensors, card
