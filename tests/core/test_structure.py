from __future__ import annotations

import numpy as np

from core.algorithms.patchmatch import fill
from core.algorithms.structure import find_lines
from tests.core.test_patchmatch import drive


def line_picture(n: int, angle_deg: float, half: float = 2.5, seed: int = 0,
                 ends_at_hole: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A dark straight line (normal at ``angle_deg`` + 90) over a wavy texture, a box hole on
    it; returns (image, hole, distance of each pixel from the line)."""
    y, x = np.mgrid[:n, :n].astype(np.float64)
    c = (n - 1) / 2
    a = np.deg2rad(angle_deg)
    d = (x - c) * -np.sin(a) + (y - c) * np.cos(a)
    t = (x - c) * np.cos(a) + (y - c) * np.sin(a)
    rng = np.random.default_rng(seed)
    base = 150 + 25 * np.sin(x * 0.35) * np.cos(y * 0.21) + rng.normal(0, 6, (n, n))
    on_line = np.abs(d) < half
    if ends_at_hole:
        on_line &= t < 0
    img = np.where(on_line, 25.0, base)
    img = np.clip(np.stack([img, img * 0.95, img * 0.9], -1), 0, 255).astype(np.uint8)
    hole = np.zeros((n, n), bool)
    s = n // 4
    hole[n // 2 - s // 2:n // 2 + s // 2, n // 2 - s // 2:n // 2 + s // 2] = True
    return img, hole, d


def test_a_line_crossing_the_hole_is_found_and_one_ending_there_is_not():
    img, hole, _ = line_picture(128, 35)
    lines = find_lines(img, hole, 12, 4.0)
    assert lines
    normal = np.rad2deg(lines[0].theta)
    assert abs(normal - (35 + 90)) < 6
    img, hole, _ = line_picture(128, 35, ends_at_hole=True)
    assert find_lines(img, hole, 12, 4.0) == []


def test_the_fill_continues_a_thin_line_across_the_hole():
    img, hole, d = line_picture(128, 60)
    out, _ = drive(fill(img, hole, rng=np.random.default_rng(0)))
    lum = out.astype(float).mean(axis=2)
    on = hole & (np.abs(d) < 1.0)  # the line's core inside the hole
    off = hole & (np.abs(d) > 8)
    assert lum[on].mean() < 70 < lum[off].mean()  # dark along the whole line, not texture

