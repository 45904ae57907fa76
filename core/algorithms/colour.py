"""Colour transfer without learning: Reinhard et al. (2001) statistics matching, per-channel
histogram matching, and luminance/chroma split for colour-preserving style transfer.

All functions take and return uint8 RGB (H, W, 3) arrays unless they say otherwise.
"""

from __future__ import annotations

import numpy as np

# Reinhard et al. 2001, eqs. 1-6: RGB -> LMS -> log10 -> l-alpha-beta (decorrelated axes).
_RGB2LMS = np.array([[0.3811, 0.5783, 0.0402],
                     [0.1967, 0.7244, 0.0782],
                     [0.0241, 0.1288, 0.8444]])
_LMS2LAB = np.diag([1 / np.sqrt(3), 1 / np.sqrt(6), 1 / np.sqrt(2)]) @ np.array(
    [[1, 1, 1], [1, 1, -2], [1, -1, 0]])
# YIQ (NTSC): Y is luminance; I and Q carry the colour.
_RGB2YIQ = np.array([[0.299, 0.587, 0.114],
                     [0.596, -0.274, -0.322],
                     [0.211, -0.523, 0.312]])
_YIQ2RGB = np.linalg.inv(_RGB2YIQ)


def _to_lab(rgb: np.ndarray) -> np.ndarray:
    lms = (rgb.reshape(-1, 3).astype(np.float64) / 255.0 + 1e-4) @ _RGB2LMS.T
    return np.log10(lms) @ _LMS2LAB.T


def _from_lab(lab: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    lms = 10 ** (lab @ np.linalg.inv(_LMS2LAB).T)
    rgb = (lms @ np.linalg.inv(_RGB2LMS).T - 1e-4) * 255.0
    return np.clip(rgb, 0, 255).round().astype(np.uint8).reshape(shape)


def reinhard_transfer(source: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``source`` recoloured so that its l-alpha-beta means and deviations are those of
    ``reference`` (Reinhard et al. 2001)."""
    src, ref = _to_lab(source), _to_lab(reference)
    out = (src - src.mean(0)) / (src.std(0) + 1e-8) * ref.std(0) + ref.mean(0)
    return _from_lab(out, source.shape)


def match_histograms(source: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``source`` with each channel's histogram mapped onto ``reference``'s (exact CDF match)."""
    out = np.empty_like(source)
    for c in range(3):
        s = source[..., c].ravel()
        _, s_index, s_counts = np.unique(s, return_inverse=True, return_counts=True)
        r_values, r_counts = np.unique(reference[..., c].ravel(), return_counts=True)
        s_cdf = np.cumsum(s_counts) / s.size
        r_cdf = np.cumsum(r_counts) / r_counts.sum()
        mapped = np.interp(s_cdf, r_cdf, r_values.astype(np.float64))
        out[..., c] = np.clip(mapped.round(), 0, 255).astype(np.uint8)[s_index].reshape(
            source.shape[:2])
    return out


def to_yiq(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float YIQ (H, W, 3), Y in [0, 1]."""
    return rgb.astype(np.float64) / 255.0 @ _RGB2YIQ.T


def from_yiq(yiq: np.ndarray) -> np.ndarray:
    return np.clip((yiq @ _YIQ2RGB.T) * 255.0, 0, 255).round().astype(np.uint8)


def luminance_rgb(rgb: np.ndarray, like: np.ndarray | None = None) -> np.ndarray:
    """The picture's luminance as a grey RGB picture; with ``like``, its mean and deviation
    matched to ``like``'s luminance (so a style's light and dark sit where the content's do)."""
    y = to_yiq(rgb)[..., 0]
    if like is not None:
        ly = to_yiq(like)[..., 0]
        y = (y - y.mean()) / (y.std() + 1e-8) * ly.std() + ly.mean()
    grey = np.clip(y * 255.0, 0, 255).round().astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def keep_colours(styled: np.ndarray, content: np.ndarray) -> np.ndarray:
    """``styled``'s luminance with ``content``'s colour (its I and Q channels)."""
    yiq = to_yiq(content)
    yiq[..., 0] = to_yiq(styled)[..., 0]
    return from_yiq(yiq)


def over_white(image: np.ndarray) -> np.ndarray:
    """An RGBA picture composited over white (a painting's transparent parts read as paper);
    RGB is returned as it is."""
    if image.shape[2] == 3:
        return image
    a = image[..., 3:].astype(np.float32) / 255.0
    return (image[..., :3] * a + 255.0 * (1 - a)).round().astype(np.uint8)
