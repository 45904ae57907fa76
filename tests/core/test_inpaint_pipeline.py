from __future__ import annotations

import numpy as np
import pytest

from core.jobs import Cancelled, Context, ImageRef, JobError, Progress, run_job
from core.pipelines.inpaint import InpaintSpec, composite


def checker(h: int, w: int, period: int = 10) -> np.ndarray:
    y, x = np.mgrid[:h, :w]
    a = ((x // (period // 2) + y // (period // 2)) % 2).astype(np.int32)
    return np.stack([a * 190 + 40, 220 - a * 150, a * 60 + 100], -1).astype(np.uint8)


def noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def box(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[y0:y1, x0:x1] = 255
    return m


def spec_for(image: np.ndarray, mask: np.ndarray | None, **kw) -> InpaintSpec:
    return InpaintSpec(image=ImageRef.of(image),
                       mask=None if mask is None else ImageRef.of(mask, embed=True), **kw)


def run(spec: InpaintSpec, on_progress=None):
    return run_job(spec, Context.for_spec(spec, device="cpu"), on_progress)


def test_fill_keeps_unmasked_pixels_and_continues_the_texture():
    img = checker(72, 80)
    mask = box(72, 80, 25, 50, 30, 55)
    res = run(spec_for(img, mask, seed=3))
    (out,) = res.images
    hole = mask > 0
    assert out.dtype == np.uint8 and out.shape == img.shape
    np.testing.assert_array_equal(out[~hole], img[~hole])
    err = np.abs(out.astype(float) - img)[hole].mean()
    mean_err = np.abs(img[~hole].mean(axis=0) - img[hole]).mean()
    assert err < 0.15 * mean_err
    assert res.info["engine"] == "patchmatch" and res.info["filled_pixels"] == hole.sum()
    assert res.spec.seed == 3 and res.alpha is None


def test_grow_and_feather_never_touch_pixels_outside_the_grown_mask():
    img = noise(60, 64, seed=1)
    mask = box(60, 64, 20, 36, 22, 40)
    out = run(spec_for(img, mask, grow=3, feather=4)).images[0]
    grown = np.zeros((60, 64), bool)
    grown[17:39, 19:43] = True  # the box grown by a radius-3 disc lies inside this
    np.testing.assert_array_equal(out[~grown], img[~grown])
    assert (out[20:36, 22:40] != img[20:36, 22:40]).any()


def test_composite_feathers_only_inside_the_hole():
    original = np.full((30, 30, 3), 10, np.uint8)
    filled = np.full((30, 30, 3), 250, np.uint8)
    hole = np.zeros((30, 30), bool)
    hole[5:25, 5:25] = True
    out = composite(original, filled, hole, 4)
    np.testing.assert_array_equal(out[~hole], original[~hole])
    assert out[15, 15, 0] == 250  # deep inside: the fill
    assert 10 < out[5, 15, 0] < 250  # on the edge: a blend
    np.testing.assert_array_equal(composite(original, filled, hole, 0)[hole], filled[hole])


def test_same_spec_same_pixels():
    img = noise(48, 56, seed=2)
    mask = box(48, 56, 10, 30, 15, 40)
    spec = spec_for(img, mask, seed=11, iterations=2)
    a = run(spec).images[0]
    b = run(spec).images[0]
    np.testing.assert_array_equal(a, b)


def test_progress_is_monotonic_reaches_total_and_carries_previews():
    img = checker(96, 96)
    mask = box(96, 96, 30, 70, 30, 70)
    seen: list[Progress] = []
    run(spec_for(img, mask), seen.append)
    assert len(seen) >= 3
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions)
    assert seen[-1].step == seen[-1].total and seen[-1].fraction == 1.0
    steps = [p.step for p in seen[1:]]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    previews = [p.preview for p in seen if p.preview is not None]
    assert previews and all(p.shape == img.shape and p.dtype == np.uint8 for p in previews)


def test_cancel_takes_effect_within_one_step():
    img = checker(96, 96)
    mask = box(96, 96, 30, 70, 30, 70)
    spec = spec_for(img, mask)
    ctx = Context.for_spec(spec, device="cpu")
    seen: list[Progress] = []

    def on_progress(p: Progress) -> None:
        seen.append(p)
        if p.step == 2:
            ctx.cancel_event.set()

    with pytest.raises(Cancelled):
        run_job(spec, ctx, on_progress)
    assert seen[-1].step == 2 and seen[-1].step < seen[-1].total


def test_empty_full_and_mismatched_masks_are_job_errors():
    img = checker(32, 40)
    with pytest.raises(JobError, match="^The mask is empty: paint the area to fill first.$"):
        run(spec_for(img, np.zeros((32, 40), np.uint8)))
    with pytest.raises(JobError, match="mask is empty"):
        run(spec_for(img, None))
    with pytest.raises(JobError, match="whole image"):
        run(spec_for(img, np.full((32, 40), 255, np.uint8)))
    with pytest.raises(JobError, match="30x20.*40x32"):
        run(spec_for(img, np.full((20, 30), 255, np.uint8)))
    with pytest.raises(JobError, match="2-D"):
        run(spec_for(img, np.full((32, 40, 3), 255, np.uint8)))


@pytest.mark.parametrize("changes,message", [
    ({"engine": "diffusion-xl"}, "Unknown inpaint engine"),
    ({"patch_size": 6}, "odd number from 3 to 15"),
    ({"patch_size": 17}, "odd number from 3 to 15"),
    ({"patch_size": 1}, "odd number from 3 to 15"),
    ({"iterations": 0}, "Iterations"),
    ({"grow": -1}, "Grow"),
    ({"feather": 7.5}, "whole number"),
])
def test_bad_settings_are_job_errors(changes, message):
    img = checker(32, 32)
    with pytest.raises(JobError, match=message):
        run(spec_for(img, box(32, 32, 10, 20, 10, 20), **changes))


def test_missing_or_malformed_image_is_a_job_error():
    with pytest.raises(JobError, match="No image"):
        run(InpaintSpec(mask=ImageRef.of(box(8, 8, 2, 4, 2, 4), embed=True)))
    with pytest.raises(JobError, match="8-bit RGB"):
        run(spec_for(np.zeros((32, 32), np.uint8), box(32, 32, 5, 9, 5, 9)))


def test_rgba_input_keeps_its_alpha():
    rgba = np.concatenate([checker(40, 40), np.full((40, 40, 1), 200, np.uint8)], axis=2)
    res = run(spec_for(rgba, box(40, 40, 12, 24, 12, 24)))
    assert res.images[0].shape == (40, 40, 3)
    np.testing.assert_array_equal(res.alpha, rgba[..., 3])


def test_the_fill_runs_on_one_thread_and_restores_the_count():
    import torch

    img = (np.random.default_rng(0).random((48, 48, 3)) * 255).astype(np.uint8)
    mask = np.zeros((48, 48), np.uint8)
    mask[20:28, 20:28] = 255
    spec = InpaintSpec(image=ImageRef.of(img), mask=ImageRef.of(mask, embed=True))
    before = torch.get_num_threads()
    during: list[int] = []
    run_job(spec, Context.for_spec(spec, device="cpu"),
            lambda p: during.append(torch.get_num_threads()))
    assert set(during[1:]) == {1}  # busy machines slow multi-threaded gathers badly
    assert torch.get_num_threads() == before
