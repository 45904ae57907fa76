"""Importing a user's third-party model file once, as an Easel model.

The file is read without unpickling (files.read_state_dict), recognised by the family
detectors (``DETECTORS``), cut down to its network's tensors (a LaMa checkpoint also holds a
discriminator and losses) and checked against Easel's own module for that architecture, built
on the meta device, before anything is written. It is then saved with ``weights.save_model``
as ``<family>/<name>.safetensors`` plus a model card in the user models folder, so it is
sha256-checked, listed and loaded like every other model; the card records the source file's
name, size and sha256.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from core import paths
from core.thirdparty import DETECTORS
from core.thirdparty.files import ThirdPartyError, read_state_dict
from core.weights import ModelCard, ModelInfo, WeightsError, check_fit, read_card, save_model


def recognise(state: dict[str, torch.Tensor], label: str) -> dict[str, Any] | None:
    """The first detector's description of ``state`` (see ``DETECTORS``), or None;
    ThirdPartyError naming ``label`` when a detector knows the layout but not its sizes."""
    for detect in DETECTORS:
        try:
            found = detect(state)
        except ValueError as exc:
            raise ThirdPartyError(f"{label} has the layout of a known model but sizes Easel "
                                  f"cannot build ({exc}).") from None
        if found is not None:
            return found
    return None


def network_tensors(state: dict[str, torch.Tensor], found: dict[str, Any], card: ModelCard,
                    source: Path) -> dict[str, torch.Tensor]:
    """The tensors of the network ``found`` describes, under the names of Easel's module;
    ThirdPartyError naming ``source`` unless they are exactly what that module holds."""
    prefix = found.get("prefix", "")
    tensors = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    # Batch norm's step counters are never used in inference; some re-saved files drop them.
    for key in [k for k in tensors if k.endswith(".running_mean")]:
        tensors.setdefault(key.removesuffix("running_mean") + "num_batches_tracked",
                           torch.zeros((), dtype=torch.long))
    try:
        check_fit(card, {k: tuple(v.shape) for k, v in tensors.items()}, source)
    except WeightsError as exc:
        raise ThirdPartyError(f"{exc} It is not a {found['kind']} Easel can load.") from None
    return tensors


def import_thirdparty(source: str | Path, choose_name: Callable[[str, str], str]
                      ) -> ModelInfo | None:
    """Save the user's model file ``source`` as an Easel model in the user models folder, under
    ``choose_name(family, file stem)``; None when no detector knows the file.
    ThirdPartyError (one line naming the file) when it cannot be read or is a known kind of
    model whose tensors do not fit."""
    source = Path(source)
    state = read_state_dict(source)
    found = recognise(state, source.name)
    if found is None:
        return None
    family = found["family"]
    with source.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    card = ModelCard(
        name=source.stem, family=family, architecture=found["architecture"],
        config=found["config"], data=f"imported from {source.name}",
        command=f"easel models import {source.name}",
        notes=f"A {found['kind']} imported from the user's file {source.name}; Easel did not "
              "train it, so the card has no recipe or metrics.",
        extra={"source": {"file": source.name, "bytes": source.stat().st_size,
                          "sha256": digest}})
    tensors = network_tensors(state, found, card, source)
    name = choose_name(family, source.stem)
    path = save_model(paths.models_dir() / family, name, tensors, card)
    return ModelInfo(name, family, "user", path, read_card(path))
