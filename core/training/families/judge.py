"""The "judge" family: train a world's judge (core/nets/judge.py) on the world's own labels.

The heads come from the world named by the recipe's ``data.source``: one softmax per entry of
``world.attributes``, and for the scenes world also object slots whose per-object labels are
the scenes vocabulary (SHAPES, COLOURS, SIZES). The recipe's [model] table only sizes the net.

Objects are learned on the judge's grid (CenterNet style, see core/nets/judge.py): the cell
that holds an object's centre learns its presence, labels and box; every other cell learns
"no object here". The left-to-right slots are read from that grid.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.nets.judge import Judge, JudgeConfig
from core.training.recipe import check_dataclass
from core.training.task import Batch, Task, TrainingError, image_grid, register_task

MAX_SLOTS = 3


@dataclass
class JudgeModel:
    """The recipe's [model] table for a judge (heads are derived from the world)."""

    width: int = 32


@dataclass
class JudgeOptions:
    """The recipe's [task] table: loss weights."""

    box_weight: float = 10.0  # L1 on (cx, cy, w, h) image fractions, per present object
    present_weight: float = 1.0
    # Learning rate: linear warm-up, then cosine decay to ``final_lr`` x train.lr at the last
    # step (Loshchilov & Hutter 2017, without restarts). A function of the step alone, so a
    # resumed run follows the same schedule.
    warmup_steps: int = 200
    final_lr: float = 0.02

    def __post_init__(self) -> None:
        for name in ("box_weight", "present_weight", "warmup_steps", "final_lr"):
            if getattr(self, name) < 0:
                raise ValueError(f"task.{name} must not be negative, not {getattr(self, name)}")


def judge_config(world_name: str, width: int, size: int) -> JudgeConfig:
    """The judge config for a world: its attributes, plus object slots for scenes."""
    from core.data.worlds import get_world

    try:
        world = get_world(world_name)
    except KeyError:
        raise TrainingError(f"a judge is trained on a procedural world (faces, scenes), not "
                            f"{world_name!r}: its labels are what it learns.") from None
    heads = {k: list(v) for k, v in world.attributes.items()}
    if world_name == "scenes":
        from core.data import scenes

        slot_heads = {"shape": list(scenes.SHAPES), "colour": list(scenes.COLOURS),
                      "size": list(scenes.SIZES)}
        return JudgeConfig(world=world_name, heads=heads, slots=MAX_SLOTS,
                           slot_heads=slot_heads, width=width, size=size)
    return JudgeConfig(world=world_name, heads=heads, width=width, size=size)


def _index(classes: list[str], value: Any, name: str) -> int:
    try:
        return classes.index(value)
    except ValueError:
        raise TrainingError(f"label {name}={value!r} is not one of the judge's classes "
                            f"{classes}") from None


def targets(config: JudgeConfig, labels: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Training targets (CPU tensors) for a list of world label dicts.

    Image heads: class indices (N,). Object grid (G = size / 8): ``grid.present`` (N, G, G)
    1 in the cell holding an object's centre; ``grid.box`` (N, G, G, 4) its (cx, cy, w, h);
    ``grid.<label>`` (N, G, G) class indices, -100 elsewhere (cross_entropy's ignore index).
    """
    n = len(labels)
    out = {name: torch.tensor([_index(classes, lab[name], name) for lab in labels])
           for name, classes in config.heads.items()}
    if config.slots:
        g = config.size // 8
        present = torch.zeros(n, g, g)
        box = torch.zeros(n, g, g, 4)
        cls = {name: torch.full((n, g, g), -100, dtype=torch.long) for name in config.slot_heads}
        for i, lab in enumerate(labels):
            if len(lab["objects"]) > config.slots:
                raise TrainingError(f"a scene has {len(lab['objects'])} objects; the judge "
                                    f"reads at most {config.slots}")
            for obj in lab["objects"]:
                x0, y0, x1, y1 = obj["bbox"]
                cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
                r, c = min(g - 1, int(cy * g)), min(g - 1, int(cx * g))
                present[i, r, c] = 1
                box[i, r, c] = torch.tensor([cx, cy, x1 - x0, y1 - y0])
                for name, classes in config.slot_heads.items():
                    cls[name][i, r, c] = _index(classes, obj[name], name)
        out.update({"grid.present": present, "grid.box": box},
                   **{f"grid.{k}": v for k, v in cls.items()})
    return out


def judge_loss(config: JudgeConfig, out: dict[str, torch.Tensor],
               target: dict[str, torch.Tensor], box_weight: float = 10.0,
               present_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """Per-part losses (summed into ``total``): cross-entropy per image head; for the object
    grid, binary cross-entropy on presence (summed over cells, averaged over images),
    cross-entropy per label and L1 on the box, both on the cells that hold an object."""
    parts = {name: F.cross_entropy(out[name].float(), target[name]) for name in config.heads}
    if config.slots:
        present = target["grid.present"]
        n = present.shape[0]
        parts["present"] = present_weight * F.binary_cross_entropy_with_logits(
            out["grid.present"].float(), present, reduction="sum") / n
        for name in config.slot_heads:
            logits = out[f"grid.{name}"].float()
            parts[name] = F.cross_entropy(logits.flatten(0, 2), target[f"grid.{name}"].flatten(),
                                          ignore_index=-100)
        err = (out["grid.box"].float() - target["grid.box"]).abs().sum(-1)
        parts["box"] = box_weight * (err * present).sum() / present.sum().clamp(min=1)
    parts["total"] = sum(parts.values())
    return parts


@register_task("judge")
class JudgeTask(Task):
    Options = JudgeOptions

    def __init__(self, recipe: Any, device: torch.device, generator: torch.Generator) -> None:
        super().__init__(recipe, device, generator)
        model = check_dataclass(JudgeModel, recipe.model, "model")
        self.config = judge_config(recipe.data.source, model.width, recipe.data.size)
        # nn.Module initialisers draw from the global RNG: seed it from the run's generator
        # inside fork_rng so building is deterministic and leaves the global state untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
            self.judge = Judge(self.config).to(self.device)

    def modules(self) -> dict[str, nn.Module]:
        return {"judge": self.judge}

    def training_step(self, batch: Batch, step: int) -> dict[str, float | torch.Tensor]:
        self.schedule_lr("main", step, self.options.warmup_steps, self.options.final_lr)
        target = {k: v.to(self.device, non_blocking=True)
                  for k, v in targets(self.config, batch.labels).items()}
        with self.autocast():
            out = self.net("judge")(batch.images)
        parts = judge_loss(self.config, out, target, self.options.box_weight,
                           self.options.present_weight)
        self.optimizer_step("main", parts["total"])
        logged: dict[str, float | torch.Tensor] = {k: v.detach() for k, v in parts.items()}
        # Training accuracy of each image head: cheap, and the clearest sign of progress.
        for name in self.config.heads:
            logged[f"acc_{name}"] = (out[name].argmax(-1) == target[name]).float().mean().detach()
        return logged

    def sample_grid(self, n: int) -> np.ndarray | None:
        """Held-out renders the judge reads correctly in full, then the ones it gets wrong:
        a quick visual check of what the judge still confuses."""
        from core.data.worlds import get_world, split_seeds
        from core.judges import read_faces, read_scenes

        world = get_world(self.config.world)
        samples = [world.render(s, self.config.size) for s in split_seeds("validation", n)]
        images = np.stack([s.image for s in samples])
        with self.evaluating(self.judge):
            if self.config.slots:
                reads = [{"background": bg, "count": len(objs)}
                         for objs, bg in read_scenes(self.judge, images)]
                truth = [{"background": s.labels["background"],
                          "count": len(s.labels["objects"])} for s in samples]
            else:
                reads = read_faces(self.judge, images)
                truth = [{k: s.labels[k] for k in self.config.heads} for s in samples]
        right = [all(r[k] == t[k] for k in t) for r, t in zip(reads, truth, strict=True)]
        order = sorted(range(len(samples)), key=lambda i: not right[i])
        return image_grid(images[order])

    def export(self) -> tuple[nn.Module, str, dict[str, Any]]:
        return self.judge, "judge", dataclasses.asdict(self.config)
