"""KL autoencoder training (the first stage of latent diffusion, Rombach et al. 2022).

Loss per step: L1 plus squared reconstruction error, plus ``task.kl_weight`` times the KL
divergence of q(z | x) from N(0, I) per latent value (LDM uses ~1e-6 per pixel: just enough
to keep the latent space smooth for diffusion). The moving average of the posterior means'
spread becomes the model's ``latent_std``, so the diffusion model trains on unit-variance
latents.

Logged: ``mse`` (in [-1, 1] units), ``psnr`` (dB, on [0, 255]), ``kl`` per latent value and
``std`` (the latents' spread).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.nets.autoencoder import Autoencoder, AutoencoderConfig
from core.training.recipe import RecipeError
from core.training.task import Batch, Task, image_grid, register_task


@dataclass
class AutoencoderOptions:
    kl_weight: float = 1e-6
    std_decay: float = 0.99  # moving average of the latent spread

    def __post_init__(self) -> None:
        if self.kl_weight < 0:
            raise ValueError(f"task.kl_weight must not be negative, not {self.kl_weight}")
        if not 0 <= self.std_decay < 1:
            raise ValueError(f"task.std_decay must lie in [0, 1), not {self.std_decay}")


@register_task("autoencoder")
class AutoencoderTask(Task):
    architecture = "autoencoder"
    Options = AutoencoderOptions

    def __init__(self, recipe: Any, device: torch.device, generator: torch.Generator) -> None:
        super().__init__(recipe, device, generator)
        self.config = AutoencoderConfig(**recipe.model)
        if self.config.image_size != recipe.data.size:
            raise RecipeError(f"model.image_size ({self.config.image_size}) must equal data.size "
                              f"({recipe.data.size}).")
        self.ae = Autoencoder(self.config).to(device)
        self._grid_x: torch.Tensor | None = None

    def modules(self) -> dict[str, nn.Module]:
        return {"autoencoder": self.ae}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"autoencoder": self.adam(self.ae)}

    def training_step(self, batch: Batch, step: int) -> dict[str, float | torch.Tensor]:
        x = batch.images
        cfg = self.config
        noise = self.randn(step, "posterior", cfg.latent_channels, cfg.latent_size,
                           cfg.latent_size, local=len(x))
        with self.autocast():
            recon, mean, logvar = self.net("autoencoder")(x, noise)
        recon, mean, logvar = recon.float(), mean.float(), logvar.float()
        mse = F.mse_loss(recon, x)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).mean()
        loss = F.l1_loss(recon, x) + mse + self.options.kl_weight * kl
        self.optimizer_step("autoencoder", loss)
        with torch.no_grad():
            std = mean.detach().std()
            if step == 0:
                self.ae.latent_std.copy_(std)
            else:
                self.ae.latent_std.lerp_(std, 1 - self.options.std_decay)
        if self._grid_x is None and self.rank == 0:
            self._grid_x = x[: self.recipe.train.sample_count].detach().clone()
        return {"loss": loss.detach(), "mse": mse.detach(), "kl": kl.detach(),
                "psnr": 10 * torch.log10(4.0 / mse.detach().clamp(min=1e-10)),
                "std": self.ae.latent_std.detach().clone()}  # read on log steps only

    def sample_grid(self, n: int) -> np.ndarray | None:
        """Top row: a fixed set of training images; below: their reconstructions."""
        if n <= 0 or self._grid_x is None:
            return None
        x = self._grid_x[:n]
        with self.evaluating(self.ae):
            recon = self.ae.decode(self.ae.encode(x))
        return image_grid(torch.cat([x.float(), recon.float()]), cols=len(x))

    def export(self) -> tuple[nn.Module, str, dict[str, Any]]:
        return self.ae, "autoencoder", dataclasses.asdict(self.config)
