"""Stable Diffusion 1.x and 2.x checkpoints, opened through diffusers and transformers offline.

- ``configs/<variant>/``: the diffusers config folders Easel ships, one per supported variant
  (SD 1.x, SD 2.x base and 768, and the two 9-channel inpainting models). Every load passes
  one as ``config=`` with ``local_files_only``: without it diffusers looks the config up on
  the Hub, whatever ``local_files_only`` says.
- ``checkpoint``: which variant a file is, from its key names and shapes (diffusers' own
  model-type inference), read from the safetensors header alone; SDXL and anything else are
  refused with one line. Every tensor of the file must map onto the variant's networks.
- ``tokenizer``: CLIP's tokenizer from the vocabulary in ``resources/clip`` (no download).
- ``register``: an imported checkpoint (2-7 GB) stays where it is; a model card in the user
  models folder records its path, size, modification time and sha256.
- ``load``: the diffusers components on a device, cached between jobs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

OPENS = ("Stable Diffusion 1.x and 2.x checkpoints (.safetensors, or a .ckpt holding only "
         "weights) and diffusers folders")
FAMILY = "sd"  # the model family (user models folder) of registered SD checkpoints
ARCHITECTURE = "stable_diffusion"
CONFIGS = Path(__file__).resolve().parent / "configs"
PREDICTIONS = ("epsilon", "v")


@dataclass(frozen=True)
class Variant:
    name: str  # the config folder's name
    label: str  # what the user reads
    inpainting: bool  # a 9-channel UNet (latents + mask + masked picture)
    prediction: str  # what the model predicts when nothing says otherwise: "epsilon" or "v"

    @property
    def config_dir(self) -> Path:
        return CONFIGS / self.name


VARIANTS = {v.name: v for v in (
    Variant("sd1", "Stable Diffusion 1.x", False, "epsilon"),
    Variant("sd1_inpainting", "Stable Diffusion 1.x inpainting", True, "epsilon"),
    Variant("sd2_base", "Stable Diffusion 2.x (512 px)", False, "epsilon"),
    Variant("sd2_768", "Stable Diffusion 2.x (768 px, v-prediction)", False, "v"),
    Variant("sd2_inpainting", "Stable Diffusion 2.x inpainting", True, "epsilon"),
)}


def variant_for(model_type: str, prediction: str) -> Variant:
    """The config folder for diffusers' model type and the prediction type: SD 2.x files look
    alike at 512 and 768 px, and only the prediction tells them apart."""
    if model_type == "v2":
        return VARIANTS["sd2_768" if prediction == "v" else "sd2_base"]
    return VARIANTS[{"v1": "sd1", "inpainting": "sd1_inpainting",
                     "inpainting_v2": "sd2_inpainting"}[model_type]]


def offline() -> None:
    """Tell huggingface_hub, diffusers and transformers never to reach the network and to keep
    quiet (jobs report their own progress). They read these when imported: every Easel module
    calls this before importing them."""
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE",
                "HF_HUB_DISABLE_TELEMETRY", "DISABLE_TELEMETRY", "HF_HUB_DISABLE_PROGRESS_BARS"):
        os.environ[key] = "1"
    for key in ("TRANSFORMERS_VERBOSITY", "DIFFUSERS_VERBOSITY"):
        os.environ.setdefault(key, "error")
