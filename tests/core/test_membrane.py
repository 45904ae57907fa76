from __future__ import annotations

import numpy as np

from core.algorithms.membrane import fill_harmonic


def ring_of(hole: np.ndarray) -> np.ndarray:
    g = np.pad(hole, 1)
    return (g[2:, 1:-1] | g[:-2, 1:-1] | g[1:-1, 2:] | g[1:-1, :-2]) & ~hole


def test_a_linear_ramp_is_rebuilt_from_its_boundary():
    y, x = np.mgrid[:90, :120].astype(np.float32)
    truth = np.stack([0.3 * x + 10, 0.2 * y - 0.1 * x, np.full_like(x, 7)], -1)
    hole = np.zeros((90, 120), bool)
    hole[20:75, 15:100] = True
    hole[5:20, 40:48] = True  # an arm: the solver must not assume a box
    given = np.where(hole[..., None], 0, truth)
    out = fill_harmonic(given, hole, ring_of(hole))
    assert np.abs(out - truth)[hole].max() < 1.0  # a linear function is harmonic
    np.testing.assert_array_equal(out[~hole], given[~hole])


def test_the_membrane_stays_within_its_data_and_ignores_other_pixels():
    rng = np.random.default_rng(0)
    vals = rng.uniform(-20, 20, (64, 64, 3)).astype(np.float32)
    hole = np.zeros((64, 64), bool)
    hole[10:50, 12:30] = True
    data = ring_of(hole)
    vals[~hole & ~data] = 1e6  # neither hole nor data: not part of the problem
    out = fill_harmonic(vals, hole, data)
    lo, hi = vals[data].min(axis=0), vals[data].max(axis=0)
    assert (out[hole] >= lo - 1e-3).all() and (out[hole] <= hi + 1e-3).all()
