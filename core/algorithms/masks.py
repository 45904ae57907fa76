"""Mask operations on HxW uint8 masks (0 = keep, 255 = selected), numpy only.

Used by the inpaint pipeline and the Inpaint panel's mask tools. Any nonzero value counts as
selected on input; masks come back as uint8 0/255 (``feather`` returns float32 alpha).

Grow, shrink and feather all rest on one capped Euclidean distance transform: an exact
vertical pass (the distance to the nearest set pixel in each column, found with cumulative
max/min of row indices), then the horizontal lower envelope D(y,x)^2 = min_dx dx^2 + g(y,x+dx)^2
(the separable form of Felzenszwalb & Huttenlocher, "Distance Transforms of Sampled
Functions", 2012) evaluated only over |dx| <= limit, because a grow/shrink/feather of ``px``
never needs distances beyond px + 1. The work is also restricted to the mask's bounding box
plus ``px``, so a small mask on a large image stays cheap.

The outside of the image counts as neither selected nor unselected: shrinking a mask that
touches the image edge does not eat it away from that edge, and feathering does not fade it
there.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "as_bool", "bbox", "coverage", "distance_to", "feather", "grow", "invert", "is_empty",
    "shrink", "to_uint8",
]


def as_bool(mask: np.ndarray) -> np.ndarray:
    """A 2-D mask as a bool array (nonzero = selected)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"A mask must be a 2-D array, got shape {mask.shape}.")
    return mask if mask.dtype == np.bool_ else mask != 0


def to_uint8(mask: np.ndarray) -> np.ndarray:
    """A 2-D mask as uint8 0/255."""
    return as_bool(mask).astype(np.uint8) * np.uint8(255)


def invert(mask: np.ndarray) -> np.ndarray:
    return to_uint8(~as_bool(mask))


def is_empty(mask: np.ndarray) -> bool:
    return not bool(as_bool(mask).any())


def coverage(mask: np.ndarray) -> float:
    """Fraction of pixels selected, in [0, 1]."""
    m = as_bool(mask)
    return float(m.mean()) if m.size else 0.0


def bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(y0, y1, x0, x1)`` of the selected pixels, end-exclusive; None for an empty mask."""
    m = as_bool(mask)
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(m.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def distance_to(target: np.ndarray, limit: int) -> np.ndarray:
    """Euclidean distance from every pixel to the nearest True pixel of ``target``.

    Exact up to ``limit``; anything farther (or no True pixel at all) reads ``limit + 1``.
    Returns float32 with the shape of ``target``.
    """
    t = as_bool(target)
    limit = int(limit)
    if limit < 0:
        raise ValueError("limit must be >= 0")
    h, w = t.shape
    cap = limit + 1
    if h == 0 or w == 0:
        return np.zeros((h, w), np.float32)
    # Vertical pass: distance to the nearest True pixel in the same column.
    rows = np.arange(h, dtype=np.int32)[:, None]
    far = np.int32(h + cap)
    above = _running(np.where(t, rows, -far), np.maximum)
    below = _running(np.where(t, rows, far)[::-1], np.minimum)[::-1]
    g = np.minimum(rows - above, below - rows)
    np.minimum(g, cap, out=g)
    # uint16 halves the memory traffic of the loop below whenever g^2 + dx^2 cannot overflow.
    g2 = (g * g).astype(np.uint16 if 2 * cap * cap < 2**16 else np.int32)
    # Horizontal pass: lower envelope of dx^2 + g^2, only over |dx| <= limit.
    d2 = g2.copy()
    for dx in range(1, min(limit, w - 1) + 1):
        dd = g2.dtype.type(dx * dx)
        np.minimum(d2[:, dx:], g2[:, :-dx] + dd, out=d2[:, dx:])
        np.minimum(d2[:, :-dx], g2[:, dx:] + dd, out=d2[:, :-dx])
    return np.minimum(np.sqrt(d2, dtype=np.float32), np.float32(cap))


def _running(a: np.ndarray, op: np.ufunc) -> np.ndarray:
    """``op.accumulate(a, axis=0)`` in place, one row at a time: numpy's accumulate along the
    slow axis is several times slower than this loop of whole-row operations."""
    for i in range(1, a.shape[0]):
        op(a[i - 1], a[i], out=a[i])
    return a


def _window(shape: tuple[int, int], box: tuple[int, int, int, int], pad: int
            ) -> tuple[slice, slice]:
    y0, y1, x0, x1 = box
    return (slice(max(0, y0 - pad), min(shape[0], y1 + pad)),
            slice(max(0, x0 - pad), min(shape[1], x1 + pad)))


def grow(mask: np.ndarray, px: int) -> np.ndarray:
    """Dilate by a disc of radius ``px``: select every pixel within ``px`` of a selected one."""
    m = as_bool(mask)
    px = _check_px(px)
    box = bbox(m)
    if px == 0 or box is None:
        return to_uint8(m)
    win = _window(m.shape, box, px)
    out = np.zeros(m.shape, np.bool_)
    out[win] = distance_to(m[win], px) <= px
    return to_uint8(out)


def shrink(mask: np.ndarray, px: int) -> np.ndarray:
    """Erode by a disc of radius ``px``: keep selected pixels farther than ``px`` from any
    unselected pixel of the image (the image edge does not erode)."""
    m = as_bool(mask)
    px = _check_px(px)
    box = bbox(m)
    if px == 0 or box is None:
        return to_uint8(m)
    win = _window(m.shape, box, px)
    out = np.zeros(m.shape, np.bool_)
    sub = m[win]
    out[win] = sub & (distance_to(~sub, px) > px)
    return to_uint8(out)


def feather(mask: np.ndarray, px: int) -> np.ndarray:
    """Soft alpha in [0, 1], float32: 0 outside the mask, rising smoothly inside it to 1 at
    ``px + 1`` pixels from the unselected area. ``px == 0`` gives the hard mask."""
    m = as_bool(mask)
    px = _check_px(px)
    box = bbox(m)
    alpha = np.zeros(m.shape, np.float32)
    if box is None:
        return alpha
    if px == 0:
        alpha[m] = 1.0
        return alpha
    win = _window(m.shape, box, px + 1)
    sub = m[win]
    # Distance to the unselected area is >= 1 on every selected pixel, so the ramp never
    # reaches 0 inside the mask and the fill always contributes there.
    t = np.clip(distance_to(~sub, px + 1) / np.float32(px + 1), 0.0, 1.0)
    ramp = t * t * (3.0 - 2.0 * t)  # smoothstep: no visible kink where the ramp ends
    alpha[win] = np.where(sub, ramp, 0.0).astype(np.float32)
    return alpha


def _check_px(px: int) -> int:
    px = int(px)
    if px < 0:
        raise ValueError(f"A mask radius must be >= 0 pixels, got {px}.")
    return px
