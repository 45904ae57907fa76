"""Style transfer on any picture: neural style with random-weight features, or a fast style net.

Optimisation path (Gatys et al. 2016, with the random features of core/nets/features.py): the
picture starts as the content and is optimised (Adam, or L-BFGS with a strong-Wolfe line
search) so that its features' Gram matrices (and, optionally, per-channel means and
deviations) match the style images', while its deeper features stay close to the content's
and total variation stays low. It runs coarse to fine over an image pyramid (a quarter, half,
then the full size), each level starting from the one before, with most steps at the coarse
levels (core.specs.style.level_steps), so the large structures settle cheaply; the feature net
is half the width of the style loss's default (a quarter of the cost per step), which measured
as good on the full-width held-out nets (bench/style.py).

Seamless tiles (``tile``): the picture is first cross-faded with itself shifted by half its
size, so its opposite edges continue each other, then restyled with circular padding in every
net and total variation that wraps round. Every style term is relative (divided
by the style's own statistic), so layers and styles weigh alike.

Options: several style images with weights; ``strength`` scales the style term; colours kept
from the content (``luminance``: style transferred on luminance only, then the content's
colour put back; ``histogram``: the style images recoloured to the content's histogram first);
a region mask from the canvas, so only the painted area is restyled (worked on its bounding box
with a margin, pasted with a feathered seam; pixels outside the mask stay bit-identical).

Fast path (``fast``): a feed-forward transform net trained for one style (core/nets/transform,
`easel train style_fast_brush`) restyles the picture in one pass.

One-pass path (``one_pass``): an AdaIN net (core/nets/adain, `easel train style_onepass`)
restyles the picture in one pass after any style images, with no training per painting: the
picture's features take the styles' channel statistics (several styles: the weighted mean of
their targets, Huang & Belongie 2017 sec. 7.2), blended with its own by ``alpha``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core.algorithms import colour, masks
from core.jobs import (
    Context,
    JobError,
    Progress,
    Result,
    input_image,
    job_model,
    job_weights,
    pipeline,
)
from core.nets.features import FeatureConfig, RandomFeatures, StyleLoss
from core.specs.style import (
    COLOUR_MODES,
    FAMILY,
    MAX_FEATHER,
    MAX_SIZE,
    MAX_STEPS,
    MAX_STYLES,
    MIN_SIZE,
    ONE_PASS_FAMILY,
    OPTIMIZERS,
    StyleSpec,
    level_steps,
    pyramid,
)
from core.tensors import image_to_tensor as to_tensor
from core.tensors import long_side_size, resize, resize_long
from core.tensors import tensor_to_image as to_uint8

FLAT = 2  # a style image whose every channel spans at most this many levels is one colour
SMALL_STYLE = 0.5  # a style image under this share of the working long side gets a note
MIN_STYLE_SIDE = 16  # a style image with a shorter long side is refused: it holds no strokes
BLOW_UP = 1.5  # a loss this many times the best so far undoes the step before it
OPTIMISATION_WIDTHS = (16, 32, 64, 128)  # the optimisation's feature net (optimisation_features)
LINE_SEARCH: str | None = "strong_wolfe"
MARGIN = 16  # pixels of context around a region mask's box
MIN_SIDE = 16  # a thinner picture is worked with its edges repeated out to this, then cropped


@pipeline("style")
def run(spec: StyleSpec, ctx: Context) -> Generator[Progress, None, Result]:
    t0 = time.perf_counter()
    content, alpha, mask = _validate(spec)
    notes: list[str] = []
    yield Progress(0, 1, "Preparing")
    # Checks between the set-up stages: on a large picture each is a pass over all of it.
    region = _region(mask, int(spec.feather)) if mask is not None else None
    ctx.check()
    work = content if region is None else content[region[0]:region[1], region[2]:region[3]]
    work = _fit(work, int(spec.size), notes,
                "The picture" if region is None else "The painted region's box")
    ctx.check()
    hashes: dict[str, str] = {}
    # The nets' reflection padding and pooling need a few pixels each way; a 1x1 or one-pixel
    # line is worked with its edge pixels repeated, and the result is cropped back.
    thin = work.shape[:2]
    pad = [(0, max(0, MIN_SIDE - n)) for n in thin] + [(0, 0)]
    work = np.pad(work, pad, mode="edge")
    if spec.tile:  # the picture made seamless first: the content term then keeps no seam
        work = seamless(work)
    if spec.fast:
        styled = yield from _fast(spec, work, ctx, hashes)
    elif spec.one_pass:
        styles = _styles(spec, work, notes)
        ctx.check()
        styled = yield from _one_pass(spec, work, styles, ctx, hashes)
    else:
        styles = _styles(spec, work, notes)
        ctx.check()
        styled = yield from optimise(work, styles, _weights(spec), spec, ctx)
    work, styled = work[:thin[0], :thin[1]], styled[:thin[0], :thin[1]]
    if spec.preserve_color == "luminance":
        styled = colour.keep_colours(styled, work)
    ctx.check()
    if region is None:  # back at the picture's own size, so applying it keeps the size
        out = (resize_wrapped if spec.tile else resize)(styled, *content.shape[:2])
    else:
        out = _paste(content, styled, mask, region, int(spec.feather))
    info = {"notes": notes, "models": hashes, "size": list(out.shape[1::-1]),
            "seconds": round(time.perf_counter() - t0, 3)}
    return Result(images=[out], spec=spec, alpha=alpha, info=info)


# --------------------------------------------------------------------------- optimisation


def optimise(content: np.ndarray, styles: list[np.ndarray], weights: list[float],
             spec: StyleSpec, ctx: Context) -> Generator[Progress, None, np.ndarray]:
    """The content picture optimised towards the styles, coarse to fine; yields each step."""
    net = optimisation_features(int(spec.feature_seed), bool(spec.tile)).to(ctx.device)
    h, w = content.shape[:2]
    levels = pyramid(max(h, w))
    budget = level_steps(int(spec.steps), len(levels))
    total, done = sum(budget), 0
    x = None
    for k, (side, steps) in enumerate(zip(levels, budget, strict=True)):
        ctx.check()
        size = long_side_size(h, w, side)
        c = to_tensor(resize(content, *size), ctx.device)
        objective = Objective(net, c, [to_tensor(resize_long(s, side), ctx.device)
                                       for s in styles], weights, spec)
        ctx.check()
        x = c.clone() if x is None else F.interpolate(x, size=c.shape[-2:], mode="bilinear",
                                                      align_corners=False)
        x = x.detach().requires_grad_(True)
        opt = _optimizer(spec.optimizer, x)
        closure = _closure(opt, objective, x, ctx)
        best, kept = math.inf, x.detach().clone()
        for i in range(steps):
            ctx.check()
            before = x.detach().clone()
            loss = float(opt.step(closure).detach())  # the loss of ``before``
            with torch.no_grad():
                if math.isfinite(loss) and loss <= BLOW_UP * best:
                    if loss < best:
                        best, kept = loss, before
                else:  # the last step overshot (a safeguard; the line search rarely lets it)
                    x.copy_(kept)
                    opt = _optimizer(spec.optimizer, x)
                    closure = _closure(opt, objective, x, ctx)
                x.clamp_(-1, 1)
            done += 1
            yield Progress(done, total, f"Level {k + 1} of {len(levels)} ({size[0]}x{size[1]}): "
                           f"step {i + 1} of {steps}, loss {loss:.3f}",
                           preview=to_uint8(x) if (i == steps - 1 or i % 5 == 0)
                           and ctx.wants_preview() else None)
    return to_uint8(x)


def optimisation_features(seed: int, tile: bool = False) -> RandomFeatures:
    """The feature network the optimisation matches statistics in: half the widths of the
    style loss's default network (a 512 px step costs a quarter as much), measured as good on
    the held-out full-width nets (bench/style.py); circular padding for a tileable result."""
    net = RandomFeatures(FeatureConfig(seed=seed, widths=OPTIMISATION_WIDTHS))
    if tile:
        set_padding(net, "circular")
    return net


def set_padding(net: torch.nn.Module, mode: str) -> dict[torch.nn.Conv2d, str]:
    """Every padded convolution of ``net`` set to pad in ``mode`` ("circular": the picture
    wraps round, so its edges continue each other); returns the modes they had."""
    before = {}
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d) and any(p > 0 for p in m.padding):
            before[m] = m.padding_mode
            m.padding_mode = mode
    return before


class Objective:
    """The weighted sum of the style, content and total-variation terms for one level."""

    def __init__(self, net: RandomFeatures, content: torch.Tensor, styles: list[torch.Tensor],
                 weights: list[float], spec: StyleSpec) -> None:
        self.loss = StyleLoss(net, styles, weights, bool(spec.moments), wrap=bool(spec.tile))
        self.content = self.loss.content_targets(content)
        self.spec = spec

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        s = self.spec
        return self.loss.terms(x, self.content, float(s.strength), float(s.content_weight),
                               float(s.tv_weight))["loss"]


def _closure(opt: torch.optim.Optimizer, objective: Objective, x: torch.Tensor,
             ctx: Context) -> Any:
    def closure() -> torch.Tensor:
        ctx.check()  # a line search can evaluate several times in one step
        opt.zero_grad()
        loss = objective(x)
        loss.backward()
        return loss

    return closure


def _optimizer(name: str, x: torch.Tensor) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam([x], lr=0.02)
    # One iteration per step with a strong-Wolfe line search (Nocedal & Wright alg. 3.5): no
    # overshoot, and a full step whenever it is good enough.
    return torch.optim.LBFGS([x], lr=1.0, max_iter=1, history_size=20,
                             line_search_fn=LINE_SEARCH)


# --------------------------------------------------------------------------- fast path


def _fast(spec: StyleSpec, content: np.ndarray, ctx: Context, hashes: dict[str, str]
          ) -> Generator[Progress, None, np.ndarray]:
    from core.nets.transform import TransformNet

    path = job_weights(spec.fast, FAMILY, "fast style")
    net, sha = job_model(path, ctx, TransformNet, "fast style")
    hashes[path.stem] = sha
    yield Progress(0, 1, f"Applying {path.stem}")
    with _cancellable(net, ctx, bool(spec.tile)):
        out = net(to_tensor(content, ctx.device))
    yield Progress(1, 1, f"Applied {path.stem}")
    return to_uint8(out)


def _one_pass(spec: StyleSpec, content: np.ndarray, styles: list[np.ndarray], ctx: Context,
              hashes: dict[str, str]) -> Generator[Progress, None, np.ndarray]:
    from core.nets.adain import AdaINNet

    try:
        path = job_weights(spec.one_pass, ONE_PASS_FAMILY, "one-pass style net")
    except JobError as exc:
        raise JobError(f"{exc} The one-pass net is not installed: train it with easel train "
                       "style_onepass, or optimise towards the style images instead.") from None
    net, sha = job_model(path, ctx, AdaINNet, "one-pass style net")
    hashes[path.stem] = sha
    yield Progress(0, 1, f"Applying {path.stem}")
    side = max(content.shape[:2])
    with _cancellable(net, ctx, bool(spec.tile)):
        # The styles at the picture's long side, as the optimisation path sizes them.
        out = net.restyle(to_tensor(content, ctx.device),
                          [to_tensor(resize_long(s, side), ctx.device) for s in styles],
                          _weights(spec), float(spec.alpha))
    yield Progress(1, 1, f"Applied {path.stem}")
    return to_uint8(out)


@contextmanager
def _cancellable(net: torch.nn.Module, ctx: Context, tile: bool = False) -> Iterator[None]:
    """No grad, and a check for cancel before each layer: one pass over a 2048 px picture
    takes seconds on a CPU. ``tile``: circular padding for the pass (the net is the model
    cache's, shared with later jobs, so its own padding is put back after)."""
    hooks = [m.register_forward_pre_hook(lambda *_: ctx.check()) for m in net.modules()]
    before = set_padding(net, "circular") if tile else {}
    try:
        with torch.no_grad():
            yield
    finally:
        for hook in hooks:
            hook.remove()
        for conv, mode in before.items():
            conv.padding_mode = mode


# --------------------------------------------------------------------------- seamless tiles


def seamless(img: np.ndarray) -> np.ndarray:
    """``img`` cross-faded with itself shifted by half its size, the shifted copy weighing in
    towards the edges: the copy's wrap-around seam lies mid-picture, where the original shows,
    so the result's opposite edges continue each other while its middle is ``img``."""
    h, w = img.shape[:2]
    rolled = np.roll(img, (h // 2, w // 2), axis=(0, 1)).astype(np.float32)
    # 1 in the middle, falling to 0 at the edges (a separable tent, flat over the middle half).
    wy = np.clip(2 - 4 * np.abs(np.arange(h) + 0.5 - h / 2) / h, 0, 1)
    wx = np.clip(2 - 4 * np.abs(np.arange(w) + 0.5 - w / 2) / w, 0, 1)
    weight = (wy[:, None] * wx[None, :])[..., None]
    out = img.astype(np.float32) * weight + rolled * (1 - weight)
    return out.round().astype(np.uint8)


def resize_wrapped(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """A tileable picture resized as a tile: the filter reads across the wrap, not the edge."""
    ih, iw = img.shape[:2]
    if (ih, iw) == (h, w):
        return img
    py, px = max(2, ih // 16), max(2, iw // 16)
    big = resize(np.pad(img, ((py, py), (px, px), (0, 0)), mode="wrap"),
                 round((ih + 2 * py) * h / ih), round((iw + 2 * px) * w / iw))
    y0, x0 = round(py * h / ih), round(px * w / iw)
    return np.ascontiguousarray(big[y0:y0 + h, x0:x0 + w])


# --------------------------------------------------------------------------- inputs


def _validate(spec: StyleSpec) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    image = input_image(spec.image, "No picture to restyle: open one first.")
    h, w = image.shape[:2]
    rgb = np.ascontiguousarray(image[..., :3])
    alpha = np.ascontiguousarray(image[..., 3]) if image.shape[2] == 4 else None
    if spec.fast and spec.one_pass:
        raise JobError("Choose a fast style or the one-pass net, not both.")
    if not spec.fast and not spec.styles:
        raise JobError("Add a style image (drop a painting into the style tray) or pick a fast "
                       "style.")
    blend = spec.alpha
    if isinstance(blend, bool) or not isinstance(blend, int | float) or not 0 <= blend <= 1:
        raise JobError(f"The one-pass strength must be from 0 (the picture as it is) to 1 (the "
                       f"full style), got {blend!r}.")
    if len(spec.styles) > MAX_STYLES:
        raise JobError(f"At most {MAX_STYLES} style images, got {len(spec.styles)}.")
    if spec.style_weights and len(spec.style_weights) != len(spec.styles):
        raise JobError(f"{len(spec.style_weights)} style weights for {len(spec.styles)} style "
                       "images: give one weight per style.")
    if any(not isinstance(v, int | float) or isinstance(v, bool) or v < 0
           for v in spec.style_weights) or (spec.style_weights and sum(spec.style_weights) <= 0):
        raise JobError("Style weights must be zero or more, and not all zero.")
    for name, lo, hi in (("size", MIN_SIZE, MAX_SIZE), ("steps", 1, MAX_STEPS),
                         ("feather", 0, MAX_FEATHER)):
        value = getattr(spec, name)
        if isinstance(value, bool) or not isinstance(value, int | np.integer) \
                or not lo <= value <= hi:
            raise JobError(f"{name.capitalize()} must be a whole number from {lo} to {hi}, "
                           f"got {value!r}.")
    for name in ("strength", "content_weight", "tv_weight"):
        value = getattr(spec, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise JobError(f"{name.replace('_', ' ').capitalize()} must be zero or more, got "
                           f"{value!r}.")
    if spec.optimizer not in OPTIMIZERS:
        raise JobError(f"Unknown optimiser {spec.optimizer!r}; choose {' or '.join(OPTIMIZERS)}.")
    if spec.preserve_color not in COLOUR_MODES:
        raise JobError(f"Unknown colour mode {spec.preserve_color!r}; choose luminance or "
                       "histogram (or leave it empty).")
    mask = None
    if spec.mask is not None:
        m = np.asarray(spec.mask.array())
        if m.ndim != 2 or m.shape != (h, w):
            size = f"{m.shape[1]}x{m.shape[0]}" if m.ndim >= 2 else str(m.shape)
            raise JobError(f"The mask is {size} but the picture is {w}x{h}: they must match.")
        mask = m > 0
        if not mask.any():
            raise JobError("The mask is empty: paint the area to restyle, or turn the mask "
                           "off to restyle the whole picture.")
        if mask.all():
            mask = None  # the whole picture: no seam to make
    if spec.tile and mask is not None:
        raise JobError("A seamless tile restyles the whole picture: turn the mask off, or "
                       "turn tiling off to restyle the painted area.")
    return rgb, alpha, mask


def _styles(spec: StyleSpec, work: np.ndarray, notes: list[str]) -> list[np.ndarray]:
    """The style images as RGB: alpha composited over white, recoloured or reduced to
    luminance as the colour mode asks; a note for one much smaller than the picture."""
    out = []
    long_side = max(work.shape[:2])
    for k, ref in enumerate(spec.styles, 1):
        img = colour.over_white(input_image(ref, "A style image is missing."))
        name = ref.path or f"style image {k}"
        if int(np.ptp(img.reshape(-1, 3), axis=0).max()) <= FLAT:
            r, g, b = (int(v) for v in img.reshape(-1, 3)[0])
            raise JobError(f"{name} is one colour (RGB {r}, {g}, {b}): it has no brushwork or "
                           "texture to take. Use a painting or a textured picture.")
        if max(img.shape[:2]) < MIN_STYLE_SIDE:
            raise JobError(f"{name} is only {img.shape[1]}x{img.shape[0]} pixels: too small to "
                           f"hold any brushwork. Use a style image at least {MIN_STYLE_SIDE} px "
                           f"across, ideally near the picture's {long_side} px.")
        if max(img.shape[:2]) < SMALL_STYLE * long_side:
            notes.append(f"{name} is {img.shape[1]}x{img.shape[0]}, much smaller than the "
                         f"{long_side} px picture: it was upscaled, so its strokes come out "
                         "larger and softer.")
        if spec.preserve_color == "histogram":
            img = colour.match_histograms(img, work)
        elif spec.preserve_color == "luminance":
            img = colour.luminance_rgb(img, like=work)
        out.append(img)
    if spec.preserve_color == "luminance":
        notes.append("Colours kept from the picture: the style was transferred on luminance.")
    return out


def _weights(spec: StyleSpec) -> list[float]:
    w = [float(v) for v in spec.style_weights] or [1.0] * len(spec.styles)
    return [v / sum(w) for v in w]


def _fit(img: np.ndarray, size: int, notes: list[str], what: str) -> np.ndarray:
    h, w = img.shape[:2]
    if max(h, w) <= size:
        return img
    nh, nw = long_side_size(h, w, size)
    notes.append(f"{what} ({w}x{h}) was restyled at {nw}x{nh} (the size setting) and scaled "
                 "back to its size.")
    return resize(img, nh, nw)


def _region(mask: np.ndarray, feather: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the mask's box grown by the seam and a margin."""
    ys, xs = np.nonzero(mask)
    pad = feather + MARGIN
    h, w = mask.shape
    return (max(0, ys.min() - pad), min(h, ys.max() + 1 + pad),
            max(0, xs.min() - pad), min(w, xs.max() + 1 + pad))


def _paste(content: np.ndarray, styled: np.ndarray, mask: np.ndarray,
           region: tuple[int, int, int, int], feather: int) -> np.ndarray:
    """The styled box put back at full size inside the (feathered) mask; the rest untouched."""
    top, bottom, left, right = region
    box = resize(styled, bottom - top, right - left)
    alpha = masks.feather(mask, feather)[top:bottom, left:right, None]
    out = content.copy()
    window = out[top:bottom, left:right].astype(np.float32)
    blended = window * (1 - alpha) + box.astype(np.float32) * alpha
    out[top:bottom, left:right] = np.where(alpha > 0, blended.round(), window).astype(np.uint8)
    return out
