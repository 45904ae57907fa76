"""What the judge sees: feature inversion, dream and adversarial examples on a tiny random
classifier installed as a user model, and ``easel judge`` on the command line."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from judge_models import HEADS, NAME, install, picture
from latent_models import VAE_NAME
from latent_models import install as install_latent

from core import imageio
from core.cli import main
from core.jobs import Cancelled, Context, ImageRef, JobError, read_spec, run_job
from core.judges import outputs
from core.pipelines.judge import open_classifier
from core.specs.judge import JudgeDreamSpec, JudgeFoolSpec, JudgeInvertSpec
from core.weights import ModelCache, load_model


@pytest.fixture(autouse=True)
def _tiny_judge() -> Path:
    return install()


def _run(spec, cancel: threading.Event | None = None, on_progress=None):
    ctx = Context.for_spec(spec, device="cpu", models=ModelCache(), cancel_event=cancel)
    return run_job(spec, ctx, on_progress)


def _ref(seed: int = 0) -> ImageRef:
    return ImageRef.of(picture(seed))


def _reads(path: Path, image: np.ndarray, head: str) -> str:
    """What the saved classifier reads in ``image`` (core.judges, not the pipeline)."""
    judge = load_model(path)
    return HEADS[head][int(outputs(judge, image[None])[head].argmax())]


@pytest.mark.parametrize("method", ["pgd", "fgsm"])
def test_fool_flips_the_reading_within_the_budget(_tiny_judge: Path, method: str) -> None:
    img = picture(1)
    before = _reads(_tiny_judge, img, "mood")
    spec = JudgeFoolSpec(image=ImageRef.of(img), model=NAME, attribute="mood", budget=32,
                         method=method)
    result = _run(spec)
    adv, mag = result.images
    info = result.info
    assert info["flipped"] and info["read_before"] == before
    assert _reads(_tiny_judge, adv, "mood") == info["read_after"] != before
    delta = adv.astype(int) - img.astype(int)
    assert 0 < np.abs(delta).max() == info["linf_255"] <= 32
    assert info["psnr"] > 10 and "fools tiny_judge only" in info["caption"]
    assert info["steps_used"] == 1 if method == "fgsm" else info["steps_used"] >= 1
    assert sum(info["before"].values()) == pytest.approx(1, abs=1e-3)
    # The magnified perturbation: mid grey where nothing changed, the largest change at an end.
    assert (mag[delta == 0] == 128).all() and {0, 255} & set(np.unique(mag).tolist())
    assert _run(spec).images[0].tobytes() == adv.tobytes()  # same spec, same pixels


def test_fool_to_a_class_and_refuses_the_class_already_read() -> None:
    img = picture(2)
    read = _run(JudgeFoolSpec(image=ImageRef.of(img), model=NAME, attribute="glasses",
                              budget=32)).info["read_before"]
    other = next(c for c in HEADS["glasses"] if c != read)
    result = _run(JudgeFoolSpec(image=ImageRef.of(img), model=NAME,
                                attribute=f"glasses={other}", budget=32))
    assert result.info["flipped"] and result.info["read_after"] == other
    with pytest.raises(JobError, match=f"already reads glasses={read}"):
        _run(JudgeFoolSpec(image=ImageRef.of(img), model=NAME, attribute=f"glasses={read}"))


def test_inversion_matches_the_layers_features_from_noise(_tiny_judge: Path) -> None:
    spec = JudgeInvertSpec(image=_ref(3), model=NAME, layer="conv2", steps=60)
    result = _run(spec)
    out, seen = result.images
    assert out.shape == seen.shape == (16, 16, 3)  # the classifier's input size
    clf = open_classifier(NAME, Context.for_spec(spec, device="cpu"))
    target = clf.features(torch.from_numpy(seen).permute(2, 0, 1)[None].float() / 127.5 - 1, 1)
    noise = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.1
    with torch.no_grad():
        start = float((clf.features(noise, 1) - target).pow(2).mean() / target.pow(2).mean())
    assert result.info["feature_error"] < start / 5
    assert set(result.info["readings_after"]) == set(HEADS)
    assert 0 <= result.info["agreement"] <= 1 and result.info["layer"] == "conv2"


def test_dream_raises_the_class_and_a_layers_energy() -> None:
    cls = _run(JudgeDreamSpec(image=_ref(4), model=NAME, attribute="mood=sad", steps=8))
    assert cls.info["probability_after"] > cls.info["probability_before"]
    assert cls.images[0].shape == (16, 13, 3)  # the picture's aspect, at the classifier's size
    layer = _run(JudgeDreamSpec(image=_ref(4), model=NAME, layer="conv4", steps=8, size=32))
    assert layer.info["activation_after"] > layer.info["activation_before"]
    assert layer.images[0].shape == (24, 20, 3)  # a picture is never enlarged
    grey = _run(JudgeDreamSpec(image=_ref(4), model=NAME, attribute="glasses=glasses",
                               start="grey", steps=8))
    assert grey.info["start"] == "grey" and grey.info["probability_after"] > 0.5


def test_jobs_report_progress_with_previews_and_stop_on_cancel() -> None:
    seen = []
    _run(JudgeDreamSpec(image=_ref(), model=NAME, steps=4, octaves=2), on_progress=seen.append)
    assert [p.step for p in seen[1:]] == list(range(1, 9))
    assert any(p.preview is not None for p in seen)
    # (a fool job may flip within a step: it is cancelled once it has opened the classifier)
    for spec, after in ((JudgeInvertSpec(image=_ref(), model=NAME, steps=500), 3),
                        (JudgeFoolSpec(image=_ref(), model=NAME, attribute="mood", budget=1,
                                       steps=500), 1),
                        (JudgeDreamSpec(image=_ref(), model=NAME, steps=500), 3)):
        cancel, steps = threading.Event(), []

        def stop(p, cancel=cancel, steps=steps, after=after) -> None:
            steps.append(p.step)
            if len(steps) == after:
                cancel.set()

        with pytest.raises(Cancelled):
            _run(spec, cancel, stop)
        assert len(steps) == after, spec.kind  # stopped before the next step


@pytest.mark.parametrize("make, message", [
    (lambda: JudgeInvertSpec(image=_ref(), model=NAME, layer="conv99"),
     r"no layer 'conv99'; its layers are: conv1 \(16 px, 4 channels\), .*pooled"),
    (lambda: JudgeFoolSpec(image=_ref(), model=NAME, attribute="hat"),
     r"reads no attribute 'hat'; it reads glasses: none, glasses; mood: calm, happy, sad"),
    (lambda: JudgeDreamSpec(image=_ref(), model=NAME, attribute="mood=angry"),
     r"no class 'angry' of mood; the classes are calm, happy, sad"),
    (lambda: JudgeDreamSpec(image=_ref(), model=NAME, attribute="mood"),
     r"Name the class to amplify: mood=CLASS"),
    (lambda: JudgeDreamSpec(image=_ref(), model=NAME, attribute="mood=sad", layer="conv2"),
     r"not both"),
    (lambda: JudgeFoolSpec(image=_ref(), model="nobody", attribute="mood"),
     r"No classifier \(judge\) called 'nobody' is installed; installed: .*tiny_judge"),
    (lambda: JudgeFoolSpec(image=None, model=NAME, attribute="mood"), r"No picture"),
])
def test_bad_input_is_refused_with_what_there_is(make, message) -> None:
    with pytest.raises(JobError, match=message):
        _run(make())


def test_a_model_that_is_not_a_classifier_and_a_zero_budget_are_refused(tmp_path) -> None:
    import os

    install_latent(Path(os.environ["EASEL_HOME"]))
    with pytest.raises(JobError, match=f"{VAE_NAME} is a vae model, not a classifier"):
        _run(JudgeInvertSpec(image=_ref(), model=VAE_NAME))
    with pytest.raises(JobError, match="A budget of 0 changes nothing"):
        JudgeFoolSpec(image=_ref(), model=NAME, attribute="mood", budget=0)
    with pytest.raises(JobError, match="1/255 is the smallest change"):
        JudgeFoolSpec(image=_ref(), model=NAME, attribute="mood", budget=0.5)
    with pytest.raises(JobError, match="Name the attribute to flip"):
        JudgeFoolSpec(image=_ref(), model=NAME)


def test_a_picture_far_from_the_world_is_run_and_said(tmp_path, capsys) -> None:
    """A faces-world classifier given pixel noise: the job runs and its note says the picture
    is far from the faces world; a faces render gets no note."""
    from core.data.worlds import get_world

    install(name="tiny_faces_judge", world="faces", size=32)
    noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    far = _run(JudgeFoolSpec(image=ImageRef.of(noise), model="tiny_faces_judge",
                             attribute="glasses", budget=32))
    assert far.images and far.info["world_score"] > 1.25
    assert any("far from the faces world" in n for n in far.info["notes"])
    face = get_world("faces").render(3, 32).image
    near = _run(JudgeDreamSpec(image=ImageRef.of(face), model="tiny_faces_judge", steps=2))
    assert near.info["notes"] == [] and near.info["world_score"] < 1.25
    src, out = tmp_path / "noise.png", tmp_path / "out.png"
    imageio.save_png(src, noise)
    assert main(["judge", "invert", str(src), "-o", str(out), "--model", "tiny_faces_judge",
                 "--steps", "2"]) == 0
    assert "note: This picture is far from the faces world" in capsys.readouterr().err
    assert out.exists()


# --------------------------------------------------------------------------- command line


def _png(tmp_path: Path, seed: int = 0) -> Path:
    path = tmp_path / "in.png"
    imageio.save_png(path, picture(seed))
    return path


def test_cli_fool_writes_both_pictures_with_the_spec(tmp_path, capsys) -> None:
    src = _png(tmp_path, 1)
    out, pert = tmp_path / "out.png", tmp_path / "pert.png"
    assert main(["judge", "fool", str(src), "-o", str(out), "--model", NAME, "--attribute",
                 "mood", "--budget", "32", "--perturbation", str(pert)]) == 0
    text = capsys.readouterr().out
    assert "fools tiny_judge only" in text and "L-inf" in text and "PSNR" in text
    spec = read_spec(out)
    assert isinstance(spec, JudgeFoolSpec) and spec.attribute == "mood" and spec.budget == 32
    assert imageio.load_image(pert).rgb.shape == imageio.load_image(out).rgb.shape
    # easel rerun draws the same pixels from the recorded spec
    again = tmp_path / "again.png"
    assert main(["rerun", str(out), "-o", str(again)]) == 0
    assert (imageio.load_image(again).rgb == imageio.load_image(out).rgb).all()


def test_cli_invert_dream_and_layers(tmp_path, capsys) -> None:
    src = _png(tmp_path)
    assert main(["judge", "invert", str(src), "-o", str(tmp_path / "i.png"), "--model", NAME,
                 "--layer", "conv3", "--steps", "5"]) == 0
    assert main(["judge", "dream", str(src), "-o", str(tmp_path / "d.png"), "--model", NAME,
                 "--attribute", "mood=happy", "--steps", "3", "--from-grey", "--json"]) == 0
    assert '"probability_after"' in capsys.readouterr().out
    assert main(["judge", "layers", "--model", NAME]) == 0
    text = capsys.readouterr().out
    assert "conv1 (16 px, 4 channels)" in text and "attribute mood: calm, happy, sad" in text


@pytest.mark.parametrize("args, message", [
    (["invert", "--layer", "fc7"], "no layer 'fc7'"),
    (["fool", "--attribute", "mood", "--budget", "0"], "budget of 0"),
    (["fool", "--attribute", "hat"], "reads no attribute 'hat'"),
    (["fool", "--attribute", "mood", "--model", VAE_NAME], "not a classifier"),
    (["dream", "--model", "nobody"], "No classifier (judge) called 'nobody'"),
])
def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, args, message) -> None:
    import os

    install_latent(Path(os.environ["EASEL_HOME"]))
    src, out = _png(tmp_path), tmp_path / "out.png"
    model = [] if "--model" in args else ["--model", NAME]
    assert main(["judge", args[0], str(src), "-o", str(out), *model, *args[1:]]) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_rerun_in_a_fresh_process_finds_the_pipeline(tmp_path) -> None:
    """``easel rerun`` of a judge PNG in a new process (where nothing imported the pipelines
    before) runs the job it records."""
    import os
    import subprocess
    import sys

    src, out, again = _png(tmp_path, 1), tmp_path / "out.png", tmp_path / "again.png"
    assert main(["judge", "dream", str(src), "-o", str(out), "--model", NAME, "--attribute",
                 "mood=sad", "--steps", "2", "--octaves", "1"]) == 0
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run([sys.executable, "-m", "core", "rerun", str(out), "-o", str(again)],
                         cwd=root, env=dict(os.environ, PYTHONPATH=str(root)),
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert (imageio.load_image(again).rgb == imageio.load_image(out).rgb).all()
