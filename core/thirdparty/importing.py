"""Importing a user's third-party model file once, as an Easel model.

The file's bytes (read once, with a size bound, by the caller) are parsed without unpickling
(files.parse_state_dict), recognised by the first of :data:`core.thirdparty.DETECTORS` that
knows them, and checked against Easel's own module for that architecture, built on the meta
device, before anything is written. The network is then saved with ``weights.save_model`` as
``<family>/<name>.safetensors`` plus a generated model card in the user models folder, so it
is sha256-checked, listed and loaded like every other model; the card records the source
file's name, size and sha256 (of the very bytes that were parsed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import torch

from core import paths
from core.thirdparty import DETECTORS, OPENS
from core.thirdparty.detected import Detected
from core.thirdparty.files import ThirdPartyError, parse_state_dict
from core.weights import ModelCard, ModelInfo, WeightsError, check_fit, read_card, save_model


class UnknownModel(ThirdPartyError):
    """A file that no detector recognises."""


def detect(state: dict[str, torch.Tensor], source: Path) -> Detected:
    """The first detector's reading of ``state`` (the tensors of file ``source``);
    ThirdPartyError naming the file when no detector knows it (UnknownModel) or the one that
    does finds it broken."""
    for detector in DETECTORS:
        try:
            found = detector(state)
        except ThirdPartyError as exc:
            raise ThirdPartyError(f"{source.name} {exc}.") from None
        if found is not None:
            return found
    raise UnknownModel(f"{source.name} is not a model Easel can open (it opens {OPENS}).")


def import_thirdparty(data: bytes, source: Path, choose_name: Callable[[Detected], str]
                      ) -> ModelInfo:
    """Save user file ``source``, whose bytes are ``data``, as an Easel model in the user
    models folder under ``choose_name(what it was detected as)``. ThirdPartyError (one line
    naming the file) when it cannot be read, is of no architecture Easel runs (UnknownModel) or
    is shaped unlike the one it resembles; nothing is written then."""
    found = detect(parse_state_dict(data, source), source)
    card = ModelCard(
        name=source.stem, family=found.family, architecture=found.architecture,
        config=found.config, data=f"imported from {source.name}",
        command=f"easel models import {source.name}",
        notes=f"Imported from the user's file {source.name}: {found.description}. Easel did "
              "not train it, so the card has no recipe or metrics.",
        extra={"source": {"file": source.name, "bytes": len(data),
                          "sha256": hashlib.sha256(data).hexdigest()},
               "layout": found.layout, "description": found.description})
    tensors = found.state_dict
    try:  # the net, built on the meta device, must be exactly these tensors
        check_fit(card, {k: tuple(v.shape) for k, v in tensors.items()}, Path(source.name))
    except WeightsError as exc:
        raise ThirdPartyError(f"{exc} It looked like {found.description}.") from None
    name = choose_name(found)
    # Every family read by a detector is copied here, as safetensors. Stable Diffusion
    # checkpoints (2-7 GB, never read whole) take their own path: model_manager._import_sd
    # registers them in place (core/thirdparty/sd/register.py) before any detector runs.
    path = save_model(paths.models_dir() / found.family, name, tensors, card)
    return ModelInfo(name, found.family, "user", path, read_card(path))
