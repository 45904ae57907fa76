"""Procedural worlds: deterministic functions of a seed that render a labelled image.

Every world renders anti-aliased RGB at any size and returns a :class:`Sample` with its labels.
Splits are by seed: training draws seeds from ``TRAIN``; every evaluation uses the fixed
held-out seeds of ``HELD_OUT`` (and tuning uses ``VALIDATION``), so no evaluated image was ever
trained on.

    world = get_world("faces")
    sample = world.render(seed=7, size=64)
    sample.image       # (64, 64, 3) uint8
    sample.labels      # {"smiling": "smiling", "hair_colour": "blond", ...}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

# Seed ranges of the splits. Held-out and validation seeds never overlap the training range.
TRAIN = range(1_000_000_000)
VALIDATION = range(1_000_000_000, 1_100_000_000)
HELD_OUT = range(2_000_000_000, 2_100_000_000)
SPLITS = {"train": TRAIN, "validation": VALIDATION, "held_out": HELD_OUT}


@dataclass(frozen=True)
class Sample:
    image: np.ndarray  # (H, W, 3) uint8
    labels: dict[str, Any] = field(default_factory=dict)
    caption: str | None = None
    seed: int = 0


class World(Protocol):
    name: str
    # Categorical labels a judge learns: label name -> its classes, in a fixed order.
    attributes: dict[str, list[str]]

    def render(self, seed: int, size: int = 64) -> Sample: ...


_WORLDS: dict[str, Callable[[], World]] = {}


def register_world(name: str) -> Callable[[Callable[[], World]], Callable[[], World]]:
    def deco(factory: Callable[[], World]) -> Callable[[], World]:
        _WORLDS[name] = factory
        return factory

    return deco


def get_world(name: str) -> World:
    import core.data  # noqa: F401  (importing registers the worlds)

    try:
        return _WORLDS[name]()
    except KeyError:
        raise KeyError(f"Unknown world {name!r}; known: {', '.join(sorted(_WORLDS))}") from None


def world_names() -> list[str]:
    import core.data  # noqa: F401

    return sorted(_WORLDS)


def split_seeds(split: str, n: int, offset: int = 0) -> list[int]:
    """The first ``n`` seeds of a split (after ``offset``): the same list on every machine."""
    seeds = SPLITS[split]
    if offset + n > len(seeds):
        raise ValueError(f"split {split!r} has only {len(seeds)} seeds")
    return list(seeds[offset:offset + n])
