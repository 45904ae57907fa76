"""Upscale pipeline: x4 super-resolution of a picture with a learned upscaler (core/nets/upscale).

Big pictures go through the net in overlapping tiles, so memory stays bounded whatever the
size: each tile is extended by the net's reach (``UpscaleConfig.reach``) on every side and only
its centre is kept, which gives the same pixels as one pass over the whole picture (up to float
rounding). Transparency is upscaled with PIL's bicubic filter alongside.

Other pipelines (the latent panel's 64 px faces) call :func:`upscale_tensor` directly.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.imageio import max_pixels_setting
from core.jobs import Context, JobError, Progress, Result, input_image, pipeline
from core.nets.upscale import Upscaler
from core.specs.upscale import (  # noqa: F401  (the panels' names, importable here too)
    DEFAULT_MODEL,
    FAMILY,
    UpscaleSpec,
)
from core.tensors import to_tensor, to_uint8
from core.weights import (
    SUFFIX,
    ModelCard,
    WeightsError,
    find_model,
    list_models,
    load_checked,
    read_card,
)

TILE = 192  # input pixels per tile side, before the overlap: some 30 MB of features a tile


# --------------------------------------------------------------------------- models


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


def load_upscaler(name_or_path: str, ctx: Context | None = None) -> Upscaler:
    """The upscaler on ``ctx.device`` (CPU without a context), through ``ctx.models`` (a
    core.weights.ModelCache) when there is one; JobError for anything that is not one."""
    path = resolve_model(name_or_path)
    device = ctx.device if ctx is not None else torch.device("cpu")
    try:
        return load_checked(path, Upscaler, "upscale model", device,
                            getattr(ctx, "models", None))[0]
    except WeightsError as exc:
        raise JobError(str(exc)) from None


# --------------------------------------------------------------------------- tiles


def tiles(length: int, tile: int) -> list[tuple[int, int]]:
    """[start, stop) spans of at most ``tile`` covering ``0 .. length``."""
    return [(a, min(a + tile, length)) for a in range(0, length, tile)]


@torch.no_grad()
def upscale_tiles(model: Upscaler, x: torch.Tensor, tile: int = TILE
                  ) -> Generator[tuple[int, int], None, torch.Tensor]:
    """Upscale NCHW ``x`` in [-1, 1] tile by tile, yielding (tiles done, total) after each;
    returns the NCHW result on ``x``'s device (float32, not clamped)."""
    if tile < 1:
        raise ValueError(f"tile must be at least 1 pixel, not {tile}")
    s, reach = model.config.scale, model.config.reach
    n, c, h, w = x.shape
    device = next(model.parameters()).device
    ys, xs = tiles(h, tile), tiles(w, tile)
    out = torch.empty(n, c, h * s, w * s, dtype=torch.float32, device=x.device)
    total, done = len(ys) * len(xs), 0
    for y0, y1 in ys:
        for x0, x1 in xs:
            # The tile plus the net's reach on each side (clipped at the picture's edge), so
            # the kept centre sees exactly what it would in a whole-picture pass.
            a0, a1 = max(0, y0 - reach), min(h, y1 + reach)
            b0, b1 = max(0, x0 - reach), min(w, x1 + reach)
            part = model(x[:, :, a0:a1, b0:b1].to(device)).float()
            oy, ox = (y0 - a0) * s, (x0 - b0) * s
            out[:, :, y0 * s:y1 * s, x0 * s:x1 * s] = \
                part[:, :, oy:oy + (y1 - y0) * s, ox:ox + (x1 - x0) * s].to(x.device)
            done += 1
            yield done, total
    return out


def upscale_tensor(model: Upscaler, x: torch.Tensor, tile: int = TILE) -> torch.Tensor:
    """``x`` (NCHW in [-1, 1]) upscaled by the model's scale, clamped to [-1, 1]."""
    gen = upscale_tiles(model, x, tile)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value.clamp_(-1, 1)


# --------------------------------------------------------------------------- the job


@pipeline("upscale")
def run(spec: UpscaleSpec, ctx: Context) -> Generator[Progress, None, Result]:
    rgb, alpha, card = validate(spec)
    yield Progress(0, 1, "Loading the upscaler")
    model = load_upscaler(spec.model, ctx)
    s = model.config.scale
    h, w = rgb.shape[:2]
    ctx.check()

    t0 = time.perf_counter()
    x = to_tensor(rgb)
    total = 1
    gen = upscale_tiles(model, x, TILE)
    while True:
        ctx.check()
        try:
            done, total = next(gen)
        except StopIteration as stop:
            y: torch.Tensor = stop.value
            break
        yield Progress(done, total, f"Upscaling tile {done} of {total}")
    ctx.check()
    out = to_uint8(y)[0]
    out_alpha = None
    if alpha is not None:
        out_alpha = np.asarray(Image.fromarray(alpha, "L").resize(
            (w * s, h * s), Image.Resampling.BICUBIC))
    info = {"scale": s, "input_size": [w, h], "output_size": [w * s, h * s], "tiles": total,
            "upscale_seconds": round(time.perf_counter() - t0, 3),
            "models": {card.name: card.sha256}}
    return Result(images=[out], spec=spec, alpha=out_alpha,
                  info=info)


def validate(spec: UpscaleSpec) -> tuple[np.ndarray, np.ndarray | None, ModelCard]:
    """The spec's RGB, its alpha (or None) and the model's card, or JobError: no image, not
    8-bit RGB(A), an unknown model, or an output over the pixel limit. Cheap (the weights are
    not read), so the app calls it before submitting the job."""
    image = input_image(spec.image, "No image to upscale: open an image first.")
    h, w = image.shape[:2]
    path = resolve_model(spec.model)
    try:
        card = read_card(path)
    except WeightsError as exc:
        raise JobError(str(exc)) from None
    if card.architecture != "upscale":
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
