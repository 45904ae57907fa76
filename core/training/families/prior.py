"""Scene prior training: a transformer over [condition tokens; VQ codes] (core/nets/prior.py).

Each step encodes the batch's images with the frozen VQ-VAE named by ``task.vqvae`` (a shipped
or user model name, or a .safetensors path) and minimises the cross-entropy of the image codes
given the condition (teacher forcing):

- family ``prior``: the caption, read with the tokenizer built from the first
  ``task.vocab_captions`` training captions;
- family ``layout_prior``: the exact layout the world drew (Sample.labels: background, and
  every object's shape, colour, size and box) as layout tokens (core/data/layouts.py). The
  renderer knows every training image's layout, so no layout is ever guessed in training.

A ``task.p_uncond`` share of conditions is replaced by padding so the model also learns the
unconditional distribution that classifier-free guidance needs.

``task.hold_out`` lists "colour shape" pairs (e.g. "green triangle") whose images never reach
the model: an image is dropped from its batch when its caption names the pair or it draws it.
Prompts that ask for them then measure compositional generalisation (bench/scene.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.data.captions import pairs_in, parse_pairs
from core.data.layouts import label_layout, layout_tokens, token_format
from core.nets.prior import CodePrior, LayoutPrior, LayoutPriorConfig, PriorConfig, ScenePrior
from core.nets.text import PAD
from core.nets.vqvae import VQVAE
from core.training.data import caption_vocab
from core.training.recipe import RecipeError
from core.training.task import (
    Batch,
    Task,
    image_grid,
    load_frozen,
    register_task,
    stream_seed,
)


@dataclass
class CodePriorOptions:
    vqvae: str = "vqvae_scenes"  # the VQ-VAE whose codes are modelled (name or path)
    p_uncond: float = 0.1  # share of conditions dropped for classifier-free guidance
    hold_out: list[str] = field(default_factory=list)  # "colour shape" pairs never trained on
    # Learning rate: linear warm-up, then cosine decay to final_lr x train.lr (Task.schedule_lr).
    warmup_steps: int = 200
    final_lr: float = 0.05

    def __post_init__(self) -> None:
        if self.warmup_steps < 0 or not 0 <= self.final_lr <= 1:
            raise ValueError("task.warmup_steps must not be negative and task.final_lr must "
                             "lie in [0, 1]")
        if not 0 <= self.p_uncond < 1:
            raise ValueError(f"task.p_uncond must lie in [0, 1), not {self.p_uncond}")
        parse_pairs(self.hold_out)


@dataclass
class PriorOptions(CodePriorOptions):
    vocab_captions: int = 20000  # training captions the word list is built from

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.vocab_captions < 1:
            raise ValueError("task.vocab_captions must be at least 1")


class CodePriorTask(Task):
    """What the caption and layout priors share; subclasses build the prior (``build``) and
    read each image's condition (``condition``)."""

    def __init__(self, recipe: Any, device: torch.device, generator: torch.Generator) -> None:
        super().__init__(recipe, device, generator)
        self.vq, vq_name, vq_sha = load_frozen(self.options.vqvae, VQVAE, ("vqvae",), "VQ-VAE",
                                               "vqvae_scenes", device)
        if self.vq.config.image_size != recipe.data.size:
            raise RecipeError(f"the VQ-VAE {vq_name} reads {self.vq.config.image_size} px "
                              f"images; set data.size = {self.vq.config.image_size}.")
        model = dict(recipe.model)
        model.update(grid=self.vq.config.grid, codebook_size=self.vq.config.codebook_size,
                     vqvae=vq_name, vqvae_sha256=vq_sha)
        self.prior = self.build(model).to(device)
        self.config = self.prior.config
        self.held_out = parse_pairs(self.options.hold_out)
        self._grid_cond: torch.Tensor | None = None

    def build(self, model: dict[str, Any]) -> CodePrior:
        """The prior from the recipe's [model] table with the VQ-VAE's fields filled in."""
        raise NotImplementedError

    def condition(self, batch: Batch, rows: list[int]) -> torch.Tensor:
        """(len(rows), cond_len) condition ids of the batch's ``rows``, on the device."""
        raise NotImplementedError

    def modules(self) -> dict[str, nn.Module]:
        return {"prior": self.prior}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        # No weight decay on embeddings, norms and biases (the nanoGPT split).
        decay = [p for n, p in self.prior.named_parameters() if p.dim() >= 2 and "embed" not in n]
        rest = [p for n, p in self.prior.named_parameters() if p.dim() < 2 or "embed" in n]
        wd = self.recipe.train.weight_decay
        return {"prior": self.adam([{"params": decay, "weight_decay": wd},
                                    {"params": rest, "weight_decay": 0.0}])}

    def ema_names(self) -> list[str]:
        return ["prior"]

    def keep(self, batch: Batch) -> list[int]:
        """Rows of the batch the model may see (none of the held-out pairs)."""
        if not self.held_out:
            return list(range(len(batch)))
        labels = batch.labels or [{}] * len(batch)
        return [i for i, (c, lab) in enumerate(zip(batch.captions, labels, strict=True))
                if not pairs_in(c, lab) & self.held_out]

    def training_step(self, batch: Batch, step: int) -> dict[str, float | torch.Tensor]:
        lr = self.schedule_lr("prior", step, self.options.warmup_steps, self.options.final_lr)
        rows = self.keep(batch)
        images = batch.images[rows]
        codes = self.vq.encode(images).flatten(1)
        cond = self.condition(batch, rows)
        if self._grid_cond is None and self.rank == 0:
            self._grid_cond = cond[: self.recipe.train.sample_count].clone()
        g = torch.Generator().manual_seed(stream_seed(self.recipe.seed, step, "uncond"))
        drop = torch.rand(len(rows), generator=g) < self.options.p_uncond
        cond[drop.to(self.device)] = PAD
        with self.autocast():
            logits = self.net("prior")(cond, codes)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), codes.reshape(-1))
        self.optimizer_step("prior", loss)
        # Bits per code: how well the prior predicts the VQ-VAE's codes (log2 K at chance).
        return {"loss": loss.detach(), "bits": loss.detach() / np.log(2),
                "kept": float(len(rows)), "lr": lr}

    @torch.no_grad()
    def sample_grid(self, n: int) -> np.ndarray | None:
        """Samples (temperature 1) for the first conditions the model saw."""
        if n <= 0 or self._grid_cond is None:
            return None
        from core.sampling.prior import sample_codes

        prior = self.ema("prior")
        with self.evaluating(prior):
            codes = sample_codes(prior, self._grid_cond[:n],
                                 torch.Generator().manual_seed(self.recipe.seed + 1))
            images = self.vq.decode(codes.view(-1, self.config.grid, self.config.grid))
        return image_grid(images.float())

    def export(self) -> tuple[nn.Module, str, dict[str, Any]]:
        return self.ema("prior"), self.architecture, dataclasses.asdict(self.config)


@register_task("prior")
class PriorTask(CodePriorTask):
    architecture = "prior"
    Options = PriorOptions

    def build(self, model: dict[str, Any]) -> CodePrior:
        model["vocab"] = caption_vocab(self.recipe.data, self.options.vocab_captions,
                                       "a scene prior")
        return ScenePrior(PriorConfig(**model))

    def condition(self, batch: Batch, rows: list[int]) -> torch.Tensor:
        return self.prior.tokenizer.batch([batch.captions[i] for i in rows],
                                          self.config.text_len).to(self.device)


@register_task("layout_prior")
class LayoutPriorTask(CodePriorTask):
    """The layout prior: image codes given the exact layout of each training scene."""

    architecture = "layout_prior"
    Options = CodePriorOptions

    def build(self, model: dict[str, Any]) -> CodePrior:
        data = self.recipe.data
        if data.source != "scenes":
            raise RecipeError(f"a layout prior learns from the scenes world, whose renders "
                              f"carry their layouts; data.source is {data.source!r}.")
        if data.flip:
            raise RecipeError("a layout prior reads each scene's true boxes, which a flip "
                              "would mirror; set data.flip = false.")
        model.update(token_format())
        return LayoutPrior(LayoutPriorConfig(**model))

    def condition(self, batch: Batch, rows: list[int]) -> torch.Tensor:
        ids = [layout_tokens(label_layout(batch.labels[i])) for i in rows]
        return torch.tensor(ids, dtype=torch.long, device=self.device)
