"""Straight structures that cross a hole, found so that the fill can continue them. numpy only.

Sun, Yuan, Jia & Shum ("Image Completion with Structure Propagation", SIGGRAPH 2005) complete
the structure first, along curves the user draws, and the texture after. Here the structure is
found: the strong-gradient pixels of the band of known pixels around the hole vote in a Hough
transform (Duda & Hart 1972; each pixel votes once, for the line through it normal to its
gradient), and a line is kept when its pixels lie on both sides of the hole, i.e. it enters
and leaves it. PatchMatch then tries, for every target patch near such a line, the patches
on the line just outside the hole (the same offset from the line, moved along it): the
continuation of the line, which the random search would rarely find (core.algorithms.patchmatch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.algorithms.masks import bbox, distance_to

ANGLE_BINS = 60  # 3 degrees; each pixel votes in its bin and both neighbours
RHO_BIN = 2.0  # px
MAX_LINES = 12
MIN_GRADIENT = 8.0  # grey levels per pixel: weaker gradients are texture, not structure


@dataclass(frozen=True)
class Line:
    """x cos(theta) + y sin(theta) = rho in the picture's pixel coordinates; ``t0``..``t1`` is
    the hole's extent along it (t = -x sin(theta) + y cos(theta)) within ``reach`` of it."""

    theta: float
    rho: float
    t0: float
    t1: float
    reach: float

    def scaled(self, f: float) -> Line:
        return Line(self.theta, self.rho / f, self.t0 / f, self.t1 / f, self.reach / f)


def _no_check() -> None:
    pass


def find_lines(img: np.ndarray, hole: np.ndarray, band: int, reach: float,
               check: Callable[[], None] = _no_check) -> list[Line]:
    """Straight edges that cross ``hole`` (HxW bool) of ``img`` (HxWx3), seen in the known
    pixels within ``band`` px of it. ``reach``: how far from a line a patch centre may lie and
    still follow it (the hole's extent along the line is measured over that strip)."""
    box = bbox(hole)
    if box is None:
        return []
    h, w = hole.shape
    y0, x0 = max(0, box[0] - band), max(0, box[2] - band)
    y1, x1 = min(h, box[1] + band), min(w, box[3] + band)
    sub_hole = hole[y0:y1, x0:x1]
    check()
    lum = np.asarray(img[y0:y1, x0:x1, :3], np.float32) @ np.array([0.299, 0.587, 0.114],
                                                                     np.float32)
    g = np.pad(lum, 1, mode="edge")
    gx = (g[:-2, 2:] + 2 * g[1:-1, 2:] + g[2:, 2:] - g[:-2, :-2] - 2 * g[1:-1, :-2]
          - g[2:, :-2]) / 8
    gy = (g[2:, :-2] + 2 * g[2:, 1:-1] + g[2:, 2:] - g[:-2, :-2] - 2 * g[:-2, 1:-1]
          - g[:-2, 2:]) / 8
    mag = np.hypot(gx, gy)
    dist = distance_to(sub_hole, band)
    # Known pixels whose Sobel window does not reach into the hole (its pixels are not known).
    ring = (dist > 1.5) & (dist <= band)
    if not ring.any():
        return []
    strong = ring & (mag > max(MIN_GRADIENT, float(np.percentile(mag[ring], 85))))
    ys, xs = np.nonzero(strong)
    if len(ys) < 2 * band:
        return []
    theta = np.mod(np.arctan2(gy[ys, xs], gx[ys, xs]), np.pi)
    k0 = np.minimum((theta / np.pi * ANGLE_BINS).astype(np.int64), ANGLE_BINS - 1)
    centres = (np.arange(ANGLE_BINS) + 0.5) * np.pi / ANGLE_BINS
    diag = int(np.ceil(np.hypot(*sub_hole.shape) / RHO_BIN)) + 1
    votes = np.zeros((ANGLE_BINS, 2 * diag + 1), np.int64)

    def rho_bin(k: np.ndarray) -> np.ndarray:
        return np.rint((xs * np.cos(centres[k]) + ys * np.sin(centres[k])) / RHO_BIN
                       ).astype(np.int64) + diag

    for dk in (-1, 0, 1):
        k = (k0 + dk) % ANGLE_BINS
        np.add.at(votes, (k, rho_bin(k)), 1)
    check()
    peak = votes >= max(6, band // 2)
    # Non-maximum suppression over neighbouring angles (cyclic) and offsets.
    padded = np.pad(votes, ((1, 1), (1, 1)), mode="wrap")
    for dk in (-1, 0, 1):
        for dr in (-1, 0, 1):
            if dk or dr:
                peak &= votes >= padded[1 + dk:1 + dk + ANGLE_BINS, 1 + dr:1 + dr + votes.shape[1]]
    hy, hx = np.nonzero(sub_hole)
    lines: list[Line] = []
    for kk, rr in sorted(zip(*np.nonzero(peak), strict=True), key=lambda p: -votes[p])[:MAX_LINES]:
        th = float(centres[kk])
        c, s = np.cos(th), np.sin(th)
        # Pixels of this line: those that voted for it or beside it.
        r0 = float(rr - diag) * RHO_BIN
        mine = (np.abs(xs * c + ys * s - r0) <= RHO_BIN) & (
            np.abs(np.mod(theta - th + np.pi / 2, np.pi) - np.pi / 2) <= 2 * np.pi / ANGLE_BINS)
        px, py = xs[mine], ys[mine]
        if len(px) < 4:
            continue
        # Refine by least-squares lines through its pixels (the principal axis), twice: the
        # second fit keeps only the pixels close to the first.
        for _ in range(2):
            mx, my = px.mean(), py.mean()
            _, evecs = np.linalg.eigh(np.cov(np.stack([px - mx, py - my])))
            nxv, nyv = evecs[:, 0]  # the normal: the direction of least spread
            th = float(np.mod(np.arctan2(nyv, nxv), np.pi))
            c, s = np.cos(th), np.sin(th)
            r0 = float(mx * c + my * s)
            close = np.abs(xs * c + ys * s - r0) <= 1.5
            close &= np.abs(np.mod(theta - th + np.pi / 2, np.pi) - np.pi / 2) < np.pi / 12
            if close.sum() < 4:
                break
            px, py = xs[close], ys[close]
        t_edge = -px * s + py * c
        near = np.abs(hx * c + hy * s - r0) <= reach
        if not near.any():
            continue
        t_hole = -hx[near] * s + hy[near] * c
        t0, t1 = float(t_hole.min()), float(t_hole.max())
        side = max(4.0, band / 2)
        if (t_edge < t0).sum() < side or (t_edge > t1).sum() < side:
            continue  # it does not cross the hole: an edge that ends at it, or texture
        if any(abs(np.mod(th - q.theta + np.pi / 2, np.pi) - np.pi / 2) < np.pi / 60
               and abs(r0 + x0 * c + y0 * s - q.rho) < 3 for q in lines):
            continue  # the other side of a thin line, or the same edge again
        # Back to the picture's coordinates.
        lines.append(Line(th, r0 + x0 * c + y0 * s, t0 - x0 * s + y0 * c,
                          t1 - x0 * s + y0 * c, reach))
    return lines


def continuations(lines: list[Line], ty: np.ndarray, tx: np.ndarray, margin: float
                  ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For target patch centres (``ty``, ``tx``) near each line: (which targets, candidate y,
    candidate x), twice per line: the same place moved along the line to just past either end
    of the hole (``margin`` px beyond it)."""
    out = []
    for ln in lines:
        c, s = np.cos(ln.theta), np.sin(ln.theta)
        near = np.flatnonzero(np.abs(tx * c + ty * s - ln.rho) <= ln.reach)
        if len(near) == 0:
            continue
        t = -tx[near] * s + ty[near] * c
        for shift in (ln.t1 + margin - t, ln.t0 - margin - t):
            out.append((near, np.rint(ty[near] + shift * c).astype(np.int64),
                        np.rint(tx[near] - shift * s).astype(np.int64)))
    return out


def extend_along(img: np.ndarray, hole: np.ndarray, lines: list[Line]) -> None:
    """Paint each line's strip of the hole (in place, float ``img``) by interpolating along the
    line between the known pixels just outside either end: the structure's first guess."""
    hy, hx = np.nonzero(hole)
    h, w = hole.shape
    for ln in lines:
        c, s = np.cos(ln.theta), np.sin(ln.theta)
        d = hx * c + hy * s - ln.rho
        sel = np.abs(d) <= max(1.0, ln.reach / 2)
        if not sel.any():
            continue
        y, x = hy[sel], hx[sel]
        t = -x * s + y * c
        a, b = ln.t0 - 1.5 - t, ln.t1 + 1.5 - t
        ay = np.clip(np.rint(y + a * c).astype(np.int64), 0, h - 1)
        ax = np.clip(np.rint(x - a * s).astype(np.int64), 0, w - 1)
        by = np.clip(np.rint(y + b * c).astype(np.int64), 0, h - 1)
        bx = np.clip(np.rint(x - b * s).astype(np.int64), 0, w - 1)
        wa = (b / np.maximum(b - a, 1e-6))[:, None]
        ok = ~hole[ay, ax] & ~hole[by, bx]
        vals = wa * img[ay, ax, :3] + (1 - wa) * img[by, bx, :3]
        img[y[ok], x[ok], :3] = vals[ok]
