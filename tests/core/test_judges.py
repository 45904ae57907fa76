"""Judges: network shapes, readings, training targets, GenEval scoring, ``easel eval``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.cli import main
from core.evaluation import geneval
from core.judges import decode_objects, features, read_faces, read_scenes
from core.nets.judge import Judge, JudgeConfig
from core.training.families.judge import judge_config, judge_loss, targets
from core.weights import ModelCard, load_state, read_card, save_model

SHIPPED = Path(__file__).resolve().parents[2] / "weights" / "judge"


@pytest.fixture(autouse=True)
def _homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))


def _judge(world: str, width: int = 8) -> Judge:
    torch.manual_seed(0)
    return Judge(judge_config(world, width, 64)).eval()


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)


def test_forward_shapes_and_features() -> None:
    faces = _judge("faces")
    x = torch.zeros(2, 3, 64, 64)
    out = faces(x)
    assert set(out) == set(faces.config.heads)
    for name, classes in faces.config.heads.items():
        assert out[name].shape == (2, len(classes))
    assert features(faces, _images(3)).shape == (3, faces.feature_dim)

    scenes = _judge("scenes")
    out = scenes(x)
    assert out["background"].shape == (2, len(scenes.config.heads["background"]))
    assert out["grid.present"].shape == (2, 8, 8)
    assert out["grid.box"].shape == (2, 8, 8, 4)
    assert out["grid.box"].min() >= 0 and out["grid.box"].max() <= 1
    slots = scenes.slots(out)
    s = scenes.config.slots
    assert s == 3
    assert slots["slot.present"].shape == (2, s)
    assert slots["slot.box"].shape == (2, s, 4)
    for name, classes in scenes.config.slot_heads.items():
        assert out[f"grid.{name}"].shape == (2, 8, 8, len(classes))
        assert slots[f"slot.{name}"].shape == (2, s, len(classes))
    with pytest.raises(ValueError):
        scenes(torch.zeros(2, 1, 64, 64))


def test_slots_merge_cells_that_point_at_one_object_and_sort_left_to_right() -> None:
    judge = _judge("scenes")
    with torch.no_grad():
        out = {k: v.clone() for k, v in judge(torch.zeros(1, 3, 64, 64)).items()}
    out["grid.present"][:] = -10.0
    box = out["grid.box"]
    # Two neighbouring cells, each 0.4 sure, predicting the same centre: one object.
    for r, c in ((2, 5), (2, 6)):
        out["grid.present"][0, r, c] = 0.0 - 0.405  # sigmoid = 0.4
        box[0, r, c] = torch.tensor([0.75, 0.3, 0.2, 0.2])
    # A confident object further left, and one lone 0.4 cell that is not enough.
    out["grid.present"][0, 6, 1] = 5.0
    box[0, 6, 1] = torch.tensor([0.2, 0.8, 0.35, 0.35])
    out["grid.present"][0, 7, 7] = -0.405
    box[0, 7, 7] = torch.tensor([0.9, 0.9, 0.2, 0.2])
    slots = judge.slots(out)
    assert slots["slot.present"][0].tolist() == pytest.approx([0.9933, 0.8, 0.0], abs=1e-3)
    assert slots["slot.box"][0, 0, 0] == pytest.approx(0.2)
    assert slots["slot.box"][0, 1, 0] == pytest.approx(0.75)


def test_config_refuses_a_judge_without_heads() -> None:
    with pytest.raises(ValueError):
        JudgeConfig(heads={})
    with pytest.raises(ValueError):
        JudgeConfig(heads={"a": ["only"]})


def test_read_faces_gives_a_class_of_every_attribute() -> None:
    judge = _judge("faces")
    reads = read_faces(judge, _images(4))
    assert len(reads) == 4
    for r in reads:
        assert set(r) == set(judge.config.heads)
        assert all(r[k] in judge.config.heads[k] for k in r)
    # Other sizes are resized to the judge's input size.
    assert len(read_faces(judge, _images(2)[:, :48, :48])) == 2


def test_read_scenes_gives_sorted_objects_in_the_checker_format() -> None:
    judge = _judge("scenes")
    with torch.no_grad():
        judge.grid_head[-1].bias[0] = 10.0  # every cell says "an object's centre is here"
    reads = read_scenes(judge, _images(3))
    assert len(reads) == 3
    for objects, background in reads:
        assert background in judge.config.heads["background"]
        assert 1 <= len(objects) <= 3
        xs = [(o["bbox"][0] + o["bbox"][2]) / 2 for o in objects]
        assert xs == sorted(xs)
        for o in objects:
            assert set(o) == {"shape", "colour", "size", "bbox"}
            x0, y0, x1, y1 = o["bbox"]
            assert 0 <= x0 <= x1 <= 1 and 0 <= y0 <= y1 <= 1


def test_decode_objects_sorts_by_centre_and_drops_absent_slots() -> None:
    heads = {"shape": ["circle", "star"]}
    out = {"slot.present": torch.tensor([[1.0, 0.0, 0.9]]),
           "slot.box": torch.tensor([[[0.8, 0.5, 0.2, 0.2], [0.5, 0.5, 0.1, 0.1],
                                      [0.2, 0.4, 0.2, 0.2]]]),
           "slot.shape": torch.tensor([[[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]]])}
    objects = decode_objects(out, heads, 0)
    assert [o["shape"] for o in objects] == ["circle", "star"]
    assert objects[0]["bbox"] == pytest.approx((0.1, 0.3, 0.3, 0.5))


def test_targets_mark_the_cell_of_each_object_centre() -> None:
    cfg = judge_config("scenes", 8, 64)
    labels = [{"background": "black", "objects": [
        {"shape": "star", "colour": "red", "size": "big", "bbox": (0.6, 0.1, 0.9, 0.4)},
        {"shape": "heart", "colour": "blue", "size": "small", "bbox": (0.1, 0.5, 0.3, 0.7)}]}]
    t = targets(cfg, labels)
    assert t["grid.present"].sum() == 2
    assert t["grid.present"][0, 2, 6] == 1  # centre (0.75, 0.25) -> row 2, column 6
    assert t["grid.shape"][0, 4, 1] == cfg.slot_heads["shape"].index("heart")
    assert t["grid.shape"][0, 0, 0] == -100
    assert t["grid.box"][0, 2, 6].tolist() == pytest.approx([0.75, 0.25, 0.3, 0.3])
    assert t["background"].tolist() == [cfg.heads["background"].index("black")]


def test_a_few_steps_lower_the_loss_on_real_renders() -> None:
    from core.data.worlds import get_world

    world = get_world("scenes")
    samples = [world.render(s) for s in range(8)]
    x = torch.from_numpy(np.stack([s.image for s in samples])).permute(0, 3, 1, 2).float()
    x = x / 127.5 - 1
    judge = _judge("scenes").train()
    t = targets(judge.config, [s.labels for s in samples])
    opt = torch.optim.Adam(judge.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = judge_loss(judge.config, judge(x), t)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0]


def test_geneval_scores_true_readings_at_100_percent() -> None:
    cases = geneval.prompts(4)
    assert [c.category for c in cases[::4]] == geneval.GENEVAL_CATEGORIES
    truth = [(c.layout.labels()["objects"], c.layout.background) for c in cases]
    score = geneval.score_readings(cases, truth)
    assert score["overall"] == 1.0
    assert all(score[c] == 1.0 for c in geneval.GENEVAL_CATEGORIES)
    # Reading nothing satisfies no prompt.
    empty = geneval.score_readings(cases, [([], "black")] * len(cases))
    assert empty["overall"] == 0.0


def _save_tiny(tmp_path: Path, world: str) -> Path:
    judge = _judge(world)
    card = ModelCard(name="tiny", family="judge", architecture="judge",
                     config=__import__("dataclasses").asdict(judge.config), data=world)
    return save_model(tmp_path / "judge", f"tiny_{world}", judge, card)


def test_easel_eval_prints_judge_accuracy(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = _save_tiny(tmp_path, "faces")
    assert main(["eval", str(path), "--n", "12"]) == 0
    text = capsys.readouterr().out
    assert "held_out_accuracy.eye_colour" in text and "min_accuracy" in text

    assert main(["eval", str(path), "--n", "12", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    acc = result["metrics"]["held_out_accuracy"]
    assert set(acc) == set(_judge("faces").config.heads)
    assert all(0.0 <= v <= 1.0 for v in acc.values())


def test_easel_eval_of_a_scenes_judge_reports_the_checker(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    path = _save_tiny(tmp_path, "scenes")
    assert main(["eval", str(path), "--n", "12", "--json"]) == 0
    m = json.loads(capsys.readouterr().out)["metrics"]
    assert {"count", "shape", "colour", "size", "relation", "background"} <= set(
        m["held_out_accuracy"])
    assert set(geneval.GENEVAL_CATEGORIES) <= set(m["checker_accuracy"])


def test_write_card_keeps_the_sha256_check_valid(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    path = _save_tiny(tmp_path, "faces")
    before = read_card(path)
    assert main(["eval", str(path), "--n", "8", "--write-card"]) == 0
    after = read_card(path)
    assert after.sha256 == before.sha256
    assert after.metrics["held_out_n"] == 8
    assert "eye_colour" in after.metrics["held_out_accuracy"]
    load_state(path)  # still verifies


def test_easel_eval_refuses_unknown_models(tmp_path: Path, capsys: pytest.CaptureFixture,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "none"))
    assert main(["eval", "no_such_model"]) == 2
    assert "no model 'no_such_model'" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "missing.safetensors")]) == 2


def test_geneval_refuses_a_judge_without_the_97_percent_checker(tmp_path: Path) -> None:
    from core.evaluation.evaluate import EvaluationError, write_metrics

    path = _save_tiny(tmp_path, "scenes")

    def draw(captions: list[str], seeds: list[int]) -> np.ndarray:
        return _images(len(captions))

    with pytest.raises(EvaluationError, match="has no checker accuracy") as info:
        geneval.geneval_score(str(path), draw, n_per_category=1)
    assert "\n" not in str(info.value)
    write_metrics(path, {"checker_accuracy": {"overall": 0.9}})
    with pytest.raises(EvaluationError, match="checker accuracy 0.900"):
        geneval.geneval_score(str(path), draw, n_per_category=1)
    write_metrics(path, {"checker_accuracy": {"overall": 0.98}})
    score = geneval.geneval_score(str(path), draw, n_per_category=1)
    assert set(geneval.GENEVAL_CATEGORIES) <= set(score)


def test_eval_maps_judge_errors_to_bad_input_and_nan_to_null(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.evaluation import evaluate as ev
    from core.judges import JudgeError

    path = _save_tiny(tmp_path, "faces")
    real = ev.EVALUATORS["judge"]
    monkeypatch.setitem(ev.EVALUATORS, "judge", lambda *a: {**real(*a), "x": float("nan")})
    assert main(["eval", str(path), "--n", "4", "--json", "--write-card"]) == 0
    strict = {"parse_constant": lambda c: pytest.fail(f"{c} in JSON")}
    assert json.loads(capsys.readouterr().out, **strict)["metrics"]["x"] is None
    card = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"), **strict)
    assert card["metrics"]["x"] is None

    def unreadable(*args: object) -> dict:
        raise JudgeError("this judge does not read scenes (it has no object slots)")

    monkeypatch.setitem(ev.EVALUATORS, "judge", unreadable)
    assert main(["eval", str(path), "--n", "4"]) == 2
    err = capsys.readouterr().err
    assert "does not read scenes" in err and "internal error" not in err


@pytest.mark.parametrize("world", ["faces", "scenes"])
def test_shipped_judge_matches_its_card(world: str) -> None:
    from core.evaluation.evaluate import evaluate

    path = SHIPPED / f"judge_{world}.safetensors"
    if not path.is_file():
        pytest.skip(f"the shipped {world} judge is not trained yet")
    card = read_card(path)
    result = evaluate(path, n=200)["metrics"]
    for key, value in result["held_out_accuracy"].items():
        if key == "centre_error_px":
            continue
        assert value >= card.metrics["held_out_accuracy"][key] - 0.03, key
        assert value >= 0.95, key
    if world == "scenes":
        assert result["checker_accuracy"]["overall"] >= 0.95


@pytest.mark.parametrize("family", ["dcgan", "vae"])
def test_generators_get_fjd_against_held_out_faces(tmp_path: Path, family: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from core import registry
    from core.evaluation.evaluate import evaluate

    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "weights"))
    _save_tiny(tmp_path / "weights", "faces")  # the faces judge FJD is measured with
    small = {"dcgan": {"g_base": 4, "z_dim": 8}, "vae": {"base": 4, "latent_dim": 8}}[family]
    torch.manual_seed(0)
    model = registry.build(family, small)
    card = ModelCard(name="tiny", family=family, architecture=family,
                     config=dataclasses.asdict(model.config),
                     extra={"recipe_resolved": {"data": {"source": "faces"}}})
    path = save_model(tmp_path / "models", f"tiny_{family}", model, card)
    m = evaluate(path, n=8)["metrics"]
    assert m["fjd"] > 0 and np.isfinite(m["fjd"])
    assert "NOT FID" in m["fjd_note"]
    if family == "vae":
        assert 0 < m["recon_psnr"] < 60 and -1 <= m["recon_ssim"] <= 1
        assert m["bits_per_dim_elbo"] > 0


# --------------------------------------------------------------------------- out of world


def _photos() -> np.ndarray:
    from PIL import Image
    from skimage import data

    return np.stack([np.asarray(Image.fromarray(im).resize((64, 64)))
                     for im in (data.astronaut(), data.coffee(), data.chelsea())])


@pytest.mark.parametrize("world", ["faces", "scenes"])
def test_world_score_tells_the_judges_world_from_photos_and_noise(world: str) -> None:
    from core.data.worlds import get_world, split_seeds
    from core.judges import FAR, load_judge, world_fit, world_scores

    judge = load_judge(str(SHIPPED / f"judge_{world}.safetensors"))
    seeds = split_seeds("held_out", 200, 96_000_000)  # apart from the fit's renders
    own = world_scores(judge, np.stack([get_world(world).render(s, 64).image for s in seeds]))
    assert own is not None and np.mean(own > FAR) <= 0.03 and np.median(own) < 1
    assert (world_scores(judge, _photos()) > FAR).all()
    assert (world_scores(judge, _images(8)) > FAR).all()  # pixel noise
    # The fit is kept per weights file: loading the judge again does not refit it.
    assert world_fit(load_judge(str(SHIPPED / f"judge_{world}.safetensors"))) is \
        world_fit(judge)


def test_world_score_is_none_for_a_judge_of_a_folder() -> None:
    from core.judges import world_scores

    judge = _judge("faces")
    judge.config.world = "/pictures/my folder"
    assert world_scores(judge, _images(2)) is None


def test_world_fit_is_kept_on_disk_and_a_damaged_copy_is_computed_again(monkeypatch) -> None:
    from core import judges

    monkeypatch.setattr(judges, "_fits_by_file", {})  # none yet in this process
    judge = judges.load_judge(str(SHIPPED / "judge_faces.safetensors"))
    fit = judges.world_fit(judge)
    path = judges._fit_path(judge.weights_sha256)
    assert path.is_file()
    monkeypatch.setattr(judges, "_fits_by_file", {})  # a new session: read from the disk
    again = judges.world_fit(judge)
    assert again is not fit and again.threshold == fit.threshold
    np.testing.assert_array_equal(again.blocks[3][0].precision, fit.blocks[3][0].precision)

    monkeypatch.setattr(judges, "_fits_by_file", {})
    path.write_bytes(b"PK\x03\x04 not a zip")  # damaged: computed again, and rewritten
    computed = []
    real = judges._statistics
    monkeypatch.setattr(judges, "_statistics", lambda *a: computed.append(1) or real(*a))
    assert judges.world_fit(judge).threshold == pytest.approx(fit.threshold)
    assert computed and judges._read_fit(judge.weights_sha256, len(fit.blocks)) is not None
