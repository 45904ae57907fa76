"""DCGAN training (Radford et al. 2016) with the non-saturating GAN loss.

Per step: one discriminator update on a real and a generated batch, then one generator update
with the non-saturating loss -log D(G(z)) (Goodfellow et al. 2014, section 3), both with Adam
(the paper: lr 2e-4, beta1 0.5). EMA weights of the generator (Karras et al. 2018, "Progressive
Growing of GANs", section 5) are exported when ``train.ema`` > 0.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.nets.dcgan import DCGANConfig, Discriminator, Generator
from core.training.recipe import RecipeError
from core.training.task import Batch, Task, image_grid, register_task


@dataclass
class DCGANOptions:
    real_label: float = 1.0  # < 1 gives one-sided label smoothing (Salimans et al. 2016)

    def __post_init__(self) -> None:
        if not 0.0 < self.real_label <= 1.0:
            raise ValueError(f"task.real_label must be in (0, 1], not {self.real_label}")


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """No parameter gradients for ``module`` (the discriminator during the generator step)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)


@register_task("dcgan")
class DCGANTask(Task):
    architecture = "dcgan"
    Options = DCGANOptions

    def __init__(self, recipe: Any, device: torch.device, generator: torch.Generator) -> None:
        super().__init__(recipe, device, generator)
        self.config = DCGANConfig(**recipe.model)
        if self.config.image_size != recipe.data.size:
            raise RecipeError(f"model.image_size ({self.config.image_size}) must equal data.size "
                             f"({recipe.data.size}).")
        self.g = Generator(self.config).to(device)
        self.d = Discriminator(self.config).to(device)
        # Fixed noise for the sample grids, so grids over training are comparable.
        self._grid_z = torch.randn(max(1, recipe.train.sample_count), self.config.z_dim,
                                   generator=torch.Generator().manual_seed(recipe.seed + 1))

    def modules(self) -> dict[str, nn.Module]:
        return {"generator": self.g, "discriminator": self.d}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.adam(self.g), "discriminator": self.adam(self.d)}

    def ema_names(self) -> list[str]:
        return ["generator"]

    def training_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        n = len(batch)
        z = self.randn(step, "z", self.config.z_dim, local=n)
        d, g = self.net("discriminator"), self.net("generator")
        with self.autocast():
            fake = g(z)
            if batch.images.is_contiguous(memory_format=torch.channels_last):
                fake = fake.contiguous(memory_format=torch.channels_last)
            # Real and fake pass separately, as in the paper's code: batch norm then normalises
            # each batch by its own statistics.
            real_logits = d(batch.images)
            fake_logits = d(fake.detach())
            real_target = torch.full_like(real_logits, self.options.real_label)
            loss_d = (F.binary_cross_entropy_with_logits(real_logits.float(), real_target)
                      + F.binary_cross_entropy_with_logits(fake_logits.float(),
                                                           torch.zeros_like(fake_logits)))
        self.optimizer_step("discriminator", loss_d)
        # The raw discriminator (not its DDP wrapper): its weights get no gradient here, and
        # the generator's own DDP wrapper still averages the generator's gradients.
        with frozen(self.d), self.autocast():
            logits = self.d(fake).float()
            loss_g = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        self.optimizer_step("generator", loss_g)
        return {"d": loss_d.detach(), "g": loss_g.detach(),
                "d_real": torch.sigmoid(real_logits.detach().float()).mean(),
                "d_fake": torch.sigmoid(fake_logits.detach().float()).mean()}

    def sample_grid(self, n: int) -> np.ndarray | None:
        if n <= 0:
            return None
        g = self.ema("generator")
        with self.evaluating(g):
            images = g(self._grid_z[:n].to(self.device))
        return image_grid(images)

    def export(self) -> tuple[nn.Module, str, dict[str, Any]]:
        return self.ema("generator"), "dcgan", dataclasses.asdict(self.config)
