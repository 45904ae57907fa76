"""A tiny random-weight classifier installed as a user model, for the judge pipeline, CLI and
panel tests.

``install(home)`` saves a 16 px judge ("tiny_judge") that reads two attributes into
``<home>/models/judge``, with a card, so the jobs open it exactly like a trained one. Its world
is no procedural world, so no out-of-world fit is computed for it (that takes seconds).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import torch

from core.nets.judge import Judge, JudgeConfig
from core.tensors import to_tensor
from core.weights import ModelCard, save_model

NAME = "tiny_judge"
HEADS = {"glasses": ["none", "glasses"], "mood": ["calm", "happy", "sad"]}


def tiny_judge(world: str = "tests", size: int = 16) -> Judge:
    """Random weights, its BatchNorm statistics measured on 32 pictures (with the initial ones
    a random net reads every picture alike)."""
    torch.manual_seed(0)
    net = Judge(JudgeConfig(world=world, heads=HEADS, width=8, size=size)).train()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # a plain average over the batches
    with torch.no_grad():
        net(to_tensor(np.stack([picture(s) for s in range(32)]), size))
    return net.eval()


def install(home: Path | None = None, name: str = NAME, world: str = "tests",
            size: int = 16) -> Path:
    """Save the tiny judge under ``home`` (default: this test's EASEL_HOME); a judge of a
    procedural world (``world="faces"``, at least 32 px) gets that world's out-of-world fit."""
    home = Path(home or os.environ["EASEL_HOME"])
    net = tiny_judge(world, size)
    card = ModelCard(name=name, family="judge", architecture="judge",
                     config=dataclasses.asdict(net.config), data=world)
    return save_model(home / "models" / "judge", name, net, card)


def picture(seed: int = 0, h: int = 24, w: int = 20) -> np.ndarray:
    """A small smooth picture (blocks of colour), not square."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return np.ascontiguousarray(np.kron(small, np.ones((6, 5, 1), dtype=np.uint8))[:h, :w])
