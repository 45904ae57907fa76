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

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from core.nets.judge import Judge
from core.tensors import to_tensor
from core.weights import WeightsError, list_models, load_model

BATCH = 256


class JudgeError(ValueError):
    """A judge that cannot be found or cannot read the given images."""


def load_judge(world_or_path: str, device: str | torch.device = "cpu") -> Judge:
    """The judge of a world ("faces", "scenes"; shipped ones first, then the user's) or the
    judge saved at a .safetensors path."""
    if world_or_path.endswith(".safetensors"):
        model = load_model(world_or_path, device)
    else:
        found = [m for m in list_models("judge")
                 if m.card is not None and m.card.config.get("world") == world_or_path]
        if not found:
            raise JudgeError(f"No judge for the {world_or_path!r} world is installed "
                             "(train one with: easel train judge_" + world_or_path + ").")
        model = load_model(found[0].path, device)
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
