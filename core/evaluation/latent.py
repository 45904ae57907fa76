"""Latent-space figures for faces models, judged by the faces judge.

- Arithmetic accuracy (Radford et al. 2016, section 6.3): for each attribute, triples of slots
  A, B, C, each the mean of ``k`` latents, where A shows class X of the attribute and B and C
  show class Y (every other attribute random); the decoded mean(A) - mean(B) + mean(C) must be
  read as X. Half the binary triples add the attribute and half remove it. The pixel peer does
  the same sums on the rendered images themselves. The sums' pictures can be read by any
  reader (``arithmetic_scores``; bench/latent.py adds a second one beside the judge), which
  also tells whether each result keeps the other attributes of its C slot.
- Direction edits: latents whose decoded image is read as class Y are moved by one direction
  (``amount`` class gaps, see core.algorithms.directions; 1 gap moves the mean of Y onto the
  mean of X, so only about half of Y crosses) towards X; an edit counts as flipped
  when the judge reads X, and every other attribute is "kept" when the judge reads the same
  class before and after.

Latents with labels come from :func:`core.pipelines.latent.labelled_latents`: a VAE encodes
renders of the held-out split (true labels); a DCGAN's prior samples are labelled by the judge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from core.algorithms import directions as dirs
from core.data.faces import ATTRIBUTES
from core.judges import load_judge, read_faces
from core.pipelines.latent import LatentModel, attribute_directions, labelled_latents

ARITHMETIC = ("smiling", "glasses", "hat", "beard", "hair_colour")
SLOT = 3  # latents averaged per slot, as in the DCGAN paper


def _triples(labels: list[dict[str, str]], attr: str, n: int, rng: np.random.Generator
             ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, str]]:
    """``n`` (A, B, C, target) index triples for ``attr`` (see the module docstring)."""
    by_class: dict[str, np.ndarray] = {
        c: np.flatnonzero([lab[attr] == c for lab in labels]) for c in ATTRIBUTES[attr]}
    usable = [c for c, idx in by_class.items() if len(idx) >= 2 * SLOT]
    if len(usable) < 2:
        return []
    out = []
    for _ in range(n):
        x, y = rng.choice(usable, 2, replace=False)
        a = rng.choice(by_class[x], SLOT, replace=False)
        bc = rng.choice(by_class[y], 2 * SLOT, replace=False)
        out.append((a, bc[:SLOT], bc[SLOT:], str(x)))
    return out


Reader = Callable[[np.ndarray], list[dict[str, str]]]  # pictures -> attribute readings


@dataclass
class Sums:
    """One attribute's arithmetic: the decoded results of its triples, the decoded C slots
    alone, and the class each result should show (A's)."""

    results: np.ndarray  # uint8 (n, H, W, 3)
    c: np.ndarray
    targets: list[str]


def arithmetic_sums(model: LatentModel | None, n: int = 500, pool: int = 2000, seed: int = 0
                    ) -> dict[str, Sums | None]:
    """The pictures of ``n`` triples per attribute (None where the pool has too few of two
    classes). ``model=None`` is the pixel peer: the same sums on held-out renders at 64 px."""
    rng = np.random.default_rng(seed)
    if model is None:
        from core.data.worlds import get_world, split_seeds

        world = get_world("faces")
        samples = [world.render(s, size=64) for s in split_seeds("held_out", pool)]
        values = np.stack([s.image for s in samples]).astype(np.float64)
        labels = [dict(s.labels) for s in samples]
    else:
        values, labels = labelled_latents(model, pool, seed=seed + 1, split="held_out")

    def show(v: np.ndarray) -> np.ndarray:
        return np.clip(v, 0, 255).round().astype(np.uint8) if model is None else model.decode(v)

    out: dict[str, Sums | None] = {}
    for attr in ARITHMETIC:
        triples = _triples(labels, attr, n, rng)
        if not triples:
            out[attr] = None
            continue
        cs = np.stack([values[c].mean(0) for _, _, c, _ in triples])
        sums = np.stack([values[a].mean(0) - values[b].mean(0) for a, b, _, _ in triples]) + cs
        out[attr] = Sums(show(sums), show(cs), [t for _, _, _, t in triples])
    return out


def arithmetic_scores(sums: dict[str, Sums | None], read: Reader) -> dict[str, dict[str, Any]]:
    """Per attribute, as ``read`` reads the pictures: ``target``, the share of results read
    as A's class; ``kept_mean`` and ``kept_min``, the share of results read like their C
    slot alone in each other attribute (mean and worst over the other attributes), and
    ``kept_worst``, that worst attribute. NaN where there were no triples."""
    out: dict[str, dict[str, Any]] = {}
    for attr, s in sums.items():
        if s is None:
            out[attr] = {"target": float("nan"), "kept_mean": float("nan"),
                         "kept_min": float("nan"), "kept_worst": ""}
            continue
        results, cs = read(s.results), read(s.c)
        kept = {k: float(np.mean([r[k] == c[k] for r, c in zip(results, cs, strict=True)]))
                for k in ATTRIBUTES if k != attr}
        worst = min(kept, key=kept.__getitem__)
        out[attr] = {"target": float(np.mean([r[attr] == t for r, t in zip(results, s.targets,
                                                                            strict=True)])),
                     "kept_mean": float(np.mean(list(kept.values()))),
                     "kept_min": kept[worst], "kept_worst": worst}
    return out


def arithmetic_accuracy(model: LatentModel | None, n: int = 500, pool: int = 2000,
                        seed: int = 0) -> dict[str, float]:
    """Share of triples per attribute whose result the faces judge reads as A's class."""
    judge = load_judge("faces", model.device if model else "cpu")
    scores = arithmetic_scores(arithmetic_sums(model, n, pool, seed),
                               lambda images: read_faces(judge, images))
    return {attr: s["target"] for attr, s in scores.items()}


EDIT_AMOUNT = 2.0  # class gaps: the end of the panel's sliders (1 only reaches the mean)


def direction_edits(model: LatentModel, n: int = 500, amount: float = EDIT_AMOUNT,
                    method: str = "mean", seed: int = 0,
                    found: dirs.DirectionSet | None = None) -> dict[str, dict[str, Any]]:
    """Per attribute: ``flipped`` share, and the share of images keeping each other attribute
    (``kept_min`` over the others, ``kept_mean``)."""
    judge = load_judge("faces", model.device)
    found = found or attribute_directions(model)
    rng = np.random.default_rng(seed)
    z = torch.randn(n * 4, model.dim, generator=torch.Generator().manual_seed(seed + 7),
                    dtype=torch.float64).numpy()
    if model.has_encoder:  # edit encodings of held-out renders, as an artist would
        z, _ = labelled_latents(model, n * 4, seed=seed + 2, split="held_out")
    before = read_faces(judge, model.decode(z))
    out: dict[str, dict[str, Any]] = {}
    chosen = found.get(method)
    for attr in ARITHMETIC:
        classes = ATTRIBUTES[attr]
        edits: list[tuple[int, str, float, str]] = []  # (row, direction, amount, target)
        for i in rng.permutation(len(z))[: n]:
            have = before[i][attr]
            if len(classes) == 2:
                target = classes[1] if have == classes[0] else classes[0]
                edits.append((int(i), attr, amount if target == classes[1] else -amount, target))
            else:
                target = str(rng.choice([c for c in classes if c != have]))
                edits.append((int(i), f"{attr}:{target}", amount, target))
        edits = [e for e in edits if e[1] in chosen]
        if not edits:
            out[attr] = {"flipped": float("nan"), "kept_min": float("nan"), "n": 0}
            continue
        moved = np.stack([dirs.apply(z[i], chosen, {name: a}) for i, name, a, _ in edits])
        after = read_faces(judge, model.decode(moved))
        flipped = np.mean([r[attr] == t for r, (_, _, _, t) in zip(after, edits, strict=True)])
        kept = {k: float(np.mean([after[j][k] == before[i][k]
                                  for j, (i, _, _, _) in enumerate(edits)]))
                for k in ATTRIBUTES if k != attr}
        out[attr] = {"flipped": float(flipped), "kept_min": min(kept.values()),
                     "kept_mean": float(np.mean(list(kept.values()))),
                     "kept_worst": min(kept, key=kept.get), "n": len(edits)}
    return out


def latent_metrics(model: LatentModel, n: int = 500) -> dict[str, Any]:
    """What ``easel eval`` stores in a faces VAE's or DCGAN's card."""
    found = attribute_directions(model)
    return {
        "arithmetic_accuracy": arithmetic_accuracy(model, n),
        "direction_edits": {m: direction_edits(model, n, method=m, found=found)
                            for m in dirs.METHODS},
        "latent_note": f"faces judge readings; arithmetic: {n} triples per attribute, slots "
                       f"the mean of {SLOT} latents; edits: {n} per attribute, amount "
                       f"{EDIT_AMOUNT:g} class gaps.",
    }
