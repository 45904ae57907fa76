"""Training runs of the Train panel: budgets, pause/finish requests, held-out files, a full disk,
folder evaluation, and reading a run's state back from its folder (core/training/runs.py)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.cli.train_progress import JsonlSink
from core.data.folder import held_out_split
from core.training import checkpoint as ckpt
from core.training import runs
from core.training.recipe import load_recipe
from core.training.task import TrainingError
from core.training.trainer import Trainer, train


def make_folder(root: Path, n: int, size: int = 24) -> Path:
    """``n`` small JPEGs of mixed sizes (a user folder), each a different gradient."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        h, w = size + (i % 3) * 4, size + (i % 5) * 3
        img = (rng.random((h, w, 3)) * 60 + np.linspace(0, 190, w)[None, :, None]).astype(np.uint8)
        Image.fromarray(img).save(root / f"p{i:03d}.jpg", quality=90)
    return root


def folder_recipe(folder: Path, *extra: str):
    return load_recipe("tiny_vae", [f"data.source={json.dumps(str(folder))}", *extra])


# --------------------------------------------------------------------------- trainer


def test_pause_request_checkpoints_and_resume_finishes(tmp_path):
    folder = make_folder(tmp_path / "pics", 12)
    out = tmp_path / "run"
    events: list[dict] = []

    def emit(e: dict) -> None:
        events.append(e)
        if e["event"] == "step" and e["step"] == 2:
            runs.request(out, runs.PAUSE)  # what the panel's Pause button does

    r = folder_recipe(folder, "train.steps=6", "train.checkpoint_every=100")
    result = Trainer(r, out, device="cpu", emit=emit).run()
    assert result.interrupted and result.step == 3 and result.weights is None
    assert (out / ckpt.NAME).is_file() and not (out / runs.CONTROL).exists()
    assert events[-1] == {**events[-1], "event": "done", "interrupted": True, "step": 3}
    resumed = train(r, out, resume=True, device="cpu")
    assert not resumed.interrupted and resumed.step == 6 and resumed.weights.is_file()


def test_finish_request_exports_the_model_as_it_is(tmp_path):
    folder = make_folder(tmp_path / "pics", 12)
    out = tmp_path / "run"

    def emit(e: dict) -> None:
        if e["event"] == "step" and e["step"] == 2:
            runs.request(out, runs.FINISH)  # the panel's Stop button

    result = Trainer(folder_recipe(folder, "train.steps=50"), out, device="cpu",
                     emit=emit).run()
    assert not result.interrupted and result.step == 3 and result.weights.is_file()


def test_a_stale_request_does_not_stop_the_next_session(tmp_path):
    folder = make_folder(tmp_path / "pics", 12)
    out = tmp_path / "run"
    r = folder_recipe(folder, "train.steps=4")
    first = train(r, out, device="cpu", weights_dir=tmp_path / "w")
    runs.request(out, runs.PAUSE)  # asked too late: the run had finished
    again = train(folder_recipe(folder, "train.steps=8"), out, resume=True, device="cpu",
                  weights_dir=tmp_path / "w")
    assert first.step == 4 and again.step == 8 and not again.interrupted


def test_minutes_budget_stops_and_exports(tmp_path, monkeypatch):
    import core.training.trainer as trainer_module

    folder = make_folder(tmp_path / "pics", 12)
    clock = [1000.0]

    def tick() -> float:  # every call is a minute later: the budget runs out at once
        clock[0] += 60.0
        return clock[0]

    monkeypatch.setattr(trainer_module.time, "monotonic", tick)
    events: list[dict] = []
    result = Trainer(folder_recipe(folder, "train.steps=1000", "train.minutes=2.5"),
                     tmp_path / "run", device="cpu", emit=events.append).run()
    assert not result.interrupted and result.weights.is_file() and result.step < 5
    steps = [e for e in events if e["event"] == "step"]
    assert steps[-1]["eta_s"] == 0.0 and steps[-1]["elapsed_s"] >= 150


def test_held_out_files_are_never_trained_on(tmp_path):
    folder = make_folder(tmp_path / "pics", 40)
    r = folder_recipe(folder, "data.held_out=0.25", "train.steps=2")
    from core.training.data import StepBatches

    data = StepBatches(r.data, r.seed, r.train.batch_size)
    data.open()
    source = data.source
    names = [f.name for f in source.folder.files]
    held = {names[i] for i in held_out_split(names, 0.25)}
    assert 0 < len(held) < 40 and source.held_out == len(held)
    trained = {source.item(i).labels["path"] for i in range(len(source))}
    assert trained == set(names) - held
    # The split is a function of the name alone: the same in another process.
    code = ("from core.data.folder import held_out_split; "
            f"print(sorted({names!r}[i] for i in held_out_split({names!r}, 0.25)))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={**os.environ, "PYTHONHASHSEED": "123"})
    assert other.stdout.strip() == repr(sorted(held))


@pytest.mark.parametrize("count", [0, 3])
def test_too_few_images_are_refused_with_the_minimum(tmp_path, count):
    folder = make_folder(tmp_path / "pics", count)
    (folder / "notes.doc").write_bytes(b"not a picture")
    r = folder_recipe(folder, "data.min_images=8")
    with pytest.raises(TrainingError, match="at least 8|No usable images") as info:
        train(r, tmp_path / "run", device="cpu")
    assert str(count) in str(info.value) or "No usable" in str(info.value)
    assert not (tmp_path / "run" / ckpt.NAME).exists()


def test_a_full_disk_stops_with_a_message_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "pics", 12)
    out = tmp_path / "run"
    r = folder_recipe(folder, "train.steps=6", "train.checkpoint_every=2")
    real_save = ckpt.save_checkpoint
    calls = []

    def save(out_dir, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the second checkpoint meets a full disk
            raise OSError(errno.ENOSPC, "No space left on device", str(out_dir / ckpt.NAME))
        return real_save(out_dir, *args, **kwargs)

    monkeypatch.setattr(ckpt, "save_checkpoint", save)
    events: list[dict] = []
    with pytest.raises(TrainingError, match="disk is full") as info:
        Trainer(r, out, device="cpu", emit=events.append).run()
    assert "step 2" in str(info.value) and "resume" in str(info.value)
    assert events[-1]["event"] == "error" and "disk is full" in events[-1]["message"]
    meta, _ = ckpt.read_checkpoint(out / ckpt.NAME)  # the good one is intact
    assert meta["step"] == 2
    monkeypatch.setattr(ckpt, "save_checkpoint", real_save)
    assert train(r, out, resume=True, device="cpu").step == 6


def test_jsonl_sink_goes_quiet_when_its_reader_is_gone():
    class Gone:
        def write(self, text: str) -> int:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

        def flush(self) -> None:
            pass

    sink = JsonlSink(Gone())
    sink({"event": "step", "step": 1})  # no exception: training goes on
    assert sink.closed
    sink({"event": "error", "message": "x"})
    assert sink.errored


# --------------------------------------------------------------------------- evaluation


def test_a_folder_model_is_measured_on_its_held_out_files(tmp_path):
    from core.evaluation.evaluate import EvaluationError, evaluate

    folder = make_folder(tmp_path / "pics", 40)
    r = folder_recipe(folder, "data.held_out=0.25", "train.steps=3")
    weights = train(r, tmp_path / "run", device="cpu").weights
    held = len(held_out_split([f"p{i:03d}.jpg" for i in range(40)], 0.25))
    result = evaluate(weights, n=500, device="cpu")
    m = result["metrics"]
    assert result["n"] == held and m["images"] == held
    assert 5 < m["recon_psnr"] < 60 and "fjd" not in m  # no judge applies to a folder
    judged = evaluate(weights, n=500, device="cpu", judge="faces")["metrics"]
    assert judged["fjd"] > 0 and f"{held} held-out files" in judged["fjd_note"]
    all_files = folder_recipe(folder, "train.steps=1")
    w2 = train(all_files, tmp_path / "run2", device="cpu", name="all").weights
    with pytest.raises(EvaluationError, match="nothing was held out"):
        evaluate(w2, n=10, device="cpu")


def test_easel_train_with_eval_writes_figures_into_the_card(tmp_path, capsys):
    from core.cli import main
    from core.weights import read_card

    folder = make_folder(tmp_path / "pics", 30)
    out = tmp_path / "run"
    out.mkdir()
    code = main(["train", "user_vae", "--data", str(folder), "--size", "16", "--steps", "3",
                 "--set", "model.base=8", "--set", "data.held_out=0.3", "--out", str(out),
                 "--weights-dir", str(tmp_path / "w"), "--progress", "jsonl", "--eval", "50",
                 "--device", "cpu"])
    assert code == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in events][-2:] == ["evaluating", "eval"]
    card = read_card(tmp_path / "w" / "user_vae.safetensors")
    assert card.metrics["recon_psnr"] == events[-1]["metrics"]["recon_psnr"]
    assert card.config["image_size"] == 16 and "--size 16" in card.command
    assert runs.read_pid(out) == os.getpid()  # the process said who it is first thing


# --------------------------------------------------------------------------- run folders


def test_requests_are_checked_before_a_run_starts(tmp_path):
    folder = make_folder(tmp_path / "pics", 2)
    ok = runs.TrainRequest("vae", str(folder), 64, minutes=10, name="vae_pics")
    ok.check()
    for bad, words in (({"family": "gan"}, "Unknown model family"), ({"size": 48}, "64"),
                       ({"minutes": 0}, "budget"), ({"steps": 5}, "budget"),
                       ({"name": "../x"}, "cannot name"),
                       ({"folder": str(tmp_path / "nope")}, "does not exist"),
                       ({"family": "style_fast", "size": 128}, "painting")):
        req = runs.TrainRequest(**{**ok.__dict__, **bad})
        with pytest.raises(runs.RunError, match=words):
            req.check()
    assert runs.default_name("vae", "/x/My holiday pics!") == "vae_My_holiday_pics"


def test_new_run_records_how_to_start_and_resume_it(tmp_path):
    folder = make_folder(tmp_path / "pics", 2)
    req = runs.TrainRequest("vae", str(folder), 32, steps=100, name="mine", judge="faces")
    out, args = runs.new_run(req)
    assert out.parent == runs.runs_dir() and runs.read_launch(out)["arguments"] == args
    assert args[:2] == ["train", "user_vae"] and args[args.index("--size") + 1] == "32"
    assert args[args.index("--weights-dir") + 1] == str(runs.weights_dir("vae"))
    assert "--judge" in args and "--steps" in args and "--minutes" not in args
    with pytest.raises(runs.RunError, match="no checkpoint"):
        runs.resume_arguments(out)
    (out / runs.CHECKPOINT).write_bytes(b"x")
    assert runs.resume_arguments(out) == [*args, "--resume"]


def test_event_reader_waits_for_whole_lines(tmp_path):
    reader = runs.EventReader(tmp_path)
    assert reader.read() == []
    path = tmp_path / runs.EVENTS
    path.write_text('{"event": "start", "step": 0}\n{"event": "st')
    assert [e["event"] for e in reader.read()] == ["start"]
    with path.open("a") as f:
        f.write('ep", "step": 5}\nnot json\n{"event": "done", "interrupted": true, "step": 5}\n')
    assert [e["event"] for e in reader.read()] == ["step", "done"]


def write_events(out: Path, *events: dict) -> None:
    with (out / runs.EVENTS).open("a") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")


def test_run_state_tells_what_became_of_a_run(tmp_path):
    folder = make_folder(tmp_path / "pics", 2)
    out, _ = runs.new_run(runs.TrainRequest("vae", str(folder), 64, steps=9, name="m"))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / runs.PID).write_text(str(dead.pid))
    write_events(out, {"event": "start", "step": 0, "total": 9},
                 {"event": "step", "step": 4, "total": 9, "losses": {"loss": 1.0}})
    killed = runs.run_state(out)
    assert (killed.state, killed.step, killed.resumable) == ("killed", 4, False)
    (out / runs.CHECKPOINT).write_bytes(b"x")
    assert runs.run_state(out).resumable
    (out / runs.PID).write_text(str(os.getpid()))  # a process that lives
    assert runs.run_state(out).state == "running"
    write_events(out, {"event": "done", "step": 6, "interrupted": True})
    (out / runs.PID).write_text(str(dead.pid))
    assert runs.run_state(out).state == "paused"
    write_events(out, {"event": "start", "step": 6, "total": 9},
                 {"event": "done", "step": 9, "interrupted": False, "weights": "/m.safetensors"},
                 {"event": "evaluating"},
                 {"event": "eval", "metrics": {"recon_psnr": 20.5}})
    done = runs.run_state(out)
    assert (done.state, done.weights, done.metrics) == ("finished", "/m.safetensors",
                                                        {"recon_psnr": 20.5})
    write_events(out, {"event": "start", "step": 9, "total": 20},
                 {"event": "error", "message": "the disk is full"})
    assert (runs.run_state(out).state, runs.run_state(out).message) == ("failed",
                                                                       "the disk is full")
    assert [r.out for r in runs.list_runs()] == [out]


def test_pid_alive_and_log_tail(tmp_path):
    assert runs.pid_alive(os.getpid()) and not runs.pid_alive(None)
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    assert not runs.pid_alive(p.pid)
    (tmp_path / runs.LOG).write_text("\n".join(f"line {i}" for i in range(40)) + "\n\n")
    assert runs.log_tail(tmp_path, 3) == ["line 37", "line 38", "line 39"]
    assert runs.log_tail(tmp_path / "none") == []


def test_odd_and_huge_pictures_train_or_are_set_aside_with_a_reason(tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "pics", 8)
    rgb = np.asarray(Image.open(folder / "p000.jpg").convert("RGB"))
    Image.fromarray(rgb).convert("P").save(folder / "palette.png")
    Image.fromarray(rgb).convert("L").save(folder / "grey.png")
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray(rgb).convert("RGBA").save(folder / "alpha.webp")
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(folder / "deep.png")
    Image.new("RGB", (300, 300), (9, 9, 9)).save(folder / "huge.png")
    monkeypatch.setenv("EASEL_MAX_PIXELS", "50000")  # 300 x 300 is "huge" here
    events: list[dict] = []
    Trainer(folder_recipe(folder, "train.steps=2", "data.min_images=8"), tmp_path / "run",
            device="cpu", emit=events.append).run()
    data = next(e for e in events if e["event"] == "data")
    assert data["used"] == 13 and [s["path"] for s in data["skipped"]] == ["huge.png"]
    assert "pixel" in data["skipped"][0]["reason"] or "large" in data["skipped"][0]["reason"]
