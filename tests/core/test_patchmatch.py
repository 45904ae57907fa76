from __future__ import annotations

import numpy as np
import pytest

from core.algorithms.patchmatch import fill
from core.jobs import JobError


def drive(gen):
    """Run a fill generator to the end: (result, list of yielded steps)."""
    steps = []
    while True:
        try:
            steps.append(next(gen))
        except StopIteration as done:
            return done.value, steps


def stripes(h: int, w: int, period: int = 10) -> np.ndarray:
    y, x = np.mgrid[:h, :w]
    a = ((x + y // 2) % period) < period // 2
    return np.stack([a * 190 + 30, 200 - a * 120, (y // period % 2) * 90 + 70], -1).astype(np.uint8)


def checker(h: int, w: int, period: int = 8) -> np.ndarray:
    y, x = np.mgrid[:h, :w]
    a = ((x // (period // 2) + y // (period // 2)) % 2).astype(np.int32)
    return np.stack([a * 200 + 30, a * 90 + 80, 230 - a * 170], -1).astype(np.uint8)


def diffusion_fill(img: np.ndarray, hole: np.ndarray, iters: int = 300) -> np.ndarray:
    """The smooth (blur-like) fill that texture synthesis must beat by far."""
    out = img.astype(np.float64)
    out[hole] = img[~hole].mean(axis=0)
    for _ in range(iters):
        p = np.pad(out, ((1, 1), (1, 1), (0, 0)), mode="edge")
        avg = (p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:]) / 4
        out[hole] = avg[hole]
    return out


def hole_error(a: np.ndarray, b: np.ndarray, hole: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b)[hole].mean())


@pytest.mark.parametrize("make,box", [
    (stripes, (30, 58, 26, 56)),
    (checker, (40, 70, 20, 44)),
    (stripes, (0, 24, 70, 96)),  # touching the top and right edges
])
def test_periodic_texture_is_continued_not_blurred(make, box):
    img = make(80, 96)
    hole = np.zeros(img.shape[:2], bool)
    y0, y1, x0, x1 = box
    hole[y0:y1, x0:x1] = True
    out, _ = drive(fill(img, hole, rng=np.random.default_rng(0)))
    err = hole_error(out, img, hole)
    mean_err = hole_error(np.broadcast_to(img[~hole].mean(axis=0), img.shape), img, hole)
    blur_err = hole_error(diffusion_fill(img, hole), img, hole)
    assert err < 0.15 * mean_err and err < 0.15 * blur_err, (err, mean_err, blur_err)
    np.testing.assert_array_equal(out[~hole], img[~hole])
    assert out.dtype == np.uint8 and out.shape == img.shape


def test_same_seed_same_pixels_and_progress_is_monotonic():
    rng = np.random.default_rng(5)
    img = (rng.random((60, 70, 3)) * 255).astype(np.uint8)
    hole = np.zeros((60, 70), np.uint8)
    hole[20:40, 25:50] = 255
    calls = []
    a, steps = drive(fill(img, hole, rng=np.random.default_rng(1), check=lambda: calls.append(1)))
    b, _ = drive(fill(img, hole, rng=np.random.default_rng(1)))
    np.testing.assert_array_equal(a, b)
    total = steps[0][1]
    assert [s for s, _, _ in steps] == list(range(1, total + 1))
    assert all(t == total for _, t, _ in steps) and all(isinstance(m, str) for _, _, m in steps)
    assert len(calls) >= total  # at least once a round, and more often on large fills


def test_check_stops_the_fill():
    img = checker(64, 64)
    hole = np.zeros((64, 64), bool)
    hole[20:44, 20:44] = True

    class Stop(Exception):
        pass

    count = [0]

    def check():
        count[0] += 1
        if count[0] == 2:
            raise Stop

    gen = fill(img, hole, rng=np.random.default_rng(0), check=check)
    with pytest.raises(Stop):
        drive(gen)
    assert count[0] == 2


def test_empty_mask_returns_the_image_unchanged():
    img = checker(32, 40)
    out, steps = drive(fill(img, np.zeros((32, 40), bool), rng=np.random.default_rng(0)))
    assert steps == [] and out is not img
    np.testing.assert_array_equal(out, img)


def test_nothing_to_copy_from_is_a_job_error():
    img = checker(32, 32)
    with pytest.raises(JobError, match="whole image"):
        drive(fill(img, np.ones((32, 32), bool), rng=np.random.default_rng(0)))
    hole = np.ones((32, 32), bool)
    hole[:3] = False  # a strip thinner than a 7x7 patch
    with pytest.raises(JobError, match="patch"):
        drive(fill(img, hole, rng=np.random.default_rng(0)))


def test_bad_arguments_are_job_errors():
    img = checker(16, 16)
    hole = np.zeros((16, 16), bool)
    hole[5:8, 5:8] = True
    with pytest.raises(JobError, match="odd"):
        drive(fill(img, hole, rng=np.random.default_rng(0), patch_size=6))
    with pytest.raises(JobError, match="16x8"):
        drive(fill(img, hole[:8], rng=np.random.default_rng(0)))
    with pytest.raises(JobError, match="uint8"):
        drive(fill(img.astype(np.float32), hole, rng=np.random.default_rng(0)))


@pytest.mark.parametrize("patch_size", [3, 9])
def test_thin_strokes_odd_sizes_and_patch_sizes(patch_size):
    rng = np.random.default_rng(3)
    img = (rng.random((37, 53, 3)) * 255).astype(np.uint8)
    hole = np.zeros((37, 53), bool)
    hole[10, 5:45] = True  # one-pixel line
    hole[15:35, 30:32] = True
    hole[36, 0] = True  # a corner pixel
    out, steps = drive(fill(img, hole, rng=np.random.default_rng(0), patch_size=patch_size,
                            iterations=2))
    np.testing.assert_array_equal(out[~hole], img[~hole])
    assert steps and steps[-1][0] == steps[-1][1]


def test_preview_gets_full_size_images():
    img = stripes(96, 96)
    hole = np.zeros((96, 96), bool)
    hole[30:70, 30:70] = True
    seen = []
    drive(fill(img, hole, rng=np.random.default_rng(0), preview=seen.append))
    assert seen
    for p in seen:
        assert p.shape == img.shape and p.dtype == np.uint8
        np.testing.assert_array_equal(p[~hole], img[~hole])


def _structure(out: np.ndarray, hole: np.ndarray) -> tuple[float, float]:
    """Mean |d/dx| and |d/dy| of the fill's luminance inside the hole (its edge left out)."""
    lum = out.astype(np.float64).mean(axis=2)
    inner = hole.copy()
    for axis in (0, 1):
        inner &= np.roll(hole, 3, axis) & np.roll(hole, -3, axis)
    return (float(np.abs(np.diff(lum, axis=1))[inner[:, 1:]].mean()),
            float(np.abs(np.diff(lum, axis=0))[inner[1:]].mean()))


def test_the_source_mask_decides_what_is_copied():
    y, x = np.mgrid[:96, :96]
    lines = np.where(y < 48, (y // 3) % 2, (x // 3) % 2)  # horizontal above, vertical below
    img = np.stack([lines * 180 + 40] * 3, -1).astype(np.uint8)
    hole = np.zeros((96, 96), bool)
    hole[14:34, 36:56] = True  # among the horizontal lines
    source = np.zeros((96, 96), bool)
    source[52:, :] = True  # the vertical lines only
    free, _ = drive(fill(img, hole, rng=np.random.default_rng(0)))
    told, _ = drive(fill(img, hole, rng=np.random.default_rng(0), source=source))
    gx, gy = _structure(free, hole)
    assert gy > 3 * gx  # copied from around: horizontal lines
    gx, gy = _structure(told, hole)
    assert gx > 3 * gy  # copied from the source area only: vertical lines
    np.testing.assert_array_equal(told[~hole], img[~hole])


def test_the_context_bounds_where_the_fill_copies_from():
    rng = np.random.default_rng(2)
    img = np.repeat(rng.integers(90, 140, (80, 120, 1)), 3, axis=2).astype(np.uint8)
    img[:, 100:] = (250, 10, 10)  # red, more than 20 px from the hole
    hole = np.zeros((80, 120), bool)
    hole[30:50, 30:50] = True
    out, _ = drive(fill(img, hole, rng=np.random.default_rng(0), context=20))
    red = out[..., 0].astype(int) - out[..., 1] > 60
    assert not red[hole].any()
    source = np.zeros((80, 120), bool)
    source[:, 100:] = True  # the only source lies outside the context
    with pytest.raises(JobError, match="within 20 pixels.*context.*source"):
        drive(fill(img, hole, rng=np.random.default_rng(0), context=20, source=source))
    with pytest.raises(JobError, match="context"):
        drive(fill(img, hole, rng=np.random.default_rng(0), context=-1))
    with pytest.raises(JobError, match="source mask is 120x40"):
        drive(fill(img, hole, rng=np.random.default_rng(0), source=source[:40]))


def test_the_blend_matches_a_differently_lit_source_to_the_surround():
    import core.algorithms.patchmatch as pm

    y, x = np.mgrid[:80, :128]
    texture = 40 * ((x // 4 + y // 4) % 2)
    img = np.stack([texture + np.where(x < 64, 50, 150)] * 3, -1).astype(np.uint8)
    hole = np.zeros((80, 128), bool)
    hole[28:52, 20:44] = True  # in the dark half
    source = np.zeros((80, 128), bool)
    source[:, 72:] = True  # the light half only

    def filled(blend: bool) -> np.ndarray:
        pm.BLEND = blend
        try:
            out, _ = drive(fill(img, hole, rng=np.random.default_rng(0), source=source))
        finally:
            pm.BLEND = True
        return out[hole].astype(float)

    truth = img[hole].astype(float)
    pasted, blended = filled(False), filled(True)
    assert abs(pasted.mean() - truth.mean()) > 80  # copied with the light half's brightness
    assert abs(blended.mean() - truth.mean()) < 4  # lit as its surround
    assert blended.std() > 0.6 * truth.std()  # and still textured, not smoothed away


def test_large_holes_are_filled_on_upsampled_scales(monkeypatch):
    import core.algorithms.patchmatch as pm

    monkeypatch.setattr(pm, "SEARCH_MAX", 150)  # the two finest scales are not searched
    img = stripes(96, 112)
    hole = np.zeros((96, 112), bool)
    hole[30:62, 40:76] = True
    calls = []
    out, steps = drive(fill(img, hole, rng=np.random.default_rng(0),
                            check=lambda: calls.append(1)))
    again, _ = drive(fill(img, hole, rng=np.random.default_rng(0)))
    np.testing.assert_array_equal(out, again)
    np.testing.assert_array_equal(out[~hole], img[~hole])
    assert any("full detail" in m for _, _, m in steps)
    assert [s for s, _, _ in steps] == list(range(1, steps[0][1] + 1)) and len(calls) > 10
    err = hole_error(out, img, hole)
    assert err < 0.5 * hole_error(diffusion_fill(img, hole), img, hole)
