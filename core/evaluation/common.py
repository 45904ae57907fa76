"""What the families' evaluators (core/evaluation/evaluate.py and the modules beside it) share:
the registry ``evaluate`` finds a family's evaluator in, the held-out data a model is measured
on, and FJD by a world's judge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.evaluation import metrics
from core.judges import features, load_judge
from core.weights import ModelCard

# Judge accuracy and FJD use held-out seeds from 0; GenEval prompts use their own block
# (geneval.PROMPT_OFFSET), and generated-vs-real FJD uses this one for its real images.
FJD_REAL_OFFSET = 10_000_000
BATCH = 250


class EvaluationError(ValueError):
    """A model that cannot be evaluated (unknown name, a family without metrics yet, ...)."""


Evaluator = Callable[[Path, ModelCard, int, torch.device], dict[str, Any]]
EVALUATORS: dict[str, Evaluator] = {}


def evaluator(family: str) -> Callable[[Evaluator], Evaluator]:
    def deco(fn: Evaluator) -> Evaluator:
        EVALUATORS[family] = fn
        return fn

    return deco


# --------------------------------------------------------------------------- held-out data


def held_out_renders(world_name: str, n: int, size: int, offset: int = 0) -> list[Any]:
    from core.data.worlds import get_world, split_seeds

    world = get_world(world_name)
    return [world.render(s, size=size) for s in split_seeds("held_out", n, offset)]


def world_of(card: ModelCard) -> str:
    """The world a model was trained on, from the resolved recipe the trainer stores."""
    data = _source_of(card)
    if data not in ("faces", "scenes"):
        raise EvaluationError(f"{card.name} was trained on {data!r}; FJD needs the judge of a "
                              "procedural world (faces or scenes).")
    return data


def _source_of(card: ModelCard) -> str:
    recipe = card.extra.get("recipe_resolved", {})
    data = recipe.get("data", {}).get("source", "") if isinstance(recipe, dict) else ""
    return data or (card.data.split() or [""])[0]


@dataclass
class HeldOut:
    """What a model is measured on: held-out renders of the world it was trained on, or the
    held-out files of its folder (core.data.folder.held_out_split). ``judge`` names the world
    whose judge computes FJD; None for a folder unless one was asked for (``easel eval
    --judge``), since a judge only knows its own world."""

    source: str
    judge: str | None
    fit: str = "crop"
    fraction: float = 0.0

    @property
    def is_world(self) -> bool:
        return self.source in ("faces", "scenes")

    def images(self, n: int, size: int) -> np.ndarray:
        """Up to ``n`` held-out pictures at ``size`` (a folder may hold fewer)."""
        if self.is_world:
            return np.stack([s.image for s in held_out_renders(self.source, n, size)])
        from core.data.folder import FolderError, FolderWorld, held_out_split

        try:
            folder = FolderWorld(self.source, size=size, fit=self.fit, flip=False,
                                 cache_bytes=0)
        except FolderError as exc:
            raise EvaluationError(f"cannot read the training folder: {exc}") from None
        held = held_out_split([f.relative_to(folder.root).as_posix() for f in folder.files],
                              self.fraction)
        picks = sorted(held)[:n]
        if len(picks) < 2:
            raise EvaluationError(f"{self.source} has {len(picks)} held-out file(s); "
                                  "evaluation needs at least 2.")
        return np.stack([folder.load(i).image for i in picks])

    def fjd(self, generated: np.ndarray, real: np.ndarray | None, device: torch.device
            ) -> dict[str, Any]:
        """FJD of ``generated`` by the judge (empty when none applies): against the held-out
        files of a folder (``real``), or fresh held-out renders of a world."""
        if self.judge is None:
            return {}
        if self.is_world or real is None:
            return world_fjd(self.judge, generated, len(generated), device)
        judge = load_judge(self.judge, device)
        value = metrics.fjd_from_features(features(judge, generated), features(judge, real))
        return {"fjd": value, "fjd_note": metrics.FJD_NOTE + f" (real: {len(real)} held-out "
                f"files, judge: {self.judge})"}


def held_out_of(card: ModelCard) -> HeldOut:
    """The held-out data of a model's card (its resolved recipe's data section)."""
    source = _source_of(card)
    if source in ("faces", "scenes"):
        return HeldOut(source, source)
    recipe = card.extra.get("recipe_resolved", {})
    data = recipe.get("data", {}) if isinstance(recipe, dict) else {}
    fraction = float(data.get("held_out", 0.0) or 0.0)
    if not source or not Path(source).is_dir():
        raise EvaluationError(f"{card.name} was trained on {source!r}, which is not a world "
                              "and not a folder here.")
    if fraction <= 0:
        raise EvaluationError(f"{card.name} was trained on every file of {source}; nothing was "
                              "held out to measure on.")
    judge = card.extra.get("judge")
    return HeldOut(source, judge if judge in ("faces", "scenes") else None,
                   str(data.get("fit", "crop")), fraction)


def world_fjd(world: str, generated: np.ndarray, n: int, device: torch.device) -> dict[str, Any]:
    judge = load_judge(world, device)
    renders = held_out_renders(world, n, generated.shape[1], FJD_REAL_OFFSET)
    real = np.stack([s.image for s in renders])
    value = metrics.fjd_from_features(features(judge, generated), features(judge, real))
    return {"fjd": value, "fjd_note": metrics.FJD_NOTE}
