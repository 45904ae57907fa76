"""A tiny random-weight one-pass style net installed as a user model, for pipeline, CLI and
panel tests: saved with the real save_model and card format under the name the one-pass path
uses by default, so the pipeline treats it exactly like a trained one."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from core.nets.adain import AdaINConfig, AdaINNet
from core.specs.style import ONE_PASS_FAMILY, ONE_PASS_MODEL
from core.weights import ModelCard, save_model

TINY = AdaINConfig(layer=3, width=0.25, style="random weights (tests)")


def install_one_pass(home: Path, name: str = ONE_PASS_MODEL) -> Path:
    """Save the net into ``<home>/models/style_onepass`` (``home``: the test's EASEL_HOME)."""
    torch.manual_seed(0)
    net = AdaINNet(TINY).eval()
    card = ModelCard(name=name, family=ONE_PASS_FAMILY, architecture="adain",
                     config=dataclasses.asdict(TINY), recipe="tiny_style_onepass")
    return save_model(home / "models" / ONE_PASS_FAMILY, name, net, card)
