"""Judge readings: images in, labels (faces) or object lists (scenes) out. Used by the
pipelines (the scenes checker, a GAN's attribute directions), training's judge grids and
evaluation (accuracy, FJD, GenEval).

    judge = load_judge("scenes")                # the shipped scenes judge
    for objects, background in read_scenes(judge, images): ...

Readings use the class names stored in the judge's config, so they come out in exactly the
format of the world's own labels (``Sample.labels``) and can be compared with them or fed to
``core.data.captions.satisfies``.
"""

from __future__ import annotations

import contextlib
import io
import weakref
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.nets.judge import Judge
from core.tensors import to_tensor
from core.weights import WeightsError, list_models, load_model, read_card

BATCH = 256


class JudgeError(ValueError):
    """A judge that cannot be found or cannot read the given images."""


def load_judge(world_or_path: str, device: str | torch.device = "cpu",
               models: Any = None) -> Judge:
    """The judge of a world ("faces", "scenes"; shipped ones first, then the user's) or the
    judge saved at a .safetensors path (``models``: a core.weights.ModelCache to load it
    through, so a job reuses it and its world fit)."""
    path = world_or_path
    if not world_or_path.endswith(".safetensors"):
        found = [m for m in list_models("judge")
                 if m.card is not None and m.card.config.get("world") == world_or_path]
        if not found:
            raise JudgeError(f"No judge for the {world_or_path!r} world is installed "
                             "(train one with: easel train judge_" + world_or_path + ").")
        path = found[0].path
    model = models.get(path, device) if models is not None else load_model(path, device)
    if isinstance(model, Judge):  # the world fit is kept per weights file (world_fit)
        model.weights_sha256 = read_card(path).sha256
    if not isinstance(model, Judge):
        raise WeightsError(f"{world_or_path} is not a judge")
    return model


def _batches(judge: Judge, images: np.ndarray) -> Iterator[torch.Tensor]:
    device = next(judge.parameters()).device
    for i in range(0, len(images), BATCH):
        yield to_tensor(images[i:i + BATCH], judge.config.size).to(device)


@torch.no_grad()
def outputs(judge: Judge, images: np.ndarray) -> dict[str, torch.Tensor]:
    """The judge's outputs for a stack of images (with its left-to-right slots when it reads
    objects), concatenated over batches, on the CPU."""
    was_training = judge.training
    judge.eval()
    try:
        parts = []
        for x in _batches(judge, np.asarray(images)):
            out = judge(x)
            if judge.config.slots:
                out.update(judge.slots(out))
            parts.append(out)
    finally:
        judge.train(was_training)
    if not parts:
        raise JudgeError("no images to read")
    return {k: torch.cat([p[k] for p in parts]).cpu() for k in parts[0]}


@torch.no_grad()
def features(judge: Judge, images: np.ndarray) -> np.ndarray:
    """Penultimate judge features (N, D) float64: the space FJD is measured in."""
    was_training = judge.training
    judge.eval()
    try:
        parts = [judge.features(x).cpu() for x in _batches(judge, np.asarray(images))]
    finally:
        judge.train(was_training)
    if not parts:
        raise JudgeError("no images to read")
    return torch.cat(parts).double().numpy()


def _labels(out: dict[str, torch.Tensor], heads: dict[str, list[str]]) -> list[dict[str, str]]:
    picks = {name: out[name].argmax(-1).tolist() for name in heads}
    n = len(next(iter(picks.values()))) if picks else 0
    return [{name: heads[name][picks[name][i]] for name in heads} for i in range(n)]


def read_faces(judge: Judge, images: np.ndarray) -> list[dict[str, str]]:
    """One dict per image: attribute -> class name (the judge's most likely class)."""
    if not judge.config.heads:
        raise JudgeError("this judge has no image-level heads")
    return _labels(outputs(judge, images), judge.config.heads)


def decode_objects(out: dict[str, torch.Tensor], slot_heads: dict[str, list[str]],
                   i: int) -> list[dict[str, Any]]:
    """The objects the slots of image ``i`` say are present, sorted left to right."""
    objects = []
    present = out["slot.present"][i]
    for s in range(present.shape[0]):
        if float(present[s]) <= 0.5:
            continue
        cx, cy, w, h = (float(v) for v in out["slot.box"][i, s])
        obj: dict[str, Any] = {name: classes[int(out[f"slot.{name}"][i, s].argmax())]
                               for name, classes in slot_heads.items()}
        obj["bbox"] = (max(0.0, cx - w / 2), max(0.0, cy - h / 2),
                       min(1.0, cx + w / 2), min(1.0, cy + h / 2))
        objects.append((cx, obj))
    return [obj for _, obj in sorted(objects, key=lambda t: t[0])]


def read_scenes(judge: Judge, images: np.ndarray) -> list[tuple[list[dict[str, Any]], str]]:
    """One ``(objects, background)`` per image, as ``captions.satisfies`` takes them: objects
    are dicts with shape, colour, size and bbox (x0, y0, x1, y1 in image fractions), sorted
    left to right by centre x."""
    if not judge.config.slots or "background" not in judge.config.heads:
        raise JudgeError("this judge does not read scenes (it has no object slots)")
    out = outputs(judge, images)
    backgrounds = out["background"].argmax(-1).tolist()
    classes = judge.config.heads["background"]
    return [(decode_objects(out, judge.config.slot_heads, i), classes[backgrounds[i]])
            for i in range(len(backgrounds))]


# --------------------------------------------------------------------------- out of world
#
# A picture far from a judge's world is read anyway (a judge always answers), so the pipelines
# say so first. The score follows Lee et al. 2018 ("A simple unified framework for detecting
# out-of-distribution samples"): a Gaussian per convolution block over the channel means and
# deviations of the world's own pictures, the Mahalanobis distance to each, and the worst
# block counts. (The pooled features alone do not tell: a classifier maps photos close to its
# classes' centres.)

WORLD_FIT_N = 512  # held-out renders the world's Gaussians are fitted on
WORLD_CHECK_N = 256  # further held-out renders whose 99th percentiles set the thresholds
WORLD_OFFSET = 90_000_000  # held-out seeds of these renders (apart from the evaluations')
SHRINK = 0.1  # covariance shrinkage toward its mean variance (up to 512 dims, 512 pictures)


@dataclass(frozen=True)
class Gaussian:
    mean: np.ndarray
    precision: np.ndarray  # the inverse of the shrunk covariance

    @classmethod
    def fit(cls, x: np.ndarray) -> Gaussian:
        cov = np.cov(x, rowvar=False)
        cov = (1 - SHRINK) * cov + SHRINK * np.trace(cov) / len(cov) * np.eye(len(cov))
        return cls(x.mean(0), np.linalg.inv(cov))

    def distances(self, x: np.ndarray) -> np.ndarray:
        d = x - self.mean
        return np.sqrt(np.maximum(np.einsum("nd,de,ne->n", d, self.precision, d), 0.0))


@dataclass(frozen=True)
class WorldFit:
    """The judge's world: one Gaussian per block with the distance 99% of the world's
    pictures stay within, and the 99th percentile of the worst block's ratio."""

    blocks: list[tuple[Gaussian, float]]
    threshold: float

    def ratios(self, stats: list[np.ndarray]) -> np.ndarray:
        return np.stack([g.distances(s) / t for (g, t), s in zip(self.blocks, stats,
                                                                  strict=True)], 1).max(1)


# Fits of loaded judges by their weights' sha256 (a few judges at most), of others while they live.
_fits_by_file: dict[str, WorldFit] = {}
_fits: weakref.WeakKeyDictionary[Judge, WorldFit] = weakref.WeakKeyDictionary()


@torch.no_grad()
def _statistics(judge: Judge, images: np.ndarray) -> list[np.ndarray]:
    was_training = judge.training
    judge.eval()
    try:
        parts = [[s.cpu().double() for s in judge.stage_statistics(x)]
                 for x in _batches(judge, np.asarray(images))]
    finally:
        judge.train(was_training)
    if not parts:
        raise JudgeError("no images to read")
    return [torch.cat(blocks).numpy() for blocks in zip(*parts, strict=True)]


def world_fit(judge: Judge) -> WorldFit | None:
    """The judge's fit of its world (computed on first use from 768 renders, a few seconds;
    kept while the judge is), or None for a judge of a folder rather than a procedural world."""
    sha = getattr(judge, "weights_sha256", None)
    known = _fits_by_file.get(sha) if sha else _fits.get(judge)
    if known is None and sha:
        known = _read_fit(sha, len(judge.trunk) + len(judge.top))
    if known is not None:
        return known
    from core.data.worlds import get_world, split_seeds, world_names

    if judge.config.world not in world_names():
        return None
    world = get_world(judge.config.world)
    seeds = split_seeds("held_out", WORLD_FIT_N + WORLD_CHECK_N, WORLD_OFFSET)
    stats = _statistics(judge, np.stack([world.render(s, judge.config.size).image
                                         for s in seeds]))
    blocks = []
    for s in stats:
        g = Gaussian.fit(s[:WORLD_FIT_N])
        blocks.append((g, float(np.percentile(g.distances(s[WORLD_FIT_N:]), 99))))
    fit = WorldFit(blocks, 1.0)
    check = fit.ratios([s[WORLD_FIT_N:] for s in stats])
    fit = WorldFit(blocks, float(np.percentile(check, 99)))
    if sha:
        _fits_by_file[sha] = fit
        _write_fit(sha, fit)
    else:
        _fits[judge] = fit
    return fit


def _fit_path(sha: str) -> Path:
    from core.paths import data_dir

    return data_dir() / "cache" / "world_fits" / f"{sha[:32]}.npz"


def _write_fit(sha: str, fit: WorldFit) -> None:
    """Keep a judge's world fit on disk, so the first score of a later session is instant."""
    from core.paths import atomic_write

    arrays: dict[str, np.ndarray] = {"threshold": np.array(fit.threshold)}
    for i, (g, t) in enumerate(fit.blocks):
        arrays.update({f"mean{i}": g.mean, f"precision{i}": g.precision, f"t{i}": np.array(t)})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with contextlib.suppress(OSError):  # a read-only or full disk: computed again next time
        _fit_path(sha).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(_fit_path(sha), buf.getvalue())


def _read_fit(sha: str, blocks: int) -> WorldFit | None:
    """A fit of ``blocks`` blocks kept by _write_fit (arrays only, never pickles), or None
    when there is none or it is not one (it is then computed again)."""
    try:
        with np.load(_fit_path(sha), allow_pickle=False) as data:
            found = []
            for i in range(blocks):
                mean, precision = data[f"mean{i}"], data[f"precision{i}"]
                t = float(data[f"t{i}"])
                if mean.ndim != 1 or precision.shape != (len(mean), len(mean)) or not (
                        np.isfinite(mean).all() and np.isfinite(precision).all() and t > 0):
                    return None
                found.append((Gaussian(mean.astype(np.float64),
                                       precision.astype(np.float64)), t))
            fit = WorldFit(found, float(data["threshold"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if not fit.threshold > 0:
        return None
    _fits_by_file[sha] = fit
    return fit


FAR = 1.25  # a world score above this is worth telling the user (3% of own renders pass 1)


def world_scores(judge: Judge, images: np.ndarray) -> np.ndarray | None:
    """How far each picture lies from the judge's world: 1 is the edge 99% of the world's own
    pictures stay within, above 1 is out of the world. None for a judge of a folder."""
    fit = world_fit(judge)
    return None if fit is None else fit.ratios(_statistics(judge, images)) / fit.threshold
