"""Registering a user's Stable Diffusion checkpoint or diffusers folder where it lies.

SD files are 2-7 GB, so they are not copied: a model card in ``<models>/sd/<name>.json``
records the file's path, size, modification time and sha256, its variant (which shipped config
folder) and what it predicts (noise or v). The file is re-checked by size and time at every use
and by its sha256 on ``easel models verify``. A pickled checkpoint (``.ckpt``) holding only
weights is converted once to ``<models>/sd/<name>.safetensors`` (read with
``torch.load(weights_only=True)``; anything more is refused by core/thirdparty/files.py).

The prediction type: a sibling ``NAME.yaml`` (the original inference config) says
``parameterization: "v"`` for v-prediction models; ``--prediction`` overrides it; SD 2.x files
look the same at 512 px (noise) and 768 px (v), so without either the file's name decides
("base" in it: 512 px) and the card says it was a guess.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core import paths
from core.paths import atomic_write, temp_name
from core.thirdparty.files import PICKLED, ThirdPartyError, read_state_dict
from core.thirdparty.sd import ARCHITECTURE, FAMILY, PREDICTIONS, checkpoint, variant_for
from core.thirdparty.sd.checkpoint import (
    OPENS,
    as_meta,
    header_tensors,
    looks_like_sd,
    model_type,
    unmapped,
)
from core.weights import (
    MAX_JSON_BYTES,
    REGISTERED,
    SUFFIX,
    ModelCard,
    ModelInfo,
    WeightsError,
    card_path,
    fingerprint,
    read_regular,
    sha256_of,
)

MAX_CHECKPOINT = 16 << 30  # a pickled checkpoint read into memory to convert it
SD_PIPELINES = ("StableDiffusionPipeline", "StableDiffusionInpaintPipeline",
                "StableDiffusionImg2ImgPipeline")


def is_sd_source(path: Path) -> bool:
    """Whether import should treat ``path`` as Stable Diffusion: a diffusers folder, or a
    checkpoint whose tensor names are SD's (SDXL included, to refuse it with its name)."""
    if path.is_dir():
        return (path / "model_index.json").is_file()
    return looks_like_sd(path)


def register_sd(source: Path, name: str, prediction: str | None = None,
                progress: Callable[[int, int], None] | None = None) -> ModelInfo:
    """Record ``source`` as the SD model ``name`` (a free, valid name: the caller checks it);
    ThirdPartyError naming the file when it is not an SD 1.x/2.x model Easel can open.
    ``progress(bytes, size)`` follows the hashing of the file (it may raise to cancel)."""
    if prediction is not None and prediction not in PREDICTIONS:
        raise ThirdPartyError(f"The prediction type is 'v' or 'epsilon', not {prediction!r}.")
    folder = paths.models_dir() / FAMILY
    config: dict[str, Any]
    if source.is_dir():
        config, said = _folder_config(source, prediction)
        target, note = source, ""
        card = _card(name, source, target, config, said, note, progress)
    else:
        converted = source.suffix.lower() in PICKLED
        target = _convert(source, folder / f"{name}{SUFFIX}") if converted else source
        note = f"Converted to safetensors from {source}." if converted else ""
        try:
            tensors = header_tensors(target)
            kind = model_type(tensors, source.name)
            pred, said = _prediction(source, kind, prediction)
            variant = variant_for(kind, pred)
            problem = unmapped(tensors, variant)
            if problem:
                raise ThirdPartyError(f"{source.name} does not fit {variant.label}: {problem}.")
            config = {"format": "single_file", "model_type": kind, "variant": variant.name,
                      "prediction": pred}
            card = _card(name, source, target, config, said, note, progress)
        except BaseException:
            if converted:
                target.unlink(missing_ok=True)
            raise
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}{SUFFIX}"
    atomic_write(card_path(path), (json.dumps(card.to_dict(), indent=2) + "\n").encode())
    return ModelInfo(name, FAMILY, "user", path, card)


def _card(name: str, source: Path, target: Path, config: dict[str, Any], said: str,
          note: str, progress: Callable[[int, int], None] | None) -> ModelCard:
    variant = variant_for(config["model_type"], config["prediction"])
    try:
        before = fingerprint(target)
        digest = sha256_of(target, progress)
        after = fingerprint(target)
    except (OSError, WeightsError) as exc:
        raise ThirdPartyError(f"{source} cannot be read: {exc}") from None
    if after != before:
        raise ThirdPartyError(f"{source} changed while it was being read; import it again.")
    config["variant"] = variant.name
    record = {"path": str(target.resolve()), **after}
    return ModelCard(
        name=name, family=FAMILY, architecture=ARCHITECTURE, config=config, sha256=digest,
        data=f"{variant.label} ({source.name})",
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        notes=" ".join(x for x in (f"Prediction type {config['prediction']}: {said}.", note,
                                   "Used where it lies, not copied.") if x),
        extra={REGISTERED: record, "imported_from": str(source)})


# --------------------------------------------------------------------------- prediction


def _prediction(source: Path, kind: str, option: str | None) -> tuple[str, str]:
    """(prediction type, where it came from) for a single-file checkpoint."""
    if option is not None:
        return option, "set on import"
    yaml_said = _yaml_prediction(source)
    if yaml_said is not None:
        return yaml_said, f"from {source.with_suffix('.yaml').name}"
    if kind != "v2":
        return "epsilon", "the default of this kind of model"
    if "base" in source.stem.lower():
        return "epsilon", ("guessed from the file name (an SD 2.x 'base' model draws 512 px "
                           "from noise predictions); re-import with --prediction v if its "
                           "pictures come out wrong")
    return "v", ("guessed (SD 2.0/2.1 at 768 px predict v); re-import with --prediction "
                 "epsilon if its pictures come out wrong, or put its .yaml beside it")


def _yaml_prediction(source: Path) -> str | None:
    """The ``parameterization`` a sibling NAME.yaml (the original inference config) states:
    "v" for v, "eps" for noise; None when there is no such file or line."""
    yaml = source.with_suffix(".yaml")
    if not yaml.is_file():
        return None
    try:
        text = read_regular(yaml, MAX_JSON_BYTES).decode("utf-8", "replace")
    except (OSError, WeightsError):
        return None
    found = re.search(r"^\s*parameterization:\s*[\"']?(\w+)", text, re.MULTILINE)
    if found is None:
        return "epsilon" if "model:" in text else None  # the original's default is eps
    return "v" if found.group(1) == "v" else "epsilon"


# --------------------------------------------------------------------------- sources


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(read_regular(path, MAX_JSON_BYTES).decode("utf-8"))
    except (OSError, WeightsError, ValueError) as exc:
        raise ThirdPartyError(f"{path} cannot be read ({exc}).") from None
    if not isinstance(data, dict):
        raise ThirdPartyError(f"{path} is not a diffusers config.")
    return data


def _folder_config(folder: Path, option: str | None) -> tuple[dict[str, Any], str]:
    """The card config of a diffusers folder (its own configs say what it is)."""
    index = _read_json(folder / "model_index.json")
    cls = str(index.get("_class_name", ""))
    if "XL" in cls:
        raise ThirdPartyError(f"{folder.name} is an SDXL model ({cls}); Easel does not open "
                              f"SDXL yet. {OPENS}.")
    if cls not in SD_PIPELINES:
        raise ThirdPartyError(f"{folder.name} is a diffusers {cls or 'folder'}, not Stable "
                              f"Diffusion 1.x/2.x. {OPENS}.")
    unet = _read_json(folder / "unet" / "config.json")
    width, channels = unet.get("cross_attention_dim"), unet.get("in_channels")
    versions = {w: v for v, w in checkpoint.TEXT_WIDTH.items()}
    if width not in versions or channels not in (4, 9):
        raise ThirdPartyError(f"{folder.name}: its version cannot be told (a UNet with "
                              f"{channels} input channels and text width {width}). {OPENS}.")
    for part in ("unet", "vae", "text_encoder"):
        if not any((folder / part).glob("*.safetensors")):
            raise ThirdPartyError(f"{folder.name}/{part} has no .safetensors weights; Easel "
                                  "reads diffusers folders saved with safetensors.")
    kind = {"v1": "inpainting", "v2": "inpainting_v2"}[versions[width]] if channels == 9 \
        else versions[width]
    scheduler = folder / "scheduler" / "scheduler_config.json"
    said = "set on import"
    pred = option
    if pred is None:
        found = _read_json(scheduler).get("prediction_type", "epsilon") \
            if scheduler.is_file() else "epsilon"
        pred, said = ("v" if found == "v_prediction" else "epsilon"), "from its scheduler config"
    return {"format": "diffusers", "model_type": kind, "prediction": pred}, said


def _convert(source: Path, target: Path) -> Path:
    """A pickled checkpoint's weights written once as safetensors at ``target``."""
    from safetensors.torch import save_file

    state = read_state_dict(source, limit=MAX_CHECKPOINT)
    model_type(as_meta({k: tuple(v.shape) for k, v in state.items()}), source.name)
    need = sum(t.numel() * t.element_size() for t in state.values())
    target.parent.mkdir(parents=True, exist_ok=True)
    free = paths.free_bytes(target.parent)
    if free < need * 1.05:
        raise ThirdPartyError(f"Converting {source.name} to safetensors needs {need / 1e9:.1f} "
                              f"GB in {target.parent}; {free / 1e9:.1f} GB are free.")
    tmp = temp_name(target)
    try:
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        tmp.replace(target)
    except (OSError, ValueError, RuntimeError) as exc:  # e.g. tensors that share memory
        tmp.unlink(missing_ok=True)
        raise ThirdPartyError(f"Could not write {target}: {exc}") from None
    return target

