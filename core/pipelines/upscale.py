"""Upscale pipeline: super-resolution of a picture with a learned upscaler at its own scale:
Easel's x4 nets (core/nets/upscale) or a user's imported ESRGAN/Real-ESRGAN RRDB, SRVGG
compact or SPAN net (core/nets/esrgan, compact, span; imported by ``easel models import``).

Big pictures go through the net in overlapping tiles, so memory stays bounded whatever the
size: each tile is extended by the net's reach (its config's ``reach``) on every side and only
its centre is kept, which gives the same pixels as one pass over the whole picture (up to float
rounding). Deep nets see further than is worth computing twice (a 23-block RRDB net reaches
some 350 input pixels, with almost no weight beyond a few), so the extension stops at
MAX_CONTEXT pixels: Real-ESRGAN's own tiling pads by 10. Tiles start on multiples of the net's
input fold (Real-ESRGAN x2plus unshuffles its input by 2), so a tile folds exactly as the
whole picture would. A preview of the picture so far (the input, enlarged, with each finished
tile in place) comes with each tile's progress. Transparency is upscaled with PIL's bicubic
filter alongside.

Other pipelines (the latent panel's 64 px faces) call :func:`upscale_tensor` directly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from core.device import free_memory, is_out_of_memory
from core.jobs import Context, JobError, OutOfMemory, Progress, Result, pipeline
from core.nets.compact import SRVGGNetCompact
from core.nets.esrgan import RRDBNet
from core.nets.span import SPAN
from core.nets.upscale import Upscaler
from core.specs.upscale import (  # noqa: F401  (the panels' names, importable here too)
    ARCHITECTURES,
    DEFAULT_MODEL,
    FAMILY,
    TILE,
    TILES,
    UpscaleSpec,
    check_output_size,
    known_models,
    resolve_model,
    validate,
)
from core.tensors import to_tensor, to_uint8
from core.weights import (
    WeightsError,
    load_checked,
)

MAX_CONTEXT = 32  # input pixels a tile is extended by on each side, at most (a multiple of 4)
PREVIEW_SIDE = 1024  # previews are the output taken every k-th pixel, to at most this size
# The nets the pipeline runs; each config has scale, reach and multiple (core/nets/*)
UPSCALERS = (Upscaler, RRDBNet, SRVGGNetCompact, SPAN)
Net = Upscaler | RRDBNet | SRVGGNetCompact | SPAN


# --------------------------------------------------------------------------- models


def load_upscaler(name_or_path: str, ctx: Context | None = None) -> Net:
    """The upscaler on ``ctx.device`` (CPU without a context), through ``ctx.models`` (a
    core.weights.ModelCache) when there is one; JobError for anything that is not one."""
    path = resolve_model(name_or_path)
    device = ctx.device if ctx is not None else torch.device("cpu")
    try:
        return load_checked(path, UPSCALERS, "upscale model", device,
                            getattr(ctx, "models", None))[0]
    except WeightsError as exc:
        raise JobError(str(exc)) from None


# --------------------------------------------------------------------------- tiles


def tiles(length: int, tile: int) -> list[tuple[int, int]]:
    """[start, stop) spans of at most ``tile`` covering ``0 .. length``."""
    return [(a, min(a + tile, length)) for a in range(0, length, tile)]


@torch.no_grad()
def upscale_tiles(model: Net, x: torch.Tensor, tile: int = TILE
                  ) -> Generator[tuple[int, int, torch.Tensor], None, torch.Tensor]:
    """Upscale NCHW ``x`` in [-1, 1] tile by tile, yielding (tiles done, total, the output so
    far) after each; returns the NCHW result on ``x``'s device (float32, not clamped). Until
    its tile is done, a part of the output holds the input enlarged (nearest neighbour)."""
    if tile < 1:
        raise ValueError(f"tile must be at least 1 pixel, not {tile}")
    config = model.config
    s, step = config.scale, config.multiple
    # Both rounded to the input fold, so every tile's fold grid is the whole picture's.
    reach = -(-min(config.reach, MAX_CONTEXT) // step) * step
    tile = -(-tile // step) * step
    unit = model.unit_range  # the net takes and gives pixels in [0, 1], not [-1, 1]
    n, c, h, w = x.shape
    device = next(model.parameters()).device
    ys, xs = tiles(h, tile), tiles(w, tile)
    out = F.interpolate(x.float(), scale_factor=s, mode="nearest")
    total, done = len(ys) * len(xs), 0
    for y0, y1 in ys:
        for x0, x1 in xs:
            # The tile plus the net's reach on each side (clipped at the picture's edge), so
            # the kept centre sees exactly what it would in a whole-picture pass.
            a0, a1 = max(0, y0 - reach), min(h, y1 + reach)
            b0, b1 = max(0, x0 - reach), min(w, x1 + reach)
            part = x[:, :, a0:a1, b0:b1].to(device)
            part = model((part + 1) / 2).float() * 2 - 1 if unit else model(part).float()
            oy, ox = (y0 - a0) * s, (x0 - b0) * s
            out[:, :, y0 * s:y1 * s, x0 * s:x1 * s] = \
                part[:, :, oy:oy + (y1 - y0) * s, ox:ox + (x1 - x0) * s].to(x.device)
            done += 1
            yield done, total, out
    return out


def upscale_tensor(model: Net, x: torch.Tensor, tile: int = TILE) -> torch.Tensor:
    """``x`` (NCHW in [-1, 1]) upscaled by the model's scale, clamped to [-1, 1]."""
    gen = upscale_tiles(model, x, tile)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value.clamp_(-1, 1)


def preview(out: torch.Tensor) -> np.ndarray:
    """HxWx3 uint8 of the first picture of ``out``, every k-th pixel so that its longer side
    is at most PREVIEW_SIDE."""
    k = max(1, math.ceil(max(out.shape[-2:]) / PREVIEW_SIDE))
    return to_uint8(out[:1, :, ::k, ::k])[0]


@contextmanager
def cancellable(model: nn.Module, ctx: Context) -> Iterator[None]:
    """Within the block, every conv of ``model`` first checks ``ctx`` for a cancel, so a tile
    of a deep net (a minute of CPU for a 23-block RRDB tile) stops within one layer."""
    hooks = [m.register_forward_pre_hook(lambda *_: ctx.check())
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


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
    total, tile = 1, spec.tile
    gen = upscale_tiles(model, x, tile)
    while True:
        ctx.check()
        out_of_memory = False
        try:
            with cancellable(model, ctx):
                done, total, partial = next(gen)
        except StopIteration as stop:
            y: torch.Tensor = stop.value
            break
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            out_of_memory = True
        if out_of_memory:  # outside the handler: the traceback no longer holds the tensors
            del gen
            free_memory(ctx.device)
            raise OutOfMemory(
                f"Out of memory on {ctx.device} upscaling {w}x{h} in {tile} px tiles: use "
                f"smaller tiles (e.g. {max(TILES[0], tile // 2)} px; --tile on the command "
                "line) or run it on the CPU.")
        yield Progress(done, total, f"Upscaling tile {done} of {total} (x{s})",
                       preview(partial) if ctx.wants_preview() else None)
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
