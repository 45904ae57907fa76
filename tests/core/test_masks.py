from __future__ import annotations

import numpy as np
import pytest

from core.algorithms import masks


def brute_distance(target: np.ndarray) -> np.ndarray:
    """Exact Euclidean distance to the nearest True pixel, by comparing every pair."""
    ys, xs = np.nonzero(target)
    gy, gx = np.mgrid[: target.shape[0], : target.shape[1]]
    if len(ys) == 0:
        return np.full(target.shape, np.inf)
    d2 = (gy[..., None] - ys) ** 2 + (gx[..., None] - xs) ** 2
    return np.sqrt(d2.min(axis=-1))


def random_blobs(seed: int, shape=(28, 33)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = np.zeros(shape, np.uint8)
    for _ in range(4):
        y, x = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        h, w = rng.integers(1, 12, 2)
        m[y:y + h, x:x + w] = 255
    return m


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("px", [1, 2, 5])
def test_grow_and_shrink_match_the_euclidean_definition(seed, px):
    m = random_blobs(seed)
    sel = m > 0
    grown = masks.grow(m, px)
    assert grown.dtype == np.uint8 and set(np.unique(grown)) <= {0, 255}
    np.testing.assert_array_equal(grown > 0, brute_distance(sel) <= px)
    shrunk = masks.shrink(m, px)
    expected = sel & (brute_distance(~sel) > px) if (~sel).any() else sel
    np.testing.assert_array_equal(shrunk > 0, expected)


def test_grow_a_point_gives_a_disc():
    m = np.zeros((21, 21), np.uint8)
    m[10, 10] = 255
    gy, gx = np.mgrid[:21, :21]
    disc = (gy - 10) ** 2 + (gx - 10) ** 2 <= 9
    np.testing.assert_array_equal(masks.grow(m, 3) > 0, disc)


def test_shrink_undoes_grow_on_a_box_and_opening_stays_inside():
    m = np.zeros((40, 50), np.uint8)
    m[10:25, 12:40] = 255
    np.testing.assert_array_equal(masks.shrink(masks.grow(m, 4), 4), m)
    blob = random_blobs(7, (40, 50))
    opened = masks.grow(masks.shrink(blob, 2), 2) > 0
    closed = masks.shrink(masks.grow(blob, 2), 2) > 0
    assert not (opened & (blob == 0)).any()
    assert not ((blob > 0) & ~closed).any()


def test_image_edge_does_not_erode():
    full = np.full((10, 12), 255, np.uint8)
    np.testing.assert_array_equal(masks.shrink(full, 3), full)
    left = np.zeros((20, 20), np.uint8)
    left[:, :8] = 255
    shrunk = masks.shrink(left, 2) > 0
    assert shrunk[:, :6].all() and not shrunk[:, 6:].any()


def test_feather_is_a_smooth_ramp_inside_the_mask():
    m = np.zeros((40, 40), np.uint8)
    m[5:35, 5:35] = 255
    a = masks.feather(m, 6)
    assert a.dtype == np.float32 and a.shape == m.shape
    assert a.min() >= 0.0 and a.max() <= 1.0
    assert (a[m == 0] == 0).all()
    assert (a[m > 0] > 0).all()
    assert a[20, 20] == 1.0
    row = a[20, 5:21]
    assert (np.diff(row) >= 0).all() and row[0] < 0.2
    np.testing.assert_array_equal(masks.feather(m, 0), (m > 0).astype(np.float32))


def test_small_helpers():
    m = np.zeros((6, 8), bool)
    assert masks.is_empty(m) and masks.bbox(m) is None and masks.coverage(m) == 0.0
    m[2:4, 3:7] = True
    assert not masks.is_empty(m)
    assert masks.bbox(m) == (2, 4, 3, 7)
    assert masks.coverage(m) == pytest.approx(8 / 48)
    inv = masks.invert(m)
    assert inv.dtype == np.uint8 and (inv[m] == 0).all() and (inv[~m] == 255).all()
    np.testing.assert_array_equal(masks.invert(inv), masks.to_uint8(m))


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="2-D"):
        masks.grow(np.zeros((4, 4, 3), np.uint8), 1)
    with pytest.raises(ValueError, match=">= 0"):
        masks.shrink(np.zeros((4, 4), np.uint8), -1)


def test_large_masks_keep_their_shape():
    # 2048 px masks go through the vectorised transforms (a pixel loop would hit the timeout).
    m = np.zeros((2048, 2048), np.uint8)
    m[300:1700, 500:1500] = 255
    m[::97, ::89] = 255
    grown, shrunk, soft = masks.grow(m, 8), masks.shrink(m, 8), masks.feather(m, 8)
    assert grown[292, 1000] == 255 and grown[291, 1000] == 0  # 8 px out from the box's top
    assert shrunk[308, 1000] == 255 and shrunk[307, 1000] == 0
    assert (soft[m == 0] == 0).all() and soft[1000, 1000] == 1.0
