"""Contrastive text/image training for the scene reranker (core/nets/reranker.py).

The symmetric InfoNCE loss of CLIP (Radford et al. 2021) over the batch, plus ``task.hard``
hard negatives per image: its own caption changed in one thing the picture shows (a colour, two
colours swapped, a shape, a count, a size, the relation flipped, the background;
core.data.captions.mutate_prompt). In-batch negatives alone rarely differ from the true caption
in one word, and telling "a red star left of a blue circle" from "a blue star left of a red
circle" is exactly what reranking generated scenes needs.

``task.hold_out`` drops images of held-out colour/shape pairs, as for the scene prior, so the
compositional test of bench/scene.py is fair to the whole pipeline.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.data.captions import caption_for, mutate_prompt, pairs_in, parse_pairs, parse_prompt
from core.nets.reranker import Reranker, RerankerConfig
from core.training.data import caption_vocab
from core.training.task import Batch, Task, register_task, stream_seed


@dataclass
class RerankerOptions:
    hard: int = 3  # hard negative captions per image (0: in-batch negatives only)
    vocab_captions: int = 20000
    hold_out: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.hard < 0 or self.vocab_captions < 1:
            raise ValueError("task.hard must not be negative and task.vocab_captions positive")
        parse_pairs(self.hold_out)


def wrong_captions(caption: str, k: int, rng: random.Random) -> list[str]:
    """``k`` captions that each get one thing about ``caption``'s scene wrong ("" when the
    caption has nothing to change)."""
    prompt = parse_prompt(caption)
    out = []
    for _ in range(k):
        wrong = mutate_prompt(prompt, rng)
        out.append(caption_for(wrong, rng) if wrong is not None else "")
    return out


@register_task("reranker")
class RerankerTask(Task):
    architecture = "reranker"
    Options = RerankerOptions

    def __init__(self, recipe: Any, device: torch.device, generator: torch.Generator) -> None:
        super().__init__(recipe, device, generator)
        vocab = caption_vocab(recipe.data, self.options.vocab_captions, "the reranker")
        model = dict(recipe.model)
        model.update(vocab=vocab, image_size=recipe.data.size)
        self.config = RerankerConfig(**model)
        self.net_ = Reranker(self.config).to(device)
        self.held_out = parse_pairs(self.options.hold_out)

    def modules(self) -> dict[str, nn.Module]:
        return {"reranker": self.net_}

    def training_step(self, batch: Batch, step: int) -> dict[str, float | torch.Tensor]:
        labels = batch.labels or [{}] * len(batch)
        rows = [i for i, (c, lab) in enumerate(zip(batch.captions, labels, strict=True))
                if c and not pairs_in(c, lab) & self.held_out]
        if len(rows) < 2:
            return {}
        captions = [batch.captions[i] or "" for i in rows]
        rng = random.Random(stream_seed(self.recipe.seed, step, "hard"))
        k = self.options.hard
        wrong = [w for c in captions for w in wrong_captions(c, k, rng)]
        net = self.net("reranker")
        with self.autocast():
            img = net.encode_image(batch.images[rows])
            txt = net.encode_text(net.texts(captions + wrong, self.device))
        img, txt = img.float(), txt.float()
        n = len(rows)
        scale = self.net_.logit_scale.exp().clamp(max=100)
        true_txt, wrong_txt = txt[:n], txt[n:].view(n, k, -1)
        per_image = img @ true_txt.t()  # (n, n): image i against every true caption
        hard = torch.einsum("nd,nkd->nk", img, wrong_txt)  # image i against its wrong ones
        empty = torch.tensor([w == "" for w in wrong], device=self.device).view(n, k)
        hard = hard.masked_fill(empty, -1e4 / 100)
        target = torch.arange(n, device=self.device)
        loss_i = F.cross_entropy(scale * torch.cat([per_image, hard], 1), target)
        loss_t = F.cross_entropy(scale * per_image.t(), target)
        loss = (loss_i + loss_t) / 2
        self.optimizer_step("main", loss)
        with torch.no_grad():
            in_batch = (per_image.argmax(1) == target).float().mean()
            beats_hard = (per_image.diagonal()[:, None] > hard).all(1).float().mean()
        return {"loss": loss.detach(), "in_batch_acc": in_batch, "hard_acc": beats_hard,
                "scale": scale.detach()}  # read on log steps only: no per-step sync

    def export(self) -> tuple[nn.Module, str, dict[str, Any]]:
        return self.net_, "reranker", dataclasses.asdict(self.config)

    def sample_grid(self, n: int) -> np.ndarray | None:
        return None
