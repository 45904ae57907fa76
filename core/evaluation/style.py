"""Style fidelity without pretrained networks, and ``easel eval`` for the fast style family.

- :func:`gram_distance`: the relative Gram-matrix distance of a picture to a style image,
  measured with random feature networks of OTHER seeds than the one every Easel style is
  optimised or trained with (seed 0): held-out networks, so a picture cannot score well by
  fooling the one network it was made with. With ``config=VGG19``, the same in a random-weight
  VGG-19 (the layout of Simonyan & Zisserman's, Gram matrices at conv1_1 ... conv5_1 as Gatys
  et al.'s, each layer normalised as He, Wang & Hopcroft 2016 do): a network of another family
  than the one Easel's styles are made with, for a second opinion.
- :func:`colour_distance`: how far a picture's colours are from the style's (the mean over
  the three channels of the L1 distance between 32-bin normalised histograms, 0..2).
- :func:`edge_ssim`: content fidelity, the SSIM of the luminance edge maps (Sobel magnitude).

The fast style evaluator restyles held-out renders of its world and reports the three, the
same for the unstyled renders (for scale), and the seconds one 512 px picture takes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core.evaluation import metrics
from core.evaluation.common import EvaluationError, evaluator, held_out_renders, world_of
from core.nets.features import FeatureConfig, RandomFeatures, gram
from core.tensors import image_to_tensor as to_tensor
from core.tensors import resize_long
from core.tensors import tensor_to_image as to_uint8
from core.weights import ModelCard, load_model

HELD_OUT_SEEDS = (101, 102, 103, 104, 105)
# A random-weight VGG-19: 16 convolutions in stages of 2, 2, 4, 4, 4; style layers conv1_1,
# conv2_1, conv3_1, conv4_1, conv5_1; content conv4_2.
VGG19 = FeatureConfig(widths=(64, 128, 256, 512, 512), convs=(2, 2, 4, 4, 4),
                      style_layers=(0, 2, 4, 8, 12), content_layers=(9,))
VGG19_SEEDS = (201,)
EVAL_IMAGES = 100  # restyled renders per evaluation (n is capped to this)
EVAL_SIZE = 128

_NETS: dict[FeatureConfig, RandomFeatures] = {}
_GRAMS: dict[tuple[Any, ...], list[torch.Tensor]] = {}


def _net(seed: int, config: FeatureConfig | None = None) -> RandomFeatures:
    key = dataclasses.replace(config or FeatureConfig(), seed=seed)
    if key not in _NETS:
        _NETS[key] = RandomFeatures(key)
    return _NETS[key]


@torch.no_grad()
def _style_grams(style: np.ndarray, long_side: int, seed: int,
                 config: FeatureConfig | None = None) -> list[torch.Tensor]:
    """The style's Gram matrices on net ``seed`` at ``long_side`` (cached: a benchmark or an
    evaluation compares many pictures with the same few styles)."""
    key = (hashlib.sha1(np.ascontiguousarray(style).tobytes()).hexdigest(), style.shape,
           long_side, seed, config)
    if key not in _GRAMS:
        net = _net(seed, config)
        f = net(to_tensor(resize_long(style, long_side)))
        _GRAMS[key] = [gram(f[i]) for i in net.config.style_layers]
    return _GRAMS[key]


@torch.no_grad()
def gram_distance(image: np.ndarray, style: np.ndarray,
                  seeds: tuple[int, ...] = HELD_OUT_SEEDS,
                  config: FeatureConfig | None = None) -> float:
    """Mean over the held-out networks (``config``'s layout, default Easel's) and their style
    layers of ||G(image) - G(style)||^2 / ||G(style)||^2, the style resized to the image's
    long side (as the style pipeline sizes it)."""
    x = to_tensor(image)
    total, count = 0.0, 0
    for seed in seeds:
        net = _net(seed, config)
        fx = net(x)
        for i, gs in zip(net.config.style_layers,
                         _style_grams(style, max(image.shape[:2]), seed, config), strict=True):
            total += float((gram(fx[i]) - gs).pow(2).sum() / gs.pow(2).sum().clamp(min=1e-12))
            count += 1
    return total / count


def colour_distance(image: np.ndarray, style: np.ndarray, bins: int = 32) -> float:
    """Mean over channels of the L1 distance of 32-bin normalised histograms (0: the same
    colours in the same proportions, 2: none in common)."""
    total = 0.0
    for c in range(3):
        a = np.histogram(image[..., c], bins, (0, 256))[0] / image[..., c].size
        b = np.histogram(style[..., c], bins, (0, 256))[0] / style[..., c].size
        total += float(np.abs(a - b).sum())
    return total / 3


def edges(image: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of the luminance, scaled to 0..255, as HxWx3 uint8."""
    y = torch.from_numpy(image.astype(np.float32) @ np.array([0.299, 0.587, 0.114],
                                                            np.float32))[None, None]
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    gx = F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), kx.view(1, 1, 3, 3))
    gy = F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), kx.t().reshape(1, 1, 3, 3))
    mag = (gx.pow(2) + gy.pow(2)).sqrt()[0, 0].numpy()
    mag = np.clip(mag / 4.0, 0, 255).astype(np.uint8)
    return np.repeat(mag[..., None], 3, axis=2)


def edge_ssim(image: np.ndarray, content: np.ndarray) -> float:
    """SSIM of the two pictures' luminance edge maps (the content resized to the image)."""
    return metrics.ssim(edges(image)[None], edges(resize_long(content, max(image.shape[:2])))[
        None])


@evaluator("style_fast")
@torch.no_grad()
def evaluate_fast_style(path: Path, card: ModelCard, n: int, device: torch.device
                        ) -> dict[str, Any]:
    from core.training.families.style import style_image

    world = world_of(card)
    net = load_model(path, device)
    recipe = card.extra.get("recipe_resolved", {})
    named = card.config.get("style") or recipe.get("task", {}).get("style", "")
    if not named:
        raise EvaluationError(f"{card.name}'s card does not name the style image it learnt.")
    style = style_image(named, EVAL_SIZE)
    n = min(n, EVAL_IMAGES)
    contents = [s.image for s in held_out_renders(world, n, EVAL_SIZE)]
    styled = []
    for img in contents:
        styled.append(to_uint8(net(to_tensor(img, device))))
    big = to_tensor(resize_long(contents[0], 512), device)
    net(big)  # warm-up
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        net(big)
        times.append(time.perf_counter() - t0)

    def mean(fn: Any, pairs: Any) -> float:
        return float(np.mean([fn(a, b) for a, b in pairs]))

    return {
        "heldout_gram_distance": mean(gram_distance, ((s, style) for s in styled)),
        "heldout_gram_distance_unstyled": mean(gram_distance, ((c, style) for c in contents)),
        "colour_distance": mean(colour_distance, ((s, style) for s in styled)),
        "colour_distance_unstyled": mean(colour_distance, ((c, style) for c in contents)),
        "content_edge_ssim": mean(edge_ssim, zip(styled, contents, strict=True)),
        "seconds_512px": float(np.median(times)),
        "images": n,
    }
