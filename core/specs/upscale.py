"""Super-resolution job specs and the limits of their settings.

Torch-free: the desktop panels build and restore these specs on the GUI thread, and importing
this module registers their kinds. The pipeline that runs them is core/pipelines/upscale.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.cards import SUFFIX, ModelCard, WeightsError, find_model, list_models, read_card
from core.imageio import max_pixels_setting
from core.jobs import ImageRef, JobError, JobSpec, input_image

FAMILY = "upscale"
DEFAULT_MODEL = "upscale_faces"
TILE = 192  # input pixels per tile side, before the overlap: some 30 MB of features a tile
TILES = (4, 2048)  # the tile sizes a spec may ask for (smaller ones when memory runs short)
# Architectures (core.registry names, as model cards record them) the upscale job runs, and
# what the Upscale dialog calls them: Easel's own x4 net, and the users' ESRGAN/Real-ESRGAN
# RRDB, SRVGG compact and SPAN nets.
ARCHITECTURES = {"upscale": "Easel's own", "esrgan": "ESRGAN / Real-ESRGAN (RRDB)",
                 "compact": "Real-ESRGAN compact (SRVGG)", "span": "SPAN"}


@dataclass(frozen=True)
class UpscaleSpec(JobSpec):
    kind = "upscale"
    panel = ""  # an action of the Image menu, not of one panel; results go to the strip

    image: ImageRef | None = None  # HxWx3 (or HxWx4) uint8
    model: str = DEFAULT_MODEL  # an installed upscale model's name, or a .safetensors path;
    # the scale is the model's (its card's config: 4 for Easel's, 1, 2 or 4 for imported ones)
    tile: int = TILE  # input pixels per tile side: smaller needs less memory (same pixels)


# --------------------------------------------------------------------------- checks
# Torch-free, so the window checks an upscale before submitting it without loading torch.


def known_models() -> list[str]:
    return sorted({m.name for m in list_models(family=FAMILY) if not m.error})


def resolve_model(name_or_path: str) -> Path:
    """The .safetensors file of an installed upscale model (by name) or of a path."""
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise JobError("No upscale model was named.")
    path = Path(name_or_path).expanduser()
    if path.suffix in (SUFFIX, ".json") or len(path.parts) > 1:
        path = path.with_suffix(SUFFIX)
        if not path.is_file():
            raise JobError(f"The upscale model {path} does not exist.")
        return path
    found = find_model(name_or_path, (FAMILY,))
    if found is not None:
        return found.path
    known = ", ".join(known_models()) or "none installed (train one with: easel train " \
                                         "upscale_faces)"
    raise JobError(f"Unknown upscale model {name_or_path!r}; known: {known}.")


def validate(spec: UpscaleSpec) -> tuple[np.ndarray, np.ndarray | None, ModelCard]:
    """The spec's RGB, its alpha (or None) and the model's card, or JobError: no image, not
    8-bit RGB(A), an unknown model, or an output over the pixel limit. Cheap (the weights are
    not read), so the app calls it before submitting the job."""
    image = input_image(spec.image, "No image to upscale: open an image first.")
    h, w = image.shape[:2]
    if not isinstance(spec.tile, int) or not TILES[0] <= spec.tile <= TILES[1]:
        raise JobError(f"The tile size must be {TILES[0]} to {TILES[1]} pixels, not "
                       f"{spec.tile!r}.")
    path = resolve_model(spec.model)
    try:
        card = read_card(path)
    except WeightsError as exc:
        raise JobError(str(exc)) from None
    if card.architecture not in ARCHITECTURES:
        raise JobError(f"{path.name} is a {card.architecture!r} model, not an upscaler.")
    scale = card.config.get("scale", 4)
    if not isinstance(scale, int) or scale < 1:
        raise JobError(f"The model card of {path.name} has no usable scale ({scale!r}).")
    check_output_size(w, h, scale)
    rgb = np.ascontiguousarray(image[..., :3])
    alpha = np.ascontiguousarray(image[..., 3]) if image.shape[2] == 4 else None
    return rgb, alpha, card


def check_output_size(w: int, h: int, scale: int = 4) -> None:
    """Refuse an output over the pixel limit (core.imageio), naming both sizes."""
    cap = max_pixels_setting()
    if w * scale * h * scale > cap:
        raise JobError(f"Upscaling {w}x{h} by {scale} gives {w * scale}x{h * scale} "
                       f"({w * h * scale * scale / 1e6:.1f} megapixels), over the limit of "
                       f"{cap / 1e6:.1f} megapixels (EASEL_MAX_PIXELS). Crop or shrink the "
                       "picture first.")
