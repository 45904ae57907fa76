"""Latent pipelines, direction maths and ``easel latent`` on tiny random-weight models."""

from __future__ import annotations

import json

import numpy as np
import pytest
from latent_models import DCGAN_NAME, VAE_NAME, install
from PIL import Image

from core import cli, imageio
from core.algorithms import directions as dirs
from core.jobs import Context, ImageRef, JobError, JobSpec, run_job
from core.pipelines import latent
from core.pipelines.latent import (
    LatentDirectionSpec,
    LatentEditSpec,
    LatentEncodeSpec,
    LatentInfoSpec,
    LatentSampleSpec,
    LatentWalkSpec,
)


@pytest.fixture(autouse=True)
def models(tmp_path, monkeypatch):
    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "shipped"))
    monkeypatch.setattr(latent, "DIRECTION_SAMPLES", 200)
    return install(tmp_path / "home")


def run(spec: JobSpec, progress: list | None = None):
    return run_job(spec, Context.for_spec(spec, "cpu"), progress.append if progress is not None
                   else None)


def sample(model: str = VAE_NAME, count: int = 6, seed: int = 1) -> list[list[float]]:
    return run(LatentSampleSpec(model=model, count=count, seed=seed)).info["latents"]


# --------------------------------------------------------------------------- maths


def test_slerp_keeps_the_norm_and_ends_at_the_endpoints():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=64), rng.normal(size=64)
    b *= np.linalg.norm(a) / np.linalg.norm(b)
    frames = dirs.walk(a, b, 7, "slerp")
    np.testing.assert_allclose(frames[0], a)
    np.testing.assert_allclose(frames[-1], b)
    np.testing.assert_allclose(np.linalg.norm(frames, axis=1), np.linalg.norm(a), rtol=1e-9)
    mid_linear = np.linalg.norm(dirs.walk(a, b, 3, "linear")[1])
    assert mid_linear < np.linalg.norm(a) * 0.9  # why slerp exists: lerp sags in the middle


@pytest.mark.parametrize("method", dirs.METHODS)
def test_direction_recovers_a_planted_axis(method):
    rng = np.random.default_rng(1)
    z = rng.normal(size=(400, 16))
    label = z[:, 3] > 0.2
    d = dirs.direction(z[label], z[~label], "axis3", method)
    assert abs(d.vector[3]) > 0.9 and np.isclose(np.linalg.norm(d.vector), 1)
    moved = dirs.apply(z[~label], {"axis3": d}, {"axis3": 1.0})
    # one class gap moves the negatives' mean onto the positives' mean along the direction
    assert np.isclose((moved.mean(0) - z[label].mean(0)) @ d.vector, 0, atol=1e-9)


def test_direction_refuses_small_sets_with_the_minimum():
    z = np.zeros((3, 4))
    with pytest.raises(dirs.DirectionError, match=f"at least {dirs.MIN_SET}"):
        dirs.direction(z, z + 1, "few")


def test_directions_file_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    dset = dirs.DirectionSet("m", "abc", attributes_done=True)
    dset.add(dirs.direction(rng.normal(1, 1, (8, 4)), rng.normal(0, 1, (8, 4)), "x"))
    path = dirs.save_directions(tmp_path / "m.directions.json", dset)
    back = dirs.load_directions(path)
    assert back.names() == ["x"] and back.attributes_done
    np.testing.assert_array_equal(back.get("mean")["x"].vector, dset.get("mean")["x"].vector)
    path.write_text("{not json")
    with pytest.raises(dirs.DirectionError, match="Cannot read"):
        dirs.load_directions(path)


# --------------------------------------------------------------------------- pipelines


def test_info_lists_models_and_computes_directions_once(models):
    info = run(LatentInfoSpec(model=VAE_NAME)).info
    assert {m["name"] for m in info["models"]} == {VAE_NAME, DCGAN_NAME}
    assert info["has_encoder"] and info["size"] == 16 and info["dim"] == 8
    assert set(info["directions"]) <= set(latent.direction_names())
    saved = latent.user_directions_path(latent.open_model(models[VAE_NAME]))
    stamp = saved.stat().st_mtime_ns
    run(LatentInfoSpec(model=VAE_NAME))
    assert saved.stat().st_mtime_ns == stamp  # not recomputed
    # the weights' own listing ignores directions files
    from core.weights import list_models
    assert [m.name for m in list_models("vae")] == [VAE_NAME]


def test_sample_is_seeded_and_returns_its_latents():
    a = run(LatentSampleSpec(model=VAE_NAME, count=4, seed=5))
    b = run(LatentSampleSpec(model=VAE_NAME, count=4, seed=5))
    assert len(a.images) == 4 and a.images[0].shape == (16, 16, 3)
    assert a.info["latents"] == b.info["latents"]
    assert a.info["prior"] == "Gaussian fitted to encoded faces"  # a VAE's aggregate posterior
    assert run(LatentSampleSpec(model=DCGAN_NAME)).info["prior"] == "N(0, I)"
    np.testing.assert_array_equal(a.images[2], b.images[2])


def test_edit_is_a_minus_b_plus_c_of_slot_means_and_survives_json():
    z = sample()
    spec = LatentEditSpec(model=VAE_NAME, a=z[:2], b=z[2:4], c=z[4:6], upscale=False)
    back = LatentEditSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert back == spec
    got = np.array(run(back).info["latent"])
    zz = np.array(z)
    np.testing.assert_allclose(got, zz[:2].mean(0) - zz[2:4].mean(0) + zz[4:6].mean(0))
    alone = run(LatentEditSpec(model=VAE_NAME, a=z[:1], upscale=False))
    expect = latent.open_model(latent.resolve(VAE_NAME)).decode(np.array(z[:1]))[0]
    np.testing.assert_array_equal(alone.images[0], expect)


def test_edit_moves_along_a_named_direction():
    z = sample()
    base = np.array(run(LatentEditSpec(model=VAE_NAME, a=z[:1], upscale=False)).info["latent"])
    info = run(LatentInfoSpec(model=VAE_NAME)).info
    name = info["directions"][0]
    moved = run(LatentEditSpec(model=VAE_NAME, a=z[:1], directions=((name, 1.5),),
                               method="classifier", upscale=False)).info["latent"]
    dset = latent.model_directions(latent.open_model(latent.resolve(VAE_NAME)))
    d = dset.get("classifier")[name]
    np.testing.assert_allclose(np.array(moved), base + 1.5 * d.scale * d.vector)


@pytest.mark.parametrize("kwargs, message", [
    ({}, "Slot A is empty"),
    ({"a": [[0.0] * 8], "b": [[0.0] * 8]}, "both B and C"),
    ({"a": [[0.0] * 5]}, "another model"),
    ({"a": [[0.0] * 8], "directions": (("no such", 1.0),)}, "Unknown direction"),
])
def test_edit_refuses_bad_slots(kwargs, message):
    with pytest.raises(JobError, match=message):
        run(LatentEditSpec(model=VAE_NAME, upscale=False, **kwargs))


@pytest.mark.parametrize("bad, message", [
    ({"count": 0}, "1 to 64"), ({"model": " "}, "Choose a latent model"),
])
def test_spec_validation(bad, message):
    with pytest.raises(JobError, match=message):
        LatentSampleSpec(**bad)


def test_unknown_model_names_the_installed_ones():
    with pytest.raises(JobError, match=f"installed: {DCGAN_NAME}, {VAE_NAME}"):
        run(LatentSampleSpec(model="nope"))


def test_edit_without_an_upscaler_says_so():
    z = sample()
    result = run(LatentEditSpec(model=VAE_NAME, a=z[:1], upscale=True))
    assert result.images[0].shape == (16, 16, 3)
    assert "Not upscaled" in result.info["note"]


@pytest.mark.parametrize("mode", ["slerp", "linear"])
def test_walk_frames_start_and_end_at_the_picks(mode):
    z = sample()
    result = run(LatentWalkSpec(model=VAE_NAME, start=z[0], end=z[1], frames=5, mode=mode))
    assert len(result.images) == 5
    np.testing.assert_allclose(result.info["latents"][0], z[0])
    np.testing.assert_allclose(result.info["latents"][-1], z[1])
    with pytest.raises(JobError, match="two picks"):
        run(LatentWalkSpec(model=VAE_NAME, start=z[0]))


def test_encode_crops_any_aspect_to_the_centre_square():
    rgb = np.random.default_rng(0).integers(0, 255, (30, 90, 3), dtype=np.uint8)
    result = run(LatentEncodeSpec(model=VAE_NAME, image=ImageRef.of(rgb)))
    assert result.info["method"] == "encoder" and result.info["crop"] == [30, 0, 60, 30]
    assert len(result.info["latent"]) == 8
    boxed = run(LatentEncodeSpec(model=VAE_NAME, image=ImageRef.of(rgb), crop=(0, 0, 20, 30)))
    assert boxed.info["crop"] == [0, 5, 20, 25]
    with pytest.raises(JobError, match="less than 4x4"):
        run(LatentEncodeSpec(model=VAE_NAME, image=ImageRef.of(rgb), crop=(88, 0, 200, 30)))


def test_dcgan_inverts_instead_of_encoding_and_gets_closer():
    from core.data.faces import FacesWorld
    target = FacesWorld().render(3, size=16).image[None]
    progress: list = []
    result = run(LatentEncodeSpec(model=DCGAN_NAME, image=ImageRef.of(target[0]), steps=60),
                 progress)
    assert result.info["method"] == "inversion"
    assert len(progress) >= 6 and progress[-1].preview is not None
    start = run(LatentEncodeSpec(model=DCGAN_NAME, image=ImageRef.of(target[0]), steps=1))
    assert result.info["psnr"] > start.info["psnr"]
    with pytest.raises(JobError, match="no encoder"):
        run(LatentEncodeSpec(model=DCGAN_NAME, image=ImageRef.of(target[0]), method="encoder"))


def test_inversion_cancels():
    rgb = np.zeros((16, 16, 3), np.uint8)
    spec = LatentEncodeSpec(model=DCGAN_NAME, image=ImageRef.of(rgb), steps=500)
    ctx = Context.for_spec(spec, "cpu")
    seen = []

    def on_progress(p):
        seen.append(p)
        ctx.cancel_event.set()

    from core.jobs import Cancelled
    with pytest.raises(Cancelled):
        run_job(spec, ctx, on_progress)
    assert len(seen) == 1
    # the model's weights stay trainable for whoever loads them next
    assert all(p.requires_grad for p in latent.open_model(latent.resolve(DCGAN_NAME)).net
               .parameters())


def test_user_direction_is_saved_and_usable(models):
    z = sample(count=12)
    with pytest.raises(JobError, match=f"at least {dirs.MIN_SET}"):
        run(LatentDirectionSpec(model=VAE_NAME, name="mine", these=z[:2], those=z[2:4]))
    with pytest.raises(JobError, match="attribute direction"):
        run(LatentDirectionSpec(model=VAE_NAME, name="smiling", these=z[:6], those=z[6:]))
    run(LatentDirectionSpec(model=VAE_NAME, name="mine", these=z[:6], those=z[6:]))
    info = run(LatentInfoSpec(model=VAE_NAME)).info
    assert info["user_directions"] == ["mine"] and "mine" in info["directions"]
    moved = run(LatentEditSpec(model=VAE_NAME, a=z[:1], directions=(("mine", 1.0),),
                               upscale=False)).info["latent"]
    zz = np.array(z)
    np.testing.assert_allclose(np.array(moved) - zz[0], zz[:6].mean(0) - zz[6:].mean(0))


def test_directions_for_other_weights_are_ignored(models):
    model = latent.open_model(models[VAE_NAME])
    path = latent.user_directions_path(model)
    stale = dirs.DirectionSet(model.name, "0" * 64, attributes_done=True)
    stale.add(dirs.Direction("old", np.ones(8) / np.sqrt(8), 1.0, "mean", 5, 5, "user"))
    dirs.save_directions(path, stale)
    assert "old" not in latent.model_directions(model).names()


# --------------------------------------------------------------------------- CLI


def test_cli_sample_arith_walk_round_trip(tmp_path, capsys):
    out = tmp_path / "s"
    assert cli.main(["latent", "sample", "--model", VAE_NAME, "--count", "4", "-o", str(out),
                     "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    files = listing["outputs"]
    assert len(files) == 4
    meta = imageio.read_metadata(files[0])
    assert meta["latent"] == pytest.approx(listing["latents"][0])
    result = tmp_path / "r.png"
    assert cli.main(["latent", "arith", "--model", VAE_NAME, "--a", files[0], "--b", files[1],
                     "--c", files[2], "--no-upscale", "-o", str(result), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    z = np.array(listing["latents"])
    np.testing.assert_allclose(report["latent"], z[0] - z[1] + z[2])
    # the PNG's spec redraws it exactly
    again = tmp_path / "again.png"
    assert cli.main(["rerun", str(result), "-o", str(again)]) == 0
    np.testing.assert_array_equal(imageio.load_image(again).rgb, imageio.load_image(result).rgb)
    gif = tmp_path / "w.gif"
    assert cli.main(["latent", "walk", "--model", VAE_NAME, files[0], files[3], "--frames", "4",
                     "--no-upscale", "-o", str(gif)]) == 0
    with Image.open(gif) as im:
        assert im.n_frames == 4


def test_cli_edit_encodes_a_plain_photo_and_reports_bad_edits(tmp_path, capsys):
    photo = tmp_path / "p.jpg"
    Image.fromarray(np.full((40, 24, 3), 128, np.uint8)).save(photo)
    out = tmp_path / "e.png"
    assert cli.main(["latent", "edit", "--model", VAE_NAME, str(photo), "--no-upscale",
                     "-o", str(out)]) == 0
    assert imageio.load_image(out).rgb.shape == (16, 16, 3)
    capsys.readouterr()
    assert cli.main(["latent", "edit", "--model", VAE_NAME, str(photo), "--edit", "smiling",
                     "-o", str(tmp_path / "x.png")]) == 2
    assert "NAME=AMOUNT" in capsys.readouterr().err


def test_cli_directions_writes_the_file(tmp_path, capsys, models):
    assert cli.main(["latent", "directions", VAE_NAME, "--samples", "200", "--beside",
                     "--json"]) == 0
    path = json.loads(capsys.readouterr().out)["path"]
    assert path == str(dirs.directions_path(models[VAE_NAME]))
    assert dirs.load_directions(path).attributes_done


def test_arithmetic_pictures_are_read_by_any_reader():
    """The arithmetic's results and C slots are decoded once and read by whatever reader is
    given: one that reads every picture alike keeps every attribute and hits exactly the
    targets of its class; one that reads results and C slots apart keeps nothing."""
    from core.data.faces import ATTRIBUTES
    from core.evaluation import latent as ev

    model = latent.open_model(latent.resolve(VAE_NAME))
    sums = ev.arithmetic_sums(model, n=8, pool=80)
    assert set(sums) == set(ev.ARITHMETIC)
    for attr, s in sums.items():
        assert s.results.shape == s.c.shape == (8, 16, 16, 3) and s.results.dtype == np.uint8
        assert set(s.targets) <= set(ATTRIBUTES[attr])
    first = {k: v[0] for k, v in ATTRIBUTES.items()}
    alike = ev.arithmetic_scores(sums, lambda images: [first] * len(images))
    for attr, s in sums.items():
        assert alike[attr]["kept_mean"] == alike[attr]["kept_min"] == 1.0
        assert alike[attr]["target"] == np.mean([t == first[attr] for t in s.targets])
    assert 0 < alike["smiling"]["target"] < 1  # triples both add and remove a smile

    results = {id(s.results) for s in sums.values()}
    last = {k: v[-1] for k, v in ATTRIBUTES.items()}
    apart = ev.arithmetic_scores(
        sums, lambda images: [first if id(images) in results else last] * len(images))
    assert all(a["kept_mean"] == 0.0 and a["kept_worst"] for a in apart.values())


# --------------------------------------------------------------------------- truncation


@pytest.mark.parametrize("cls", [LatentSampleSpec, LatentEditSpec, LatentWalkSpec])
@pytest.mark.parametrize("bad", [-0.05, 1.01, float("nan"), float("inf"), "0.5", None, True])
def test_truncation_outside_0_to_1_or_not_a_number_is_refused(cls, bad):
    with pytest.raises(JobError, match=r"truncation .* from 0 to 1 \(1 = off\)"):
        cls(truncation=bad)


def test_truncation_defaults_to_off_and_travels_in_the_spec():
    assert LatentSampleSpec().truncation == 1.0
    spec = LatentWalkSpec(truncation=0)
    assert spec.truncation == 0.0 and isinstance(spec.truncation, float)
    d = json.loads(json.dumps(LatentEditSpec(a=((0.0,) * 8,), truncation=0.35).to_dict()))
    assert d["truncation"] == 0.35 and JobSpec.from_dict(d).truncation == 0.35
    del d["truncation"]  # a PNG made before the setting existed
    assert JobSpec.from_dict(d).truncation == 1.0
    with pytest.raises(JobError, match="'truncation' must be a number"):
        JobSpec.from_dict(dict(d, truncation="strong"))


def prior_mean(model: str) -> np.ndarray:
    """The mean latent the truncation pulls toward: 0 for a DCGAN, the VAE's fitted mean."""
    m = latent.open_model(latent.resolve(model))
    fit = latent.model_directions(m).fit_mean if m.has_encoder else None
    return np.zeros(m.dim) if fit is None else fit


@pytest.mark.parametrize("model", [DCGAN_NAME, VAE_NAME])
def test_sample_truncation_pulls_the_seeds_draws_toward_the_mean(model):
    full = run(LatentSampleSpec(model=model, count=5, seed=3))
    mean = prior_mean(model)  # after the first VAE sample: its fit is computed then
    if model == DCGAN_NAME:
        assert not mean.any()  # N(0, I) noise: the mean latent is 0
    else:
        assert np.linalg.norm(mean) > 1e-3  # the Gaussian fitted to its encoded faces
    z1 = np.array(full.info["latents"])
    assert full.info["decoded"] == full.info["latents"]  # 1 = off

    typical = run(LatentSampleSpec(model=model, count=5, seed=3, truncation=0.0))
    np.testing.assert_allclose(typical.info["decoded"], np.tile(mean, (5, 1)))
    np.testing.assert_allclose(typical.info["latents"], z1)  # the same draws
    decoded = latent.open_model(latent.resolve(model)).decode(mean[None])[0]
    for image in typical.images:  # every cell is the mean latent's picture
        np.testing.assert_array_equal(image, decoded)

    half = run(LatentSampleSpec(model=model, count=5, seed=3, truncation=0.5))
    np.testing.assert_allclose(np.array(half.info["decoded"]) - mean, 0.5 * (z1 - mean))
    assert not np.array_equal(half.images[0], full.images[0])
    assert not np.array_equal(half.images[0], half.images[1])  # still varied


def test_edit_truncates_the_composed_and_moved_latent():
    z = sample(count=6)
    info = run(LatentInfoSpec(model=VAE_NAME)).info
    kw = {"model": VAE_NAME, "a": z[:2], "b": z[2:4], "c": z[4:6], "upscale": False,
          "directions": ((info["directions"][0], 1.0),)}
    full = np.array(run(LatentEditSpec(**kw)).info["latent"])
    result = run(LatentEditSpec(truncation=0.25, **kw))
    mean = prior_mean(VAE_NAME)
    np.testing.assert_allclose(result.info["latent"], full)  # the latent it stands for
    np.testing.assert_allclose(result.info["decoded"], mean + 0.25 * (full - mean))
    expect = latent.open_model(latent.resolve(VAE_NAME)).decode(
        np.array(result.info["decoded"])[None])[0]
    np.testing.assert_array_equal(result.images[0], expect)  # decoded from the pulled latent
    gan = [[1.0] * 8, [3.0] * 8]
    alone = run(LatentEditSpec(model=DCGAN_NAME, a=gan, upscale=False, truncation=0.5))
    np.testing.assert_allclose(alone.info["decoded"], [1.0] * 8)  # half of the slot's mean


def test_a_truncated_grid_face_put_alone_in_a_slot_is_the_same_face():
    """A latent stands for one face whatever the truncation: the grid's draws come back
    before the pull, so a face taken from a truncated grid into slot A draws as it showed
    (not pulled a second time), and arithmetic on them equals arithmetic on what showed."""
    grid = run(LatentSampleSpec(model=VAE_NAME, count=3, seed=5, truncation=0.5))
    z = [tuple(v) for v in grid.info["latents"]]
    alone = run(LatentEditSpec(model=VAE_NAME, a=(z[0],), upscale=False, truncation=0.5))
    np.testing.assert_allclose(alone.info["decoded"], grid.info["decoded"][0])
    np.testing.assert_array_equal(alone.images[0], grid.images[0])
    arith = run(LatentEditSpec(model=VAE_NAME, a=(z[0],), b=(z[1],), c=(z[2],), upscale=False,
                               truncation=0.5))
    shown = np.array(grid.info["decoded"])
    np.testing.assert_allclose(arith.info["decoded"], shown[0] - shown[1] + shown[2])


@pytest.mark.parametrize("mode", ["slerp", "linear"])
def test_walk_truncates_every_frame(mode):
    z = sample()
    full = run(LatentWalkSpec(model=VAE_NAME, start=z[0], end=z[1], frames=4, mode=mode))
    walked = run(LatentWalkSpec(model=VAE_NAME, start=z[0], end=z[1], frames=4, mode=mode,
                                truncation=0.6))
    mean = prior_mean(VAE_NAME)
    frames = np.array(full.info["latents"])
    np.testing.assert_allclose(walked.info["latents"], frames)
    np.testing.assert_allclose(walked.info["decoded"], mean + 0.6 * (frames - mean))
    assert not np.array_equal(walked.images[0], full.images[0])


def test_cli_truncation_is_recorded_and_reruns_to_the_same_pixels(tmp_path, capsys):
    out = tmp_path / "s"
    assert cli.main(["latent", "sample", "--model", DCGAN_NAME, "--count", "3", "--seed", "4",
                     "--truncation", "0.5", "-o", str(out), "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    full = run(LatentSampleSpec(model=DCGAN_NAME, count=3, seed=4)).info["latents"]
    np.testing.assert_allclose(listing["latents"], full)  # the draws; pictures at half
    meta = imageio.read_metadata(listing["outputs"][1])
    assert meta["spec"]["truncation"] == 0.5
    with Image.open(listing["outputs"][1]) as im:  # the human-readable summary shows it too
        assert "Truncation: 0.5" in im.text["parameters"]
    np.testing.assert_allclose(meta["latent"], listing["latents"][1])
    again = tmp_path / "again.png"
    assert cli.main(["rerun", listing["outputs"][1], "-o", str(again)]) == 0
    np.testing.assert_array_equal(imageio.load_image(again).rgb,
                                  imageio.load_image(listing["outputs"][1]).rgb)
    capsys.readouterr()

    files = listing["outputs"]
    result = tmp_path / "r.png"
    assert cli.main(["latent", "arith", "--model", DCGAN_NAME, "--a", files[0], "--b",
                     files[1], "--c", files[2], "--no-upscale", "--truncation", "0.5",
                     "-o", str(result), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    z = np.array(listing["latents"])  # the slots' latents: the pictures' own
    np.testing.assert_allclose(report["latent"], z[0] - z[1] + z[2])
    assert report["spec"]["truncation"] == 0.5
    same = tmp_path / "same.png"  # a sample alone in slot A, as truncated: the same picture
    assert cli.main(["latent", "arith", "--model", DCGAN_NAME, "--a", files[0], "--no-upscale",
                     "--truncation", "0.5", "-o", str(same)]) == 0
    np.testing.assert_array_equal(imageio.load_image(same).rgb,
                                  imageio.load_image(files[0]).rgb)
    capsys.readouterr()
    edited = tmp_path / "e.png"
    assert cli.main(["latent", "edit", "--model", DCGAN_NAME, files[0], "--no-upscale",
                     "--truncation", "0", "-o", str(edited), "--json"]) == 0
    np.testing.assert_allclose(json.loads(capsys.readouterr().out)["latent"], z[0])
    np.testing.assert_array_equal(imageio.load_image(edited).rgb, run(LatentEditSpec(
        model=DCGAN_NAME, a=((0.0,) * 8,), upscale=False)).images[0])  # the mean face
    frames = tmp_path / "frames"
    assert cli.main(["latent", "walk", "--model", DCGAN_NAME, files[0], files[1], "--frames",
                     "3", "--no-upscale", "--truncation", "0.5", "-o", str(frames),
                     "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["spec"]["truncation"] == 0.5
    frame = imageio.read_metadata(frames / "frame_002.png")
    np.testing.assert_allclose(frame["latent"], z[1])
    again = tmp_path / "frame_again.png"
    assert cli.main(["rerun", str(frames / "frame_002.png"), "-o", str(again)]) == 0
    np.testing.assert_array_equal(imageio.load_image(again).rgb,
                                  imageio.load_image(frames / "frame_002.png").rgb)


@pytest.mark.parametrize("action", ["sample", "arith", "edit", "walk"])
@pytest.mark.parametrize("value", ["1.5", "-0.1", "nan", "strong"])
def test_cli_truncation_outside_0_to_1_exits_2(tmp_path, capsys, action, value):
    args = {"sample": [], "arith": ["--a", "x.png"], "edit": ["x.png"],
            "walk": ["x.png", "y.png"]}[action]
    assert cli.main(["latent", action, *args, "--truncation", value,
                     "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "--truncation" in err and ("[0, 1]" in err or "not a number" in err)
    assert not (tmp_path / "out").exists()


def test_cli_unknown_direction_lists_the_models_directions(tmp_path, capsys):
    photo = tmp_path / "p.png"
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(photo)
    assert cli.main(["latent", "edit", "--model", VAE_NAME, str(photo), "--edit", "freckles=1",
                     "--no-upscale", "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "Unknown direction 'freckles'; known: " in err
    assert "smiling" in err and "hair_colour:blond" in err
    assert not (tmp_path / "x.png").exists()


def test_a_picture_far_from_the_faces_world_is_said_so_and_encoded_anyway(tmp_path, capsys):
    import shutil
    from pathlib import Path

    from skimage import data

    from core.data.worlds import get_world, split_seeds

    photo = data.astronaut()
    alone = run(LatentEncodeSpec(model=VAE_NAME, image=ImageRef.of(photo)))
    assert "world_score" not in alone.info  # no faces judge installed: nothing to say
    shipped = Path(__file__).resolve().parents[2] / "weights" / "judge"
    (tmp_path / "shipped" / "judge").mkdir(parents=True)
    for f in shipped.glob("judge_faces.*"):
        shutil.copy(f, tmp_path / "shipped" / "judge" / f.name)

    face = get_world("faces").render(split_seeds("held_out", 1, 97_000_000)[0], 64).image
    near = run(LatentEncodeSpec(model=VAE_NAME, image=ImageRef.of(face)))
    assert near.info["world_score"] < 1.25 and "note" not in near.info
    far = run(LatentEncodeSpec(model=VAE_NAME, image=ImageRef.of(photo)))
    assert far.info["world_score"] > 1.25 and len(far.info["latent"]) == 8  # still encoded
    assert "far from the faces world" in far.info["note"]
    path = tmp_path / "astronaut.png"
    Image.fromarray(photo).save(path)
    assert cli.main(["latent", "edit", "--model", VAE_NAME, str(path), "--no-upscale",
                     "-o", str(tmp_path / "out.png")]) == 0
    assert "far from the faces world" in capsys.readouterr().err
    assert (tmp_path / "out.png").is_file()
