"""Harmonic (membrane) interpolation over a hole, for gradient-domain blending.

Seamless cloning (Perez, Gangnet & Blake, "Poisson Image Editing", SIGGRAPH 2003) keeps a
pasted region's gradients and makes it meet its surround: the result is the pasted values plus
the harmonic function whose boundary values are the mismatch along the region's edge (Farbman
et al., "Coordinates for Instant Image Cloning", 2009, sec. 2: the "membrane"). This module
computes that membrane: ``fill_harmonic(values, unknown)`` replaces the unknown pixels by the
solution of Laplace's equation whose Dirichlet data are the known pixels next to them (the
image edge is a free, Neumann, boundary).

The solver is a cascadic multigrid: the problem is halved (known values averaged, a coarse
pixel unknown only when all four of its pixels are) until it is small, solved there by many
red-black Gauss-Seidel sweeps, and each finer level starts from the coarser solution and
relaxes a few sweeps. The smooth error the coarse levels leave is what relaxation is slow at,
and the fine levels only have to fix the detail near the boundary, so the cost is linear in
the hole's bounding box.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

COARSEST = 6  # px: a level this small is solved outright
COARSE_SWEEPS = 50
SWEEPS = 16  # red-black Gauss-Seidel sweeps per finer level
TORCH_ABOVE = 4096  # unknown pixels: sweeps over more than this many run on torch


def _no_check() -> None:
    pass


def fill_harmonic(values: np.ndarray, unknown: np.ndarray, data: np.ndarray,
                  check: Callable[[], None] = _no_check) -> np.ndarray:
    """The harmonic interpolation over the ``unknown`` pixels (HxW bool) of ``values``
    (HxWxC float32) at the ``data`` pixels (HxW bool, Dirichlet data; normally the known
    pixels next to the unknown ones). Pixels in neither mask are not part of the problem (a
    free boundary, as is the image edge). Returns an HxWxC float32 array holding the solution
    on ``unknown`` and ``values`` elsewhere."""
    out = np.array(values, np.float32, copy=True)
    if not unknown.any() or not data.any():
        return out
    ys, xs = np.nonzero(unknown.any(axis=1))[0], np.nonzero(unknown.any(axis=0))[0]
    h, w = unknown.shape
    y0, y1 = max(0, ys[0] - 1), min(h, ys[-1] + 2)
    x0, x1 = max(0, xs[0] - 1), min(w, xs[-1] + 2)
    box = (slice(y0, y1), slice(x0, x1))
    out[box] = _solve(out[box], unknown[box], data[box] & ~unknown[box], check)
    return out


def _solve(vals: np.ndarray, unknown: np.ndarray, data: np.ndarray,
           check: Callable[[], None]) -> np.ndarray:
    check()
    h, w = unknown.shape
    start = vals.copy()
    if max(h, w) <= COARSEST:
        start[unknown] = vals[data].mean(axis=0) if data.any() else 0.0
        return _relax(start, unknown, data, COARSE_SWEEPS, check)
    cv, cu, cd = _halve(vals, unknown, data)
    coarse = _solve(cv, cu, cd, check)
    up = np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1)[:h, :w]
    start[unknown] = up[unknown]
    return _relax(start, unknown, data, SWEEPS, check)


def _halve(vals: np.ndarray, unknown: np.ndarray, data: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Data: 2x2 means over the data pixels. A coarse pixel is data when any of its four is,
    else unknown when any is."""
    h, w = unknown.shape
    pad = ((0, h % 2), (0, w % 2))

    def quads(a: np.ndarray) -> np.ndarray:
        return a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]

    d = np.pad(data, pad).astype(np.float32)
    n = quads(d)
    s = quads(np.pad(vals, (*pad, (0, 0))) * d[..., None])
    cd = n > 0
    cu = ~cd & (quads(np.pad(unknown, pad).astype(np.float32)) > 0)
    return s / np.maximum(n, 1)[..., None], cu, cd


def _relax(u: np.ndarray, unknown: np.ndarray, data: np.ndarray, sweeps: int,
           check: Callable[[], None]) -> np.ndarray:
    """Red-black Gauss-Seidel on the 5-point Laplacian over the unknown and data pixels. Only
    the unknown pixels are visited (gathers of their neighbours), so a thin hole in a large box
    costs what the hole does."""
    h, w = unknown.shape
    c = u.shape[2]
    present = unknown | data
    # Flat pixels, plus one cell that stands for every absent neighbour (value 0, not counted).
    flat = np.concatenate([u.reshape(-1, c), np.zeros((1, c), np.float32)])
    absent = h * w
    ys, xs = np.nonzero(unknown)
    # int32 indices: a large hole's neighbour table is its biggest array.
    nb = np.empty((4, len(ys)), np.int32)
    for i, (dy, dx) in enumerate(((-1, 0), (1, 0), (0, -1), (0, 1))):
        ny, nx = ys + dy, xs + dx
        ok = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        ok[ok] = present[ny[ok], nx[ok]]
        nb[i] = np.where(ok, ny * w + nx, absent)
    inv = (1.0 / np.maximum((nb != absent).sum(0), 1)).astype(np.float32)[:, None]
    black = (ys + xs) % 2 == 1
    cells = (ys * w + xs).astype(np.int32)
    del ys, xs
    big = len(cells) > TORCH_ABOVE
    parts = [(cells[sel], nb[:, sel], inv[sel]) for sel in (~black, black)]
    del nb, cells, inv
    if big:
        # torch's gathers of whole rows are several times faster than numpy's fancy indexing
        # on a large hole (and take the int32 tables as they are); on a small one numpy's
        # lower cost per call wins. The sums go into buffers made once, so the sweeps
        # allocate nothing (a large hole's temporaries would otherwise raise the peak).
        _sweep_torch(torch.from_numpy(flat), parts, sweeps, check)
    else:
        for i in range(sweeps):
            if i % 4 == 0:
                check()  # a sweep of a large hole takes a while
            for idx, n, k in parts:
                total = flat[n[0]]
                for j in n[1:]:
                    total += flat[j]
                total *= k
                flat[idx] = total
    return flat[:-1].reshape(h, w, c)


def _sweep_torch(table: torch.Tensor, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                 sweeps: int, check: Callable[[], None]) -> None:
    """_relax's sweeps on torch, in place on ``table`` (the flat pixels)."""
    work = []
    for idx, n, k in parts:
        total = torch.empty(len(idx), table.shape[1])
        work.append((torch.from_numpy(idx.astype(np.int64)), [torch.from_numpy(r) for r in n],
                     torch.from_numpy(k), total, torch.empty_like(total)))
    for i in range(sweeps):
        if i % 4 == 0:
            check()  # a sweep of a large hole takes a while
        for idx, n, k, total, part in work:
            torch.index_select(table, 0, n[0], out=total)
            for j in n[1:]:
                torch.index_select(table, 0, j, out=part)
                total += part
            total *= k
            table.index_copy_(0, idx, total)
