"""Scene prior training: a transformer over [caption words; VQ codes] (core/nets/prior.py).

Each step encodes the batch's images with the frozen VQ-VAE named by ``task.vqvae`` (a shipped
or user model name, or a .safetensors path), reads the captions with the tokenizer built from
the first ``task.vocab_captions`` training captions, and minimises the cross-entropy of the
image codes. A ``task.p_uncond`` share of captions is replaced by padding so the model also
learns the unconditional distribution that classifier-free guidance needs.

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
from core.nets.prior import PriorConfig, ScenePrior
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
class PriorOptions:
    vqvae: str = "vqvae_scenes"  # the VQ-VAE whose codes are modelled (name or path)
    p_uncond: float = 0.1  # share of captions dropped for classifier-free guidance
    vocab_captions: int = 20000  # training captions the word list is built from
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
        if self.vocab_captions < 1:
            raise ValueError("task.vocab_captions must be at least 1")
        parse_pairs(self.hold_out)


@register_task("prior")
class PriorTask(Task):
    architecture = "prior"
    Options = PriorOptions

    def __init__(self, recipe: Any, device: torch.device, generator: torch.Generator) -> None:
        super().__init__(recipe, device, generator)
        self.vq, vq_name, vq_sha = load_frozen(self.options.vqvae, VQVAE, ("vqvae",), "VQ-VAE",
                                               "vqvae_scenes", device)
        if self.vq.config.image_size != recipe.data.size:
            raise RecipeError(f"the VQ-VAE {vq_name} reads {self.vq.config.image_size} px "
                              f"images; set data.size = {self.vq.config.image_size}.")
        vocab = caption_vocab(recipe.data, self.options.vocab_captions, "a scene prior")
        model = dict(recipe.model)
        model.update(vocab=vocab, grid=self.vq.config.grid,
                     codebook_size=self.vq.config.codebook_size, vqvae=vq_name,
                     vqvae_sha256=vq_sha)
        self.config = PriorConfig(**model)
        self.prior = ScenePrior(self.config).to(device)
        self.held_out = parse_pairs(self.options.hold_out)
        self._grid_text: torch.Tensor | None = None

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
        text = self.prior.tokenizer.batch([batch.captions[i] for i in rows],
                                          self.config.text_len).to(self.device)
        if self._grid_text is None and self.rank == 0:
            self._grid_text = text[: self.recipe.train.sample_count].clone()
        g = torch.Generator().manual_seed(stream_seed(self.recipe.seed, step, "uncond"))
        drop = torch.rand(len(rows), generator=g) < self.options.p_uncond
        text[drop.to(self.device)] = PAD
        with self.autocast():
            logits = self.net("prior")(text, codes)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), codes.reshape(-1))
        self.optimizer_step("prior", loss)
        # Bits per code: how well the prior predicts the VQ-VAE's codes (log2 K at chance).
        return {"loss": loss.detach(), "bits": loss.detach() / np.log(2),
                "kept": float(len(rows)), "lr": lr}

    @torch.no_grad()
    def sample_grid(self, n: int) -> np.ndarray | None:
        """Samples (temperature 1) for the first captions the model saw."""
        if n <= 0 or self._grid_text is None:
            return None
        from core.sampling.prior import sample_codes

        prior = self.ema("prior")
        with self.evaluating(prior):
            codes = sample_codes(prior, self._grid_text[:n],
                                 torch.Generator().manual_seed(self.recipe.seed + 1))
            images = self.vq.decode(codes.view(-1, self.config.grid, self.config.grid))
        return image_grid(images.float())

    def export(self) -> tuple[nn.Module, str, dict[str, Any]]:
        return self.ema("prior"), "prior", dataclasses.asdict(self.config)
