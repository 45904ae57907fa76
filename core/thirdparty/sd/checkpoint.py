"""Which Stable Diffusion a checkpoint is, from its tensors' names and shapes alone.

The tensors are read from the safetensors header (no weights), as ``meta`` tensors: diffusers'
own model-type inference and its key conversions run on them at no memory cost. So import
knows, before anything is loaded, that the file is SD 1.x/2.x (or inpainting), which shipped
config folder fits it, and that every network tensor of that config is in the file with the
right shape (diffusers itself loads single files with ``strict=False`` and would leave a
missing tensor randomly initialised).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import torch

from core.thirdparty.files import PICKLED, ThirdPartyError
from core.thirdparty.sd import Variant, offline
from core.weights import WeightsError, read_header

UNET_PREFIX = "model.diffusion_model."
# A key in every SD 1.x/2.x checkpoint's UNet, and the cross-attention input width there:
# 768 for OpenAI's CLIP ViT-L (SD 1.x), 1024 for OpenCLIP ViT-H (SD 2.x); and where each
# version keeps its text encoder.
CROSS_ATTENTION = UNET_PREFIX + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
TEXT_WIDTH = {"v1": 768, "v2": 1024}
TEXT_KEYS = {"v1": "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",
             "v2": "cond_stage_model.model.token_embedding.weight"}
VAE_KEY = "first_stage_model.encoder.conv_in.weight"
SDXL_TYPES = ("xl_base", "xl_refiner", "xl_inpaint", "playground-v2-5")
SD_TYPES = ("v1", "v2", "inpainting", "inpainting_v2")
OPENS = "Easel opens Stable Diffusion 1.x and 2.x checkpoints (and their inpainting models)"


def header_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file as meta tensors (names and shapes, no data)."""
    try:
        shapes, _ = read_header(path)
    except WeightsError as exc:
        raise ThirdPartyError(str(exc)) from None
    except OSError as exc:
        raise ThirdPartyError(f"{path} cannot be read: {exc}") from None
    return as_meta(shapes)


def as_meta(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    return {k: torch.empty(s, device="meta") for k, s in shapes.items()}


def looks_like_sd(path: Path) -> bool:
    """Whether ``path`` is worth opening as an SD checkpoint, read cheaply: a safetensors
    header, or the pickle inside a torch.save zip searched for SD's key prefix (nothing is
    unpickled). A file that cannot be read this way is left to the other importers."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            shapes, _ = read_header(path)
            return any(k.startswith((UNET_PREFIX, "conditioner.", "cond_stage_model."))
                       for k in shapes)
        if suffix in PICKLED and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                pickles = [i for i in z.infolist() if i.filename.endswith("data.pkl")]
                if len(pickles) != 1 or pickles[0].file_size > 64 << 20:
                    return False
                with z.open(pickles[0]) as f:
                    return UNET_PREFIX.encode() in f.read()
    except (OSError, WeightsError, zipfile.BadZipFile, ValueError):
        return False
    return False


def model_type(tensors: dict[str, Any], name: str) -> str:
    """diffusers' model type of an SD 1.x/2.x checkpoint ("v1", "v2", "inpainting",
    "inpainting_v2"); ThirdPartyError naming the file for anything else."""
    offline()
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    try:
        found = infer_diffusers_model_type(tensors)
    except (KeyError, ValueError, IndexError, AttributeError) as exc:
        raise ThirdPartyError(f"{name}: its kind cannot be told ({exc}). {OPENS}.") from None
    if found in SDXL_TYPES:
        raise ThirdPartyError(f"{name} is an SDXL checkpoint; Easel does not open SDXL yet. "
                              f"{OPENS}.")
    if found not in SD_TYPES:
        raise ThirdPartyError(f"{name} is not a Stable Diffusion 1.x/2.x checkpoint (it looks "
                              f"like {found}). {OPENS}.")
    # diffusers answers "v1" for anything it does not recognise: check that it really is one.
    version = "v2" if found.endswith("v2") else "v1"
    width = _last_dim(tensors.get(CROSS_ATTENTION))
    if width != TEXT_WIDTH[version]:
        raise ThirdPartyError(f"{name}: its version cannot be told (no SD 1.x/2.x UNet "
                              f"{'of this kind ' if width else ''}in it). {OPENS}.")
    missing = [what for what, key in (("text encoder", TEXT_KEYS[version]),
                                      ("VAE", VAE_KEY)) if key not in tensors]
    if missing:
        raise ThirdPartyError(f"{name} has no {' and no '.join(missing)}: Easel opens whole "
                              "checkpoints (UNet, VAE and text encoder in one file).")
    return found


def _last_dim(t: Any) -> int:
    return int(t.shape[-1]) if t is not None and len(t.shape) >= 1 else 0


def unmapped(tensors: dict[str, torch.Tensor], variant: Variant, config_dir: Path | None = None
             ) -> str:
    """What of the variant's UNet, VAE and text encoder the checkpoint does not fill (missing
    tensors, wrong shapes), as diffusers converts it: '' when everything maps."""
    import json

    offline()
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import (
        convert_ldm_clip_checkpoint,
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
        convert_open_clip_checkpoint,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    folder = config_dir or variant.config_dir

    def config(sub: str) -> dict[str, Any]:
        return json.loads((folder / sub / "config.json").read_text("utf-8"))

    problems = []
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config("unet"))
        vae = AutoencoderKL.from_config(config("vae"))
        text = CLIPTextModel(CLIPTextConfig(**config("text_encoder")))
    try:
        converted = {"UNet": (unet, convert_ldm_unet_checkpoint(tensors, dict(unet.config))),
                     "VAE": (vae, convert_ldm_vae_checkpoint(tensors, dict(vae.config)))}
        if TEXT_KEYS["v1"] in tensors:
            clip = convert_ldm_clip_checkpoint(tensors)
        else:
            clip = convert_open_clip_checkpoint(text, tensors)
    except (KeyError, IndexError, ValueError, RuntimeError) as exc:
        return f"its tensors do not convert ({type(exc).__name__}: {exc})"
    converted["text encoder"] = (text, {k.removeprefix("text_model."): v
                                        for k, v in clip.items()})
    for what, (model, state) in converted.items():
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()
                    if not k.endswith("position_ids")}
        missing = sorted(set(expected) - set(state))
        wrong = sorted(k for k in set(expected) & set(state)
                       if tuple(state[k].shape) != expected[k])
        if missing:
            problems.append(f"{what} tensors missing: {_few(missing)}")
        if wrong:
            problems.append(f"{what} tensors of the wrong shape: {_few(wrong)}")
    return "; ".join(problems)


def _few(keys: list[str]) -> str:
    return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def detect(state_dict: dict[str, Any]) -> dict[str, Any] | None:
    """The family-detector interface of core.thirdparty: None unless the tensors are an SD
    1.x/2.x checkpoint, else its kind. (Importing registers SD files in place
    (core/thirdparty/sd/register.py) before the small-model detectors run.)"""
    if not any(k.startswith(UNET_PREFIX) for k in state_dict):
        return None
    try:
        kind = model_type(state_dict, "the file")
    except ThirdPartyError:
        return None
    return {"architecture": "stable_diffusion", "model_type": kind}

