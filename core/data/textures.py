"""Texture photos as style images: the ones bundled inside the scikit-image wheel (no download).

scikit-image is optional (the ``textures`` extra; it needs no torchvision): only training the
one-pass style model reads these. :func:`varied_texture` draws a crop of a random size and
place, a quarter turn or flip, and (for the greyscale photos, and some of the colour ones) a
random two-colour tint from its seed, so one photo gives many styles.
"""

from __future__ import annotations

import functools

import numpy as np

from core.data.styles import random_palette
from core.tensors import resize

# Name -> the skimage.data function that returns it.
TEXTURES = {
    "brick": "brick",
    "grass": "grass",
    "gravel": "gravel",
    "page": "page",  # a printed page: lines of letters
    "stain": "immunohistochemistry",  # stained tissue: a colour texture
    "stars": "hubble_deep_field",
}
# Textures the one-pass style model never sees in training: its evaluation measures on these.
HELD_OUT_TEXTURES = ("gravel", "stars")


class TexturesMissing(RuntimeError):
    """scikit-image (which carries the photos) is not installed."""


@functools.lru_cache(maxsize=len(TEXTURES))
def texture(name: str) -> np.ndarray:
    """The texture photo ``name`` as HxWx3 uint8 (greyscale repeated to three channels)."""
    if name not in TEXTURES:
        raise KeyError(f"Unknown texture {name!r}; known: {', '.join(TEXTURES)}")
    try:
        from skimage import data
    except ImportError:
        raise TexturesMissing("the texture styles come with scikit-image, which is not "
                              "installed: pip install 'easel[textures]' (or leave "
                              "task.textures empty).") from None
    img = np.asarray(getattr(data, TEXTURES[name])())
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = np.ascontiguousarray(img[..., :3]).astype(np.uint8)
    img.setflags(write=False)
    return img


def varied_texture(name: str, seed: int, size: int = 256) -> np.ndarray:
    """A ``size`` px square from texture ``name``: a crop of a quarter to all of the photo's
    short side, at a random place, turned or flipped, and tinted when grey (always) or colour
    (a quarter of the time), all drawn from ``seed``."""
    img = texture(name)
    rng = np.random.default_rng([int(seed), sum(map(ord, name)), 7])
    h, w = img.shape[:2]
    side = int(min(h, w) * rng.uniform(0.25, 1.0))
    y, x = int(rng.integers(h - side + 1)), int(rng.integers(w - side + 1))
    crop = np.rot90(img[y:y + side, x:x + side], int(rng.integers(4)))
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    out = resize(np.ascontiguousarray(crop), size, size)
    grey = bool(np.ptp(img.astype(np.int16), axis=2).max() == 0)
    if grey or rng.random() < 0.25:
        # A gradient map from a dark to a light colour of one palette, along the luminance.
        colours = sorted(random_palette(rng, 5), key=sum)
        dark, light = colours[0], colours[-1]
        t = (out.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) / 255)[
            ..., None]
        out = np.clip(np.array(dark) * (1 - t) + np.array(light) * t, 0, 255).astype(np.uint8)
    return out
