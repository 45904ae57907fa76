"""The inference service and devices: out of memory on an accelerator runs the job again on
the CPU with a note; changing the device empties the model cache."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import pytest
import torch

import core.device
from core.jobs import Context, JobSpec, Progress, Result, pipeline
from core.weights import ModelCache
from desktop.inference.service import InferenceService

DEVICES_SEEN: list[str] = []


@dataclass(frozen=True)
class HungrySpec(JobSpec):
    kind = "test-hungry"


@pipeline("test-hungry")
def run_hungry(spec: HungrySpec, ctx: Context) -> Generator[Progress, None, Result]:
    DEVICES_SEEN.append(ctx.device.type)
    yield Progress(0, 1, "allocating")
    if ctx.device.type != "cpu":
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    yield Progress(1, 1, "done")
    return Result(images=[np.zeros((2, 2, 3), np.uint8)], spec=spec, info={"notes": ["kept"]})


@pytest.fixture
def on_a_gpu(monkeypatch):
    """The service believes a CUDA GPU is there; what freeing and evicting did is recorded."""
    calls: list[tuple[str, str]] = []
    DEVICES_SEEN.clear()
    monkeypatch.setattr(core.device, "pick_device", lambda name=None: torch.device(
        "cpu" if name == "cpu" else "cuda:0"))
    monkeypatch.setattr(core.device, "describe", lambda d: f"{d.type.upper()} (test)")
    monkeypatch.setattr(core.device, "free_memory", lambda d: calls.append(("free", str(d))))
    monkeypatch.setattr(ModelCache, "evict_device",
                        lambda self, d: calls.append(("evict", str(d))))
    monkeypatch.setattr(ModelCache, "clear", lambda self: calls.append(("clear", "")))
    return calls


@pytest.fixture
def gpu_service(qtbot, tmp_path, monkeypatch, on_a_gpu):
    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    svc = InferenceService(device="cuda")
    yield svc
    assert svc.shutdown(5000)


def watch(handle):
    """The handle with its outcome noted in ``handle.outcome`` (connected before it can end)."""
    handle.outcome = None
    handle.finished.connect(lambda r: setattr(handle, "outcome", ("finished", r)))
    handle.failed.connect(lambda m, tb: setattr(handle, "outcome", ("failed", m)))
    return handle


def outcome(qtbot, handle):
    qtbot.waitUntil(lambda: handle.outcome is not None, timeout=10000)
    return handle.outcome


def test_out_of_memory_frees_the_gpu_and_runs_again_on_the_cpu_with_a_note(
        qtbot, gpu_service, on_a_gpu):
    messages = []
    job = watch(gpu_service.submit(HungrySpec()))  # the note comes after the first failure
    job.progress.connect(lambda s, t, m: messages.append(m))
    kind, result = outcome(qtbot, job)
    assert kind == "finished" and DEVICES_SEEN == ["cuda", "cpu"]
    assert ("evict", "cuda:0") in on_a_gpu and ("free", "cuda:0") in on_a_gpu
    note = result.info["notes"][-1]
    assert result.info["notes"][0] == "kept" and "ran again on the CPU" in note
    assert "CUDA ran out of memory" in note
    qtbot.waitUntil(lambda: note in messages, timeout=5000)  # shown while it runs again


def test_changing_the_device_empties_the_model_cache(qtbot, gpu_service, on_a_gpu):
    gpu_service.set_device("cpu")
    assert outcome(qtbot, watch(gpu_service.submit(HungrySpec())))[0] == "finished"
    assert ("clear", "") not in on_a_gpu  # the first job: nothing cached yet
    gpu_service.set_device("cuda")
    assert outcome(qtbot, watch(gpu_service.submit(HungrySpec())))[0] == "finished"
    assert ("clear", "") in on_a_gpu and ("free", "cpu") in on_a_gpu
