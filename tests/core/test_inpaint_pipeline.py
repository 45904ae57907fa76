from __future__ import annotations

import dataclasses

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
    with pytest.raises(JobError, match="covers the whole picture"):
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
    ({"guidance": -0.1}, "Guidance must lie from 0 to 1"),
    ({"attribute": "smiling"}, "name=class \\(smiling=smiling\\)"),
    ({"attribute": "smiling=smiling"}, "needs the diffusion engine"),
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


# --------------------------------------------------------------------------- diffusion engine


@pytest.fixture
def diffusion_models(tmp_path, monkeypatch):
    from tests import diffusion_models

    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "no-shipped-weights"))
    return diffusion_models.install(tmp_path / "home")


def face(size: int = 48) -> np.ndarray:
    from core.data.worlds import get_world

    return get_world("faces").render(5, size=size).image


@pytest.mark.parametrize("model", ["diffusion_faces", "tiny_pixel_diffusion"])
def test_diffusion_fills_only_the_mask_with_seeded_variations(diffusion_models, model):
    img, mask = face(), box(48, 48, 28, 40, 14, 34)
    spec = spec_for(img, mask, engine="diffusion", model=model, steps=6, variations=3, seed=4,
                    resample=1)
    seen: list[Progress] = []
    res = run(spec, seen.append)
    hole = mask > 0
    assert len(res.images) == 3
    for out in res.images:
        np.testing.assert_array_equal(out[~hole], img[~hole])
        assert (out[hole] != img[hole]).mean() > 0.5
    if model == "tiny_pixel_diffusion":  # (an untrained decoder draws nearly the same for all)
        assert not np.array_equal(res.images[0], res.images[1])  # variations differ
    again = run(spec)
    assert all(np.array_equal(a, b) for a, b in zip(res.images, again.images, strict=True))
    previews = [p.preview for p in seen if p.preview is not None]
    assert len(previews) == 6 and previews[-1].shape == img.shape
    assert set(res.info["models"]) >= {model} and res.info["steps"] == 6


def test_diffusion_resampling_strength_and_a_full_mask(diffusion_models):
    img = face()
    full = np.full((48, 48), 255, np.uint8)
    with pytest.raises(JobError, match="covers the whole picture"):
        run(spec_for(img, full))  # PatchMatch has nothing to copy from
    out = run(spec_for(img, full, engine="diffusion", steps=4)).images[0]
    assert (out != img).mean() > 0.9  # diffusion draws a whole new picture
    mask = box(48, 48, 10, 30, 10, 30)
    seen: list[Progress] = []
    run(spec_for(img, mask, engine="diffusion", steps=8, jump=2, resample=3), seen.append)
    assert seen[-1].total == 8 + 3 * 2 * 2  # jump points after 2, 4, 6 steps, twice each
    pixel = {"engine": "diffusion", "model": "tiny_pixel_diffusion", "steps": 8}
    ddpm = run(spec_for(img, mask, sampler="ddpm", seed=1, **pixel))
    assert ddpm.info["sampler"] == "ddpm"
    assert np.array_equal(ddpm.images[0], run(spec_for(img, mask, sampler="ddpm", seed=1,
                                                       **pixel)).images[0])
    with pytest.raises(JobError, match="Unknown sampler 'euler'"):
        run(spec_for(img, mask, sampler="euler", **pixel))
    weak = run(spec_for(img, mask, strength=0.2, **pixel)).images[0]
    strong = run(spec_for(img, mask, **pixel)).images[0]
    hole = mask > 0
    err = [np.abs(o.astype(float) - img)[hole].mean() for o in (weak, strong)]
    assert err[0] < err[1]  # a low strength keeps more of what was there


def test_diffusion_refuses_missing_or_mismatched_models(diffusion_models, tmp_path):
    import torch

    from core.nets.autoencoder import Autoencoder, AutoencoderConfig
    from core.weights import ModelCard, read_card, save_model
    from tests.diffusion_models import AE_NAME

    img, mask = face(), box(48, 48, 10, 20, 10, 20)
    with pytest.raises(JobError, match="No diffusion model called 'nope'.*diffusion_faces"):
        run(spec_for(img, mask, engine="diffusion", model="nope"))
    card = read_card(diffusion_models[AE_NAME])
    torch.manual_seed(1)
    other = Autoencoder(AutoencoderConfig(**card.config))
    save_model(diffusion_models[AE_NAME].parent, AE_NAME, other,
               ModelCard(name=AE_NAME, family="autoencoder", architecture="autoencoder",
                         config=card.config))
    with pytest.raises(JobError, match="latent space of another tiny_ae_faces"):
        run(spec_for(img, mask, engine="diffusion"))


def test_asking_for_an_attribute_needs_the_worlds_judge_and_one_it_knows(diffusion_models,
                                                                          tmp_path):
    from tests.shipped_weights import copy_judges

    img, mask = face(), box(48, 48, 28, 40, 14, 34)
    ask = {"engine": "diffusion", "steps": 3, "resample": 1, "attribute": "smiling=smiling"}
    with pytest.raises(JobError, match="needs a judge of what diffusion_faces was trained on "
                                       "\\(faces\\), and none is installed"):
        run(spec_for(img, mask, **ask))
    copy_judges(tmp_path / "no-shipped-weights")  # EASEL_WEIGHTS of the fixture
    with pytest.raises(JobError, match="no attribute 'smiling=grinning'; it knows: "
                                       "smiling=neutral, smiling=smiling, glasses=none"):
        run(spec_for(img, mask, **{**ask, "attribute": "smiling=grinning"}))
    res = run(spec_for(img, mask, **ask))
    assert res.info["attribute"] == "smiling=smiling" and "judge_faces" in res.info["models"]
    np.testing.assert_array_equal(res.images[0][mask == 0], img[mask == 0])


def test_what_can_be_asked_of_a_model_comes_from_its_world():
    from core.catalog import world_attributes

    faces = world_attributes("faces world")
    assert faces[:2] == ["smiling=neutral", "smiling=smiling"] and "hat=hat" in faces
    assert all(a.startswith("background=") for a in world_attributes("scenes world"))
    assert world_attributes("my sketches folder") == []


@pytest.mark.slow
def test_asking_the_shipped_faces_model_for_a_smile_draws_one():
    """The acceptance case: a neutral face's mouth masked, filled by the shipped models with
    and without asking for a smile, read by the shipped faces judge."""
    from core.data.worlds import get_world
    from core.judges import load_judge, outputs

    judge = load_judge("faces")
    smiling = judge.config.heads["smiling"].index("smiling")
    p_smile = []
    for attribute in ("", "smiling=smiling"):
        fills = []
        for seed in (2000000004, 2000000023):
            img = get_world("faces").render(seed, smiling="neutral").image
            mask = box(64, 64, 39, 49, 23, 41)
            fills += run(spec_for(img, mask, engine="diffusion", model="diffusion_faces",
                                  steps=10, resample=1, variations=4, seed=7,
                                  attribute=attribute)).images
        p_smile.append(outputs(judge, np.stack(fills))["smiling"].softmax(-1)[:, smiling])
    assert p_smile[0].mean() < 0.2 and p_smile[1].mean() > 0.6


def test_a_picture_far_from_the_models_world_gets_a_note(tmp_path, monkeypatch):
    from tests import diffusion_models

    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "none"))
    mask = box(48, 48, 20, 30, 20, 30)
    for threshold, noted in ((1e-9, True), (1e9, False)):
        home = tmp_path / f"home{threshold}"
        monkeypatch.setenv("EASEL_HOME", str(home))
        diffusion_models.install(home, metrics={"ood_threshold": threshold})
        notes = run(spec_for(noise(48, 48), mask, engine="diffusion", steps=2)).info["notes"]
        assert any("far from what diffusion_faces was trained on (faces" in n
                   for n in notes) == noted


def test_a_fill_larger_than_the_models_frame_goes_through_the_worlds_upscaler(
        diffusion_models, tmp_path):
    from core.nets.upscale import UpscaleConfig, Upscaler
    from core.weights import ModelCard, save_model

    img, mask = face(), box(48, 48, 28, 40, 14, 34)  # a 48 px square for a 32 px model
    spec = spec_for(img, mask, engine="diffusion", steps=3)
    assert "scaled up" in run(spec).info["notes"][0]
    cfg = UpscaleConfig(scale=4, channels=4, blocks=1)
    save_model(tmp_path / "home" / "models" / "upscale", "up_faces", Upscaler(cfg).eval(),
               ModelCard(name="up_faces", family="upscale", architecture="upscale",
                         config=dataclasses.asdict(cfg), data="faces, 128 px"))
    res = run(spec)
    assert "upscaled with up_faces" in res.info["notes"][0] and "up_faces" in res.info["models"]
    hole = mask > 0
    np.testing.assert_array_equal(res.images[0][~hole], img[~hole])


def test_outpaint_extends_the_canvas_and_keeps_the_picture(diffusion_models):
    from core.pipelines.inpaint import OutpaintSpec

    img = face(40)
    rgba = np.dstack([img, np.full((40, 40), 200, np.uint8)])
    for engine in ("patchmatch", "diffusion"):
        spec = OutpaintSpec(image=ImageRef.of(rgba), engine=engine, steps=3, left=8, top=4,
                            right=12)
        res = run_job(spec, Context.for_spec(spec, device="cpu"))
        (out,) = res.images
        assert out.shape == (44, 60, 3) and res.info["size"] == [60, 44]
        np.testing.assert_array_equal(out[4:, 8:48], img)
        assert res.alpha.shape == (44, 60) and (res.alpha[4:, 8:48] == 200).all()
        assert (res.alpha[:4] == 255).all()
    with pytest.raises(JobError, match="at least one side"):
        run_job(OutpaintSpec(image=ImageRef.of(img)), Context.for_spec(OutpaintSpec()))
    with pytest.raises(JobError, match="Extend left by 0 to"):
        bad = OutpaintSpec(image=ImageRef.of(img), left=-3)
        run_job(bad, Context.for_spec(bad))


def test_cancelling_a_diffusion_fill_stops_within_a_step(diffusion_models):
    spec = spec_for(face(), box(48, 48, 10, 30, 10, 30), engine="diffusion", steps=50)
    ctx = Context.for_spec(spec, device="cpu")
    seen = []

    def progress(p):
        seen.append(p)
        if len(seen) == 3:
            ctx.cancel_event.set()

    with pytest.raises(Cancelled):
        run_job(spec, ctx, progress)
    assert len(seen) == 3


# A cancel must be seen promptly however large the picture: between two ctx.check() calls a
# PatchMatch fill reads at most this many patch pixels (about a few tenths of a second of work).
MAX_READS_BETWEEN_CHECKS = 10_000_000


class CountingContext(Context):
    """A context whose check() records how many patch pixels were read since the last one."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx.device, ctx.generator, ctx.rng, ctx.models, ctx.cancel_event)
        self.reads = 0
        self.intervals: list[int] = []

    def check(self) -> None:
        self.intervals.append(self.reads)
        self.reads = 0
        super().check()


def test_patchmatch_checks_for_cancel_after_bounded_work_at_the_pixel_limit(monkeypatch):
    import torch

    from core.imageio import max_pixels_setting

    # A limit the test can fill in seconds; the bound below does not depend on it.
    monkeypatch.setenv("EASEL_MAX_PIXELS", str(9_000_000))
    side = int(max_pixels_setting() ** 0.5)
    img = noise(side, side)
    mask = np.zeros((side, side), np.uint8)
    mask[side // 8::side // 4, side // 16:-side // 16] = 255  # four long thin strokes
    spec = spec_for(img, mask, seed=0, iterations=1)
    ctx = CountingContext(Context.for_spec(spec, device="cpu"))
    select = torch.index_select

    def counting_select(source, dim, index, **kw):
        ctx.reads += index.numel()
        return select(source, dim, index, **kw)

    def cancel_after_a_round(p: Progress) -> None:
        if p.step >= 1 and p.message.startswith("scale"):  # searched twice and voted once
            ctx.cancel_event.set()

    monkeypatch.setattr(torch, "index_select", counting_select)
    with pytest.raises(Cancelled):
        run_job(spec, ctx, cancel_after_a_round)
    total = sum(ctx.intervals) + ctx.reads
    assert total > 5 * MAX_READS_BETWEEN_CHECKS, total  # big enough for the bound to matter
    assert max(ctx.intervals) <= MAX_READS_BETWEEN_CHECKS, (max(ctx.intervals), total)


def test_diffusion_steps_check_for_cancel_in_proportion_to_the_picture(diffusion_models):
    # Each denoising step shows a preview of the whole picture; on a large one that is the
    # step's biggest cost, so a cancel must be seen within it, every megapixel or two.
    side = 3000
    img = noise(side, side)
    spec = spec_for(img, box(side, side, 1400, 1600, 1400, 1600), engine="diffusion",
                    model="tiny_pixel_diffusion", steps=2, resample=1)
    ctx = CountingContext(Context.for_spec(spec, device="cpu"))
    checks_before_step: list[int] = []
    res = run_job(spec, ctx, lambda p: checks_before_step.append(len(ctx.intervals)))
    per_step = np.diff(checks_before_step[1:])  # checks between two denoising steps
    assert res.images[0].shape == img.shape
    assert per_step.min() >= side * side // (2 << 20), checks_before_step


def test_context_and_source_reach_the_fill_and_round_trip():
    from core.jobs import spec_from_dict

    y, x = np.mgrid[:96, :96]
    img = np.stack([np.where(y < 48, (y // 3) % 2, (x // 3) % 2) * 180 + 40] * 3,
                   -1).astype(np.uint8)
    mask = box(96, 96, 14, 34, 36, 56)  # among horizontal lines
    source = box(96, 96, 52, 96, 0, 96)  # vertical lines only
    spec = spec_for(img, mask, source=ImageRef.of(source, embed=True), context=64)
    out = run(spec).images[0]
    hole = mask > 0
    lum = out.astype(float).mean(axis=2)
    inner = np.zeros_like(hole)
    inner[18:30, 40:52] = True
    gx = np.abs(np.diff(lum, axis=1))[inner[:, 1:]].mean()
    gy = np.abs(np.diff(lum, axis=0))[inner[1:]].mean()
    assert gx > 3 * gy  # copied from the source area
    np.testing.assert_array_equal(out[~hole], img[~hole])
    again = spec_from_dict(spec.to_dict())
    assert again.context == 64
    np.testing.assert_array_equal(again.source.array(), source)


@pytest.mark.parametrize("changes,message", [
    ({"context": -1}, "The context must be from 0 to 16384 pixels"),
    ({"context": 2.5}, "context must be a whole number"),
    ({"source": np.zeros((10, 10), np.uint8)}, "source mask is 10x10.*32x32"),
    ({"source": box(32, 32, 10, 20, 10, 20)}, "wholly inside the mask"),
    ({"source": box(32, 32, 0, 5, 0, 5), "engine": "diffusion"}, "PatchMatch setting"),
])
def test_bad_context_or_source_are_job_errors(changes, message):
    img = checker(32, 32)
    if "source" in changes:
        changes = {**changes, "source": ImageRef.of(changes["source"], embed=True)}
    with pytest.raises(JobError, match=message):
        run(spec_for(img, box(32, 32, 10, 20, 10, 20), **changes))
