"""Loading a registered Stable Diffusion model through diffusers, offline, and keeping it.

Every load names its config folder (``config=``) and passes ``local_files_only=True``; there is
no safety checker and no feature extractor; the tokenizer is built from Easel's copy of CLIP's
vocabulary. The Hugging Face libraries are told they are offline before they are imported.
One model stays loaded between jobs (a second evicts the first: each is several GB).

Devices: CUDA runs the UNet and text encoder in float16 and the VAE in float32 (the SD VAE
overflows float16 at large sizes); MPS and the CPU run float32.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core.thirdparty.files import ThirdPartyError
from core.thirdparty.sd import FAMILY, VARIANTS, Variant, offline
from core.thirdparty.sd.tokenizer import folder_tokenizer
from core.weights import ModelCard, check_registered, find_model, list_models, registered

_lock = threading.Lock()
_loaded: dict[tuple, SDModel] = {}  # at most one entry


@dataclass
class SDModel:
    pipe: Any  # diffusers StableDiffusionPipeline: its components, not its __call__
    name: str
    card: ModelCard
    variant: Variant
    device: torch.device
    dtype: torch.dtype

    @property
    def native_size(self) -> int:
        """The picture side the model was trained at (512 or 768)."""
        return int(self.pipe.unet.config.sample_size) * self.pipe.vae_scale_factor

    @property
    def inpainting(self) -> bool:
        return int(self.pipe.unet.config.in_channels) == 9


def installed() -> list[dict[str, Any]]:
    """Every registered SD model whose card reads: name, variant label, prediction type,
    whether it inpaints (9 channels), from the cards alone."""
    out = []
    for m in list_models(FAMILY):
        variant = VARIANTS.get(str(m.card.config.get("variant"))) if m.card else None
        if variant is not None:
            out.append({"name": m.name, "label": variant.label,
                        "prediction": m.card.config.get("prediction", variant.prediction),
                        "inpainting": variant.inpainting})
    return out


def find(name: str) -> tuple[ModelCard, Variant]:
    """The card and variant of the installed SD model ``name``; ThirdPartyError naming the
    installed ones, or saying why the model cannot be used now."""
    info = find_model(name, (FAMILY,))
    variant = VARIANTS.get(str(info.card.config.get("variant"))) if info else None
    if info is None or variant is None or registered(info.card) is None:
        known = ", ".join(m["name"] for m in installed()) or "none"
        raise ThirdPartyError(f"No Stable Diffusion model called {name!r} is installed "
                              f"(installed: {known}); add one with: easel models import FILE")
    problem = check_registered(info.card)
    if problem:
        raise ThirdPartyError(f"{name}: {problem}")
    return info.card, variant


def dtypes(device: torch.device) -> tuple[torch.dtype, torch.dtype]:
    """(UNet and text encoder dtype, VAE dtype) on ``device``."""
    if device.type == "cuda":
        return torch.float16, torch.float32
    return torch.float32, torch.float32


def load_pipeline(source: Path, single_file: bool, config_dir: Path,
                  dtype: torch.dtype = torch.float32) -> Any:
    """A StableDiffusionPipeline of ``source`` (a single-file checkpoint read with the config
    folder ``config_dir``, or a diffusers folder) on the CPU, never touching the network."""
    offline()
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    for logging in (diffusers_logging, transformers_logging):  # a job reports its own progress
        logging.disable_progress_bar()
        logging.set_verbosity_error()

    common = {"local_files_only": True, "safety_checker": None, "feature_extractor": None,
              "requires_safety_checker": False, "dtype": dtype,
              "tokenizer": folder_tokenizer(config_dir)}
    try:
        if single_file:
            return StableDiffusionPipeline.from_single_file(
                str(source), config=str(config_dir), **common)
        return StableDiffusionPipeline.from_pretrained(str(source), use_safetensors=True,
                                                       **common)
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else \
            type(exc).__name__
        raise ThirdPartyError(f"{source.name} cannot be loaded: {first}") from None


def load(name: str, device: torch.device, attention_slicing: bool = False,
         vae_tiling: bool = False) -> SDModel:
    """The installed SD model ``name`` on ``device`` (the one kept from the last job when it is
    the same and its file has not changed)."""
    card, variant = find(name)
    record = registered(card)
    key = (name, card.sha256, record["size"], record["mtime_ns"], str(device))
    with _lock:
        model = _loaded.get(key)
        if model is None:
            _loaded.clear()  # free the last model before loading the next
            unet_dtype, vae_dtype = dtypes(device)
            pipe = load_pipeline(Path(record["path"]), card.config.get("format") != "diffusers",
                                 variant.config_dir)
            pipe.unet.to(device, unet_dtype)
            pipe.text_encoder.to(device, unet_dtype)
            pipe.vae.to(device, vae_dtype)
            model = SDModel(pipe, name, card, variant, device, unet_dtype)
            _loaded[key] = model
    # Memory options: slicing computes attention a head at a time; tiling decodes in tiles.
    if attention_slicing:
        model.pipe.enable_attention_slicing()
    else:
        model.pipe.disable_attention_slicing()
    if vae_tiling:
        model.pipe.vae.enable_tiling()
    else:
        model.pipe.vae.disable_tiling()
    return model


def unload() -> None:
    """Drop the kept model (after an out-of-memory, or to free memory)."""
    with _lock:
        _loaded.clear()
