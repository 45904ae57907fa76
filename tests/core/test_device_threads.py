"""The CPU thread rule: every core on a quiet machine, fewer on a busy one (a core kept free)."""

from __future__ import annotations

import os

import pytest
import torch

from core import device
from core.device import cpu_threads, machine_load, threads_for_load, use_cpu_threads


@pytest.mark.parametrize("cores", [1, 2, 4, 16])
def test_a_quiet_machine_gets_every_core(cores):
    assert threads_for_load(0.0, cores) == cores
    assert threads_for_load(0.3, cores) == cores
    assert threads_for_load(None, cores) == cores  # no load figure (Windows): as before


@pytest.mark.parametrize("cores,load", [(2, 1.0), (2, 2.0), (2, 7.5), (4, 1.0), (4, 3.0),
                                        (8, 2.0), (16, 4.0), (16, 30.0)])
def test_a_busy_machine_gets_the_free_cores_less_one(cores, load):
    n = threads_for_load(load, cores)
    assert 1 <= n < cores
    assert n <= max(1, cores - load - 1 + 0.25)  # never more threads than cores left free


def test_cpu_threads_reads_the_load_average_where_no_instant_count(monkeypatch):
    monkeypatch.setattr(device, "usable_cores", lambda: 2)
    monkeypatch.setattr(device, "_runnable_now", lambda: None)  # not Linux
    monkeypatch.setattr(os, "getloadavg", lambda: (2.1, 1.0, 0.5), raising=False)
    assert machine_load() == 2.1 and cpu_threads() == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 1.0, 0.5), raising=False)
    assert cpu_threads() == 2


def test_the_instant_count_leaves_out_this_process(monkeypatch):
    monkeypatch.setattr(device, "_runnable_now", lambda: 3)  # two others and the reader
    monkeypatch.setattr(device, "_own_running_threads", lambda: 1)
    assert machine_load(samples=2, interval_s=0) == 2


def test_use_cpu_threads_sets_torch_and_never_exceeds_the_given_count(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr(device, "usable_cores", lambda: 4)
    try:
        monkeypatch.setattr(device, "machine_load", lambda: 0.0)
        assert use_cpu_threads(3) == 3 and torch.get_num_threads() == 3
        monkeypatch.setattr(device, "machine_load", lambda: 3.0)
        assert use_cpu_threads(3) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
