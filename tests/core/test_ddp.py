"""``easel train`` under torchrun: 2 CPU processes (gloo) give the losses of one process with
the same global batch, and only rank 0 writes files."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest
import torch

from core.training.recipe import load_recipe
from core.training.trainer import train
from core.weights import load_model, read_card

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(),
                                reason="torch built without torch.distributed")


def env(tmp_path) -> dict[str, str]:
    e = dict(os.environ, EASEL_HOME=str(tmp_path / "home"), OMP_NUM_THREADS="1")
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "EASEL_DEVICE"):
        e.pop(k, None)
    return e


def torchrun(tmp_path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "core", "train", *args, "--device", "cpu"]
    return subprocess.run(cmd, env=env(tmp_path), capture_output=True, text=True, timeout=120,
                          check=False)


def rows(out) -> list[dict[str, float]]:
    with open(out / "losses.csv", encoding="utf-8") as f:
        return [{k: float(v) for k, v in r.items() if k not in ("wall_time_s", "images_per_s")}
                for r in csv.DictReader(f)]


def test_two_processes_match_one(tmp_path, monkeypatch):
    run = torchrun(tmp_path, "tiny_vae", "--steps", "4", "--out", str(tmp_path / "ddp"))
    assert run.returncode == 0, run.stderr[-8000:]
    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(load_recipe("tiny_vae", ["train.steps=4"]), tmp_path / "one", device="cpu")
    finally:
        torch.set_num_threads(threads)
    # Same global batch, same noise, averaged gradients: the same run up to float rounding.
    ddp, one = rows(tmp_path / "ddp"), rows(tmp_path / "one")
    assert [r["step"] for r in ddp] == [1, 2, 3, 4]
    for a, b in zip(ddp, one, strict=True):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k] == pytest.approx(b[k], rel=1e-3, abs=1e-4), (a["step"], k)
    # Rank 0 alone wrote the weights, once, with a card saying how it was made.
    weights = sorted(p.name for p in (tmp_path / "ddp").glob("*.safetensors"))
    assert weights == ["checkpoint.safetensors", "tiny_vae.safetensors"]
    card = read_card(tmp_path / "ddp" / "tiny_vae.json")
    assert card.device.endswith("x 2 processes") and card.steps == 4
    load_model(tmp_path / "ddp" / "tiny_vae.safetensors")
    assert run.stderr.count("Wrote ") == 1


def test_gan_trains_under_two_processes(tmp_path):
    out = tmp_path / "gan"
    run = torchrun(tmp_path, "tiny_dcgan", "--steps", "3", "--out", str(out),
                   "--progress", "jsonl")
    assert run.returncode == 0, run.stderr[-8000:]
    assert run.stdout.count('"event": "done"') == 1  # only rank 0 reports
    got = rows(out)
    assert [r["step"] for r in got] == [1, 2, 3]
    assert all(0 < r["d"] < 5 and 0 < r["g"] < 5 for r in got)


def test_a_pause_stops_both_processes_at_the_same_agreed_step(tmp_path):
    """The ranks agree on requests every STOP_CHECK_EVERY steps (one collective), so a pause
    written mid-run stops both at the same multiple of it, with a checkpoint to resume from."""
    import json

    from core.training.runs import CONTROL, PAUSE
    from core.training.trainer import STOP_CHECK_EVERY

    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "core", "train", "tiny_vae", "--steps", "400", "--out", str(out),
           "--device", "cpu", "--progress", "jsonl"]
    proc = subprocess.Popen(cmd, env=env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    events = []
    try:
        for line in proc.stdout:
            if not line.startswith("{"):
                continue
            events.append(json.loads(line))
            if events[-1]["event"] == "step" and not (out / CONTROL).exists():
                (out / CONTROL).write_text(PAUSE)
        proc.wait(timeout=120)
    finally:
        proc.kill()
    done = [e for e in events if e["event"] == "done"]
    assert len(done) == 1 and done[0]["interrupted"], events[-3:]
    assert done[0]["step"] % STOP_CHECK_EVERY == 0 and done[0]["step"] < 400
    assert (out / "checkpoint.safetensors").exists()
