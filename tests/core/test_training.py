"""The trainer: recipes, one loop for both families, determinism, interrupt and exact resume,
atomic checkpoints, progress events and the exported weights."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from typing import ClassVar

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from core.cli import main
from core.data.worlds import Sample, register_world
from core.training import checkpoint as ckpt
from core.training.data import StepBatches, batches
from core.training.recipe import RecipeError, load_recipe, parse_override
from core.training.task import TrainingError
from core.training.trainer import train
from core.weights import load_model, read_card


class _Blobs:
    """A fast fake world: a seed-dependent colour gradient with one label."""

    name = "test_blobs"
    attributes: ClassVar[dict[str, list[str]]] = {"warm": ["no", "yes"]}

    def render(self, seed: int, size: int = 64) -> Sample:
        rng = np.random.default_rng(seed)
        c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        t = np.linspace(0, 1, size)[None, :, None]
        img = (c0 * (1 - t) + c1 * t).repeat(size, 0).astype(np.uint8)
        return Sample(img, {"warm": "yes" if c0[0] > 128 else "no"}, None, seed)


register_world("test_blobs")(_Blobs)

FAST = ["data.source=\"test_blobs\"", "data.workers=0"]


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("EASEL_DEVICE", raising=False)
    # Tiny nets run fastest on one thread, and the CI machine's 2 cores are shared.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def recipe(name: str = "tiny_vae", *extra: str):
    return load_recipe(name, [*FAST, *extra])


def losses_of(out) -> list[dict[str, str]]:
    with open(out / "losses.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    drop = ("wall_time_s", "images_per_s")
    return [{k: v for k, v in r.items() if k not in drop} for r in rows]


def assert_same_weights(a, b) -> None:
    # Compare tensors, not file hashes: safetensors may order its header metadata differently.
    ta, tb = load_file(a), load_file(b)
    assert ta.keys() == tb.keys()
    assert all(torch.equal(ta[k], tb[k]) for k in ta)


# --------------------------------------------------------------------------- recipes


@pytest.mark.parametrize(("override", "message"), [
    ("train.lrr=1", "unknown recipe key 'train.lrr'"),
    ("train.lr=\"fast\"", "'train.lr' must be a number"),
    ("train.steps=1.5", "'train.steps' must be an integer"),
    ("train.amp=1", "'train.amp' must be true or false"),
    ("model.base=\"x\"", "'model.base' must be an integer"),
    ("model.colour=1", "unknown recipe key 'model.colour'"),
    ("task.gamma=1", "unknown recipe key 'task.gamma'"),
    ("colour=1", "unknown recipe key 'colour'"),
    ("train.batch_size=0", "'train.batch_size' must be at least 1"),
    ("train.lr=nan", "'train.lr' must be a finite number"),
    ("train.betas=[0.5, inf]", "'train.betas' must be a finite number"),
    ("train.weight_decay=-1", "'train.weight_decay' must not be negative"),
    ("train.grad_clip=-0.5", "'train.grad_clip' must not be negative"),
    ("task.kl_warmup_steps=-1", "task.kl_warmup_steps must not be negative"),
    ("data.fit=\"stretch\"", "'data.fit' must be \"crop\" or \"pad\""),
    ("family=\"nope\"", "unknown training family 'nope'"),
])
def test_recipe_errors_name_the_key(override, message):
    with pytest.raises(TrainingError) as info:
        load_recipe("tiny_vae", [override])
    text = str(info.value)
    assert message in text and "\n" not in text


def test_overrides_are_toml_values_or_strings():
    assert parse_override("train.lr=1e-3") == (["train", "lr"], 1e-3)
    assert parse_override("train.betas=[0.5, 0.9]") == (["train", "betas"], [0.5, 0.9])
    assert parse_override("data.source=/some/folder") == (["data", "source"], "/some/folder")
    with pytest.raises(RecipeError):
        parse_override("train.lr")
    r = load_recipe("tiny_dcgan", ["train.lr=1e-3", "train.steps=3"])
    assert r.train.lr == 1e-3 and r.train.steps == 3
    assert r.to_dict()["model"]["spectral_norm"] is False  # defaults are resolved


def test_unknown_recipe_is_a_clear_error(tmp_path):
    with pytest.raises(RecipeError, match="no recipe 'nope'"):
        load_recipe("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [", encoding="utf-8")
    with pytest.raises(RecipeError, match="not valid TOML"):
        load_recipe(str(bad))


# --------------------------------------------------------------------------- data


def test_ranks_split_each_step_and_workers_render_the_same():
    r = recipe()
    whole = StepBatches(r.data, r.seed, 8)
    halves = [StepBatches(r.data, r.seed, 8, rank, 2) for rank in (0, 1)]
    assert whole[3]["seeds"] == halves[0][3]["seeds"] + halves[1][3]["seeds"]
    assert whole[3]["seeds"] != whole[4]["seeds"]
    ahead = [b["seeds"] for b in batches(whole, 2, 5, workers=1, prefetch=2)]
    assert ahead == [whole[s]["seeds"] for s in (2, 3, 4)]
    cycled = StepBatches(load_recipe("tiny_vae", [*FAST, "data.images=12"]).data, 0, 8)
    seen = {s for step in range(3) for s in cycled[step]["seeds"]}
    assert len(seen) == 12  # 24 positions over 12 fixed images: two epochs, each a permutation


class _Noisy:
    """A batch source whose worker writes to stderr, as an orphaned worker does when the
    trainer dies under it (a connection reset)."""

    def __getitem__(self, step: int) -> dict:
        os.write(2, f"worker noise {step}\n".encode())
        return {"step": step}


def test_render_workers_write_to_a_log_of_their_own(tmp_path, capfd):
    # The run's train.log is the trainer's stderr: a killed run shows its tail, and what
    # workers print after the trainer died must not push the trainer's last words out of it.
    log = tmp_path / "workers.log"
    got = [b["step"] for b in batches(_Noisy(), 0, 3, workers=1, prefetch=2, worker_log=log)]
    assert got == [0, 1, 2]
    assert "worker noise 2" in log.read_text()
    assert "worker noise" not in capfd.readouterr().err


def test_render_workers_get_a_core_of_their_own_on_the_cpu(monkeypatch):
    from core.training.trainer import render_workers

    r = load_recipe("tiny_vae", ["data.workers=2"])
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    torch.set_num_threads(2)  # every core busy with torch: render in the loop
    assert render_workers(r, cpu, 0) == 0 and render_workers(r, cuda, 0) == 2
    torch.set_num_threads(1)  # the autouse fixture restores the count
    assert render_workers(r, cpu, 0) == 1 and render_workers(r, cpu, r.train.steps) == 0


# --------------------------------------------------------------------------- training


@pytest.mark.parametrize("family", ["tiny_dcgan", "tiny_vae"])
def test_each_family_trains_and_exports(tmp_path, family):
    events = []
    result = train(recipe(family, "train.steps=3"), tmp_path / "run", emit=events.append,
                   device="cpu", command="easel train test")
    assert result.step == 3 and not result.interrupted
    assert all(np.isfinite(v) for v in result.last_losses.values())
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and "checkpoint" in kinds
    model = load_model(result.weights)
    card = read_card(result.weights)
    assert card.recipe == family and card.steps == 3 and card.command == "easel train test"
    assert card.extra["recipe_resolved"]["train"]["steps"] == 3 and card.metrics == {}
    assert card.device.startswith("CPU") and "test_blobs" in card.data
    assert (tmp_path / "run" / "samples" / "step_000003.png").is_file()
    with torch.no_grad():
        if family == "tiny_dcgan":
            assert model(torch.zeros(1, 16)).shape == (1, 3, 16, 16)
        else:
            assert model(torch.zeros(1, 3, 16, 16))[0].shape == (1, 3, 16, 16)


def test_vae_loss_goes_down(tmp_path):
    result = train(recipe("tiny_vae", "train.steps=25", "train.checkpoint_every=100",
                          "train.sample_every=100"), tmp_path / "run", device="cpu")
    rows = losses_of(tmp_path / "run")
    assert float(rows[-1]["recon"]) < 0.8 * float(rows[0]["recon"])
    assert result.step == 25


def test_two_runs_give_the_same_losses(tmp_path):
    for i in (1, 2):
        train(recipe("tiny_dcgan"), tmp_path / f"r{i}", device="cpu")
    assert losses_of(tmp_path / "r1") == losses_of(tmp_path / "r2")
    assert_same_weights(tmp_path / "r1" / "tiny_dcgan.safetensors",
                        tmp_path / "r2" / "tiny_dcgan.safetensors")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_interrupt_and_resume_matches_an_uninterrupted_run(tmp_path, sig):
    # log_every=2: the run stops at step 3, which is not a log step and gets no CSV row.
    r = recipe("tiny_dcgan", "train.steps=7", "train.checkpoint_every=100", "train.log_every=2")
    train(r, tmp_path / "full", device="cpu")

    def stop_at_2(event):
        if event["event"] == "step" and event["step"] == 2:
            os.kill(os.getpid(), sig)  # the real signal path: finish the step, checkpoint

    events = []
    part = train(r, tmp_path / "part", device="cpu", emit=lambda e: (events.append(e),
                                                                      stop_at_2(e)))
    assert part.interrupted and part.weights is None and part.step in (2, 3)
    assert events[-1]["event"] == "done" and events[-1]["step"] == part.step
    assert events[-1]["losses"]  # the stop step's losses are reported even when not logged
    assert ckpt.read_checkpoint(tmp_path / "part")[0]["step"] == part.step
    done = train(r, tmp_path / "part", device="cpu", resume=True)
    assert done.step == 7 and not done.interrupted
    assert losses_of(tmp_path / "part") == losses_of(tmp_path / "full")
    assert_same_weights(tmp_path / "full" / "tiny_dcgan.safetensors",
                        tmp_path / "part" / "tiny_dcgan.safetensors")  # EMA weights included


def test_failed_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    out = tmp_path / "run"
    train(recipe("tiny_vae", "train.steps=3"), out, device="cpu")
    before = (out / ckpt.NAME).read_bytes()

    real_replace = os.replace

    def no_space(src, dst):
        if str(dst).endswith(ckpt.NAME):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(ckpt.CheckpointError, match="previous checkpoint"):
        train(recipe("tiny_vae", "train.steps=6"), out, device="cpu", resume=True)
    monkeypatch.undo()
    assert (out / ckpt.NAME).read_bytes() == before
    assert ckpt.read_checkpoint(out)[0]["step"] == 3
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_resume_applies_new_optimizer_settings(tmp_path):
    out = tmp_path / "run"
    train(recipe("tiny_vae", "train.steps=3"), out, device="cpu")
    train(recipe("tiny_vae", "train.steps=4", "train.lr=5e-4", "train.betas=[0.5, 0.9]",
                 "train.weight_decay=0.01"), out, device="cpu", resume=True)
    group = ckpt.read_checkpoint(out)[0]["optimizers"]["vae"]["param_groups"][0]
    assert group["lr"] == 5e-4 and list(group["betas"]) == [0.5, 0.9]
    assert group["weight_decay"] == 0.01


def test_a_non_finite_model_never_replaces_the_last_checkpoint(tmp_path, monkeypatch):
    from core.training.families.vae import VAETask

    real_step = VAETask.training_step

    def breaks_at_step_2(self, batch, step):
        losses = real_step(self, batch, step)
        if step >= 2:  # step 3 (not logged, log_every=5) makes the model NaN
            with torch.no_grad():
                for p in self.vae.parameters():
                    p.fill_(float("nan"))
            losses = {k: torch.tensor(float("nan")) for k in losses}
        return losses

    monkeypatch.setattr(VAETask, "training_step", breaks_at_step_2)
    out = tmp_path / "run"
    with pytest.raises(TrainingError, match="became nan at step 4"):
        train(recipe("tiny_vae", "train.steps=6", "train.log_every=5",
                     "train.checkpoint_every=2"), out, device="cpu")
    meta, tensors = ckpt.read_checkpoint(out)
    assert meta["step"] == 2
    assert all(torch.isfinite(v).all() for k, v in tensors.items() if v.is_floating_point())


def test_out_of_memory_anywhere_is_one_clear_line(tmp_path, monkeypatch):
    from core.training.task import Task

    def oom(self, decay):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Task, "make_ema", oom)
    with pytest.raises(TrainingError, match=r"out of memory on .* smaller batch \(--batch-size 4"):
        train(recipe("tiny_vae", "train.batch_size=8"), tmp_path / "run", device="cpu")


def test_resume_refuses_another_architecture(tmp_path):
    out = tmp_path / "run"
    train(recipe("tiny_vae", "train.steps=3"), out, device="cpu")
    with pytest.raises(ckpt.CheckpointError, match="checkpoint of a 'vae' model"):
        train(recipe("tiny_dcgan"), out, device="cpu", resume=True)
    with pytest.raises(ckpt.CheckpointError, match="model settings differ: base"):
        train(recipe("tiny_vae", "model.base=4"), out, device="cpu", resume=True)
    with pytest.raises(TrainingError, match="already holds a training run"):
        train(recipe("tiny_vae"), out, device="cpu")
    with pytest.raises(TrainingError, match="nothing to resume"):
        train(recipe("tiny_vae"), tmp_path / "empty", device="cpu", resume=True)


def test_checkpoint_is_not_a_pickle_and_bad_files_are_refused(tmp_path):
    out = tmp_path / "run"
    train(recipe("tiny_vae", "train.steps=3"), out, device="cpu")
    meta, tensors = ckpt.read_checkpoint(out)
    assert meta["step"] == 3 and meta["optimizers"]["vae"]["param_groups"][0]["lr"] == 1e-3
    assert any(k.startswith("optim.vae.") for k in tensors) and "rng.torch" in tensors
    (out / ckpt.NAME).write_bytes(b"\x80\x04not a checkpoint")
    with pytest.raises(ckpt.CheckpointError, match="not an Easel training checkpoint"):
        ckpt.read_checkpoint(out)


def test_folder_data_trains(tmp_path):
    from core.imageio import save_png

    folder = tmp_path / "pictures"
    (folder / "sub").mkdir(parents=True)
    for i in range(3):
        img = np.full((20, 30, 3), 60 * i, np.uint8)
        img[:, :, 0] = np.arange(30) * 8  # wide and not flat: padding differs from cropping
        save_png(folder / ("sub" if i else ".") / f"p{i}.png", img)
    (folder / "broken.png").write_bytes(b"not a png")
    r = load_recipe("tiny_vae", [f"data.source={json.dumps(str(folder))}", "data.flip=true",
                                 "train.steps=2"])
    events = []
    result = train(r, tmp_path / "run", device="cpu", emit=events.append)
    assert [e["event"] for e in events][:2] == ["start", "data"]
    data = events[1]
    assert data["files"] == data["used"] == 3 and data["source"] == str(folder)
    assert [s["path"] for s in data["skipped"]] == ["broken.png"] and data["skipped"][0]["reason"]
    text = read_card(result.weights).data
    assert result.step == 2 and f"3 images from {folder}, cycled in seeded epochs" in text
    assert "1 file skipped" in text and "fresh training-seed renders" not in text
    with pytest.raises(TrainingError, match="inside the data folder"):
        train(r, folder / "runs" / "one", device="cpu")
    assert not (folder / "runs").exists()
    pad = load_recipe("tiny_vae", [f"data.source={json.dumps(str(folder))}", "data.fit=\"pad\""])
    crop = load_recipe("tiny_vae", [f"data.source={json.dumps(str(folder))}"])
    padded, cropped = StepBatches(pad.data, 0, 2), StepBatches(crop.data, 0, 2)
    assert padded.source.folder.fit == "pad" and cropped.source.folder.fit == "crop"
    assert not torch.equal(padded[0]["images"], cropped[0]["images"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RecipeError, match="No usable images"):
        train(load_recipe("tiny_vae", [f"data.source={json.dumps(str(empty))}"]),
              tmp_path / "run2", device="cpu")


# --------------------------------------------------------------------------- command line


def test_cli_jsonl_progress(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "tiny_vae", "--data", "test_blobs", "--steps", "4", "--out", str(out),
                 "--progress", "jsonl", "--device", "cpu", "--set", "train.log_every=2"])
    assert code == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in events if e["event"] == "step"] == ["step", "step"]
    step = next(e for e in events if e["event"] == "step")
    assert {"step", "total", "losses", "images_per_s", "eta_s"} <= set(step)
    assert events[-1]["event"] == "done" and events[-1]["weights"].endswith("tiny_vae.safetensors")
    card = read_card(out / "tiny_vae.json")
    assert "--steps 4" in card.command and "--data test_blobs" in card.command


def test_bar_sink_prints_the_folder_scan():
    import io

    from core.cli.train_progress import BarSink

    stream = io.StringIO()
    BarSink(stream)({"event": "data", "source": "/pics", "files": 3, "used": 3,
                     "skipped": [{"path": "a.png", "reason": "truncated"}],
                     "summary": "1 file skipped (a.png: truncated)"})
    assert stream.getvalue() == "Data: 3 images from /pics; 1 file skipped (a.png: truncated)\n"


def test_ctrl_c_on_the_command_line_then_resume(tmp_path):
    """A terminal Ctrl-C (SIGINT to the whole process group, render worker included) stops the
    run with a checkpoint; --resume finishes it with the loss curve of an uninterrupted run."""
    env = dict(os.environ, EASEL_HOME=str(tmp_path / "home"), OMP_NUM_THREADS="1")
    env.pop("WORLD_SIZE", None)
    args = ["train", "tiny_vae", "--steps", "30", "--device", "cpu", "--progress", "jsonl",
            "--set", "data.workers=1", "--set", "train.checkpoint_every=1000"]
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "core", *args, "--out", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    for line in proc.stdout:
        if json.loads(line).get("step") == 3:
            os.killpg(proc.pid, signal.SIGINT)
            break
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err and '"interrupted": true' in rest
    stopped = ckpt.read_checkpoint(out)[0]["step"]
    assert 3 <= stopped < 30
    resumed = subprocess.run([sys.executable, "-m", "core", *args, "--out", str(out),
                              "--resume"], env=env, capture_output=True, text=True, timeout=60,
                             check=False)
    assert resumed.returncode == 0, resumed.stderr
    train(load_recipe("tiny_vae", ["train.steps=30", "train.checkpoint_every=1000"]),
          tmp_path / "full", device="cpu")
    assert losses_of(out) == losses_of(tmp_path / "full")
    assert_same_weights(out / "tiny_vae.safetensors", tmp_path / "full" / "tiny_vae.safetensors")
    assert main(["train", "tiny_dcgan", "--out", str(out), "--resume"]) == 2  # another recipe


def test_cli_errors_are_one_line(tmp_path, capsys):
    code = main(["train", "tiny_vae", "--set", "train.lr=fast", "--progress", "jsonl"])
    captured = capsys.readouterr()
    assert code == 2
    assert json.loads(captured.out.strip())["event"] == "error"
    assert captured.err.count("\n") == 1 and "train.lr" in captured.err
    assert main(["train", "tiny_vae", "--resume"]) == 2
    assert "--resume needs --out" in capsys.readouterr().err
    assert main(["train", "tiny_vae", "--data", str(tmp_path / "nowhere"), "--out",
                 str(tmp_path / "r")]) == 2
    assert "neither a world" in capsys.readouterr().err
    assert main(["train", "tiny_vae", "--set", "train.weight_decay=-1", "--out",
                 str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "'train.weight_decay' must not be negative" in err and err.count("\n") == 1


def test_interrupted_hint_is_printed_by_rank_0_only(tmp_path, capsys, monkeypatch):
    from core.training import trainer
    from core.training.trainer import TrainResult

    class Stopped:
        def __init__(self, recipe, out, **kwargs):
            self.out = out

        def run(self):
            return TrainResult(self.out, 3, 7, None, True, 1.0, {})

    monkeypatch.setattr(trainer, "Trainer", Stopped)
    for rank, hinted in (("1", False), ("0", True)):
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("RANK", rank)
        assert main(["train", "tiny_vae", "--out", str(tmp_path / "r")]) == 130
        assert ("--resume" in capsys.readouterr().err) == hinted
