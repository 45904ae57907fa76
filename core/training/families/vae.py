"""beta-VAE training (Kingma & Welling 2014; Higgins et al. 2017).

Loss per image: -log p(x|z) under the Gaussian decoder of core.nets.vae plus beta times
KL(q(z|x) || N(0, I)), with beta optionally warmed up linearly from 0 (Bowman et al. 2016) so
the posterior does not collapse early. The optimised value is divided by the number of pixel
values (a per-dimension scale keeps float16 gradients in range); the logged ``recon`` and
``kl`` are in nats per image.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from core.nets.vae import VAE, VAEConfig, kl_divergence
from core.training.recipe import RecipeError
from core.training.task import Batch, Task, image_grid, register_task


@dataclass
class VAEOptions:
    beta: float = 1.0
    kl_warmup_steps: int = 0  # beta ramps from 0 to beta over these steps

    def __post_init__(self) -> None:
        if self.beta < 0:
            raise ValueError(f"task.beta must not be negative, not {self.beta}")
        if self.kl_warmup_steps < 0:
            raise ValueError(f"task.kl_warmup_steps must not be negative, not "
                             f"{self.kl_warmup_steps}")


@register_task("vae")
class VAETask(Task):
    architecture = "vae"
    Options = VAEOptions

    def __init__(self, recipe: Any, device: torch.device, generator: torch.Generator) -> None:
        super().__init__(recipe, device, generator)
        self.config = VAEConfig(**recipe.model)
        if self.config.image_size != recipe.data.size:
            raise RecipeError(f"model.image_size ({self.config.image_size}) must equal data.size "
                             f"({recipe.data.size}).")
        self.vae = VAE(self.config).to(device)
        self._grid_x: torch.Tensor | None = None

    def modules(self) -> dict[str, nn.Module]:
        return {"vae": self.vae}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"vae": self.adam(self.vae)}

    def ema_names(self) -> list[str]:
        return ["vae"]

    def beta_at(self, step: int) -> float:
        warm = self.options.kl_warmup_steps
        return self.options.beta * (min(1.0, (step + 1) / warm) if warm > 0 else 1.0)

    def training_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        x = batch.images
        noise = self.randn(step, "eps", self.config.latent_dim, local=len(batch))
        with self.autocast():
            recon, mu, logvar = self.net("vae")(x, noise)
        nll = self.vae.nll(x, recon).mean()
        kl = kl_divergence(mu, logvar).mean()
        loss = (nll + self.beta_at(step) * kl) / x[0].numel()
        self.optimizer_step("vae", loss)
        if self._grid_x is None and self.rank == 0:
            self._grid_x = x[: self.recipe.train.sample_count].detach().clone()
        return {"loss": (nll + kl).detach(), "recon": nll.detach(), "kl": kl.detach()}

    def sample_grid(self, n: int) -> np.ndarray | None:
        """Top half: a fixed set of training images; below: their reconstructions; then
        samples from the prior."""
        if n <= 0 or self._grid_x is None:
            return None
        vae = self.ema("vae")
        x = self._grid_x[:n]
        with self.evaluating(vae):
            recon = vae(x)[0]
            samples = vae.sample(len(x), torch.Generator().manual_seed(self.recipe.seed + 1))
        return image_grid(torch.cat([x.float(), recon.float(), samples.float()]), cols=len(x))

    def export(self) -> tuple[nn.Module, str, dict[str, Any]]:
        return self.ema("vae"), "vae", dataclasses.asdict(self.config)
