"""VQ-VAE training (van den Oord et al. 2017) with an EMA codebook and dead-code restarts.

Loss per step: mean squared reconstruction error plus ``commitment`` times the encoder's
distance to its codes (eq. 3; the codebook term is replaced by the EMA update of
core.nets.vqvae.Quantizer.update). Codes whose EMA use falls below ``task.dead_code`` are
restarted on random encoder outputs of the batch. With ``task.adversarial_weight`` > 0 a
patch discriminator adds the VQGAN hinge loss (Esser et al. 2021) from
``task.adversarial_start`` on, for crisper edges than a squared error alone gives.

Logged: ``mse`` (in [-1, 1] units), ``psnr`` (dB, on [0, 255]), ``perplexity`` of the batch's
code histogram, and ``restarts`` (codes restarted this step).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.nets.vqvae import VQVAE, VQVAEConfig
from core.training.families.dcgan import frozen
from core.training.recipe import RecipeError
from core.training.task import Batch, Task, image_grid, register_task, stream_seed


@dataclass
class VQVAEOptions:
    dead_code: float = 0.5  # restart a code when its EMA count per step falls below this
    adversarial_weight: float = 0.0  # VQGAN hinge loss weight; 0 = off
    adversarial_start: int = 0  # step at which the adversarial loss switches on

    def __post_init__(self) -> None:
        if self.dead_code < 0 or self.adversarial_weight < 0 or self.adversarial_start < 0:
            raise ValueError("task.dead_code, adversarial_weight and adversarial_start must not "
                             "be negative")


class PatchDiscriminator(nn.Module):
    """A small PatchGAN (Isola et al. 2017): one real/fake logit per overlapping patch."""

    def __init__(self, channels: int = 3, base: int = 32) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(channels, base, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(base, base * 2, 4, 2, 1), nn.GroupNorm(8, base * 2),
            nn.LeakyReLU(0.2, True), nn.Conv2d(base * 2, 1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


@register_task("vqvae")
class VQVAETask(Task):
    architecture = "vqvae"
    Options = VQVAEOptions

    def __init__(self, recipe: Any, device: torch.device, generator: torch.Generator) -> None:
        super().__init__(recipe, device, generator)
        self.config = VQVAEConfig(**recipe.model)
        if self.config.image_size != recipe.data.size:
            raise RecipeError(f"model.image_size ({self.config.image_size}) must equal data.size "
                              f"({recipe.data.size}).")
        self.vq = VQVAE(self.config).to(device)
        self.disc = (PatchDiscriminator(self.config.channels).to(device)
                     if self.options.adversarial_weight > 0 else None)
        self._grid_x: torch.Tensor | None = None

    def modules(self) -> dict[str, nn.Module]:
        mods: dict[str, nn.Module] = {"vqvae": self.vq}
        if self.disc is not None:
            mods["discriminator"] = self.disc
        return mods

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        opts = {"vqvae": self.adam(self.vq)}
        if self.disc is not None:
            opts["discriminator"] = self.adam(self.disc)
        return opts

    def training_step(self, batch: Batch, step: int) -> dict[str, float | torch.Tensor]:
        x = batch.images
        with self.autocast():
            recon, z, codes = self.net("vqvae")(x)
        mse = F.mse_loss(recon.float(), x)
        loss = mse + self.config.commitment * self.vq.commitment_loss(z, codes)
        adversarial = self.disc is not None and step >= self.options.adversarial_start
        out: dict[str, float | torch.Tensor] = {}
        if adversarial:
            with frozen(self.disc), self.autocast():
                g_loss = -self.disc(recon).float().mean()
            loss = loss + self.options.adversarial_weight * g_loss
            out["g"] = g_loss.detach()
        self.optimizer_step("vqvae", loss)
        if adversarial:
            with self.autocast():
                real, fake = self.net("discriminator")(x), self.net("discriminator")(
                    recon.detach())
            d_loss = F.relu(1 - real.float()).mean() + F.relu(1 + fake.float()).mean()
            self.optimizer_step("discriminator", d_loss)
            out["d"] = d_loss.detach()
        g = torch.Generator().manual_seed(stream_seed(self.recipe.seed, step, "restart"))
        restarts = self.vq.quantizer.update(z, codes, g, self.options.dead_code)
        if self._grid_x is None and self.rank == 0:
            self._grid_x = x[: self.recipe.train.sample_count].detach().clone()
        counts = torch.bincount(codes.flatten(), minlength=self.config.codebook_size).float()
        p = counts / counts.sum()
        # Tensors, not floats: the trainer reads losses on log steps only, so a step never
        # waits for the device (xlogy: unused codes add 0 without a data-dependent mask).
        out.update({"loss": loss.detach(), "mse": mse.detach(),
                    "psnr": 10 * torch.log10(4.0 / mse.detach().clamp(min=1e-10)),
                    "perplexity": torch.exp(-torch.xlogy(p, p).sum()),
                    "restarts": float(restarts)})
        return out

    def sample_grid(self, n: int) -> np.ndarray | None:
        """Top row: a fixed set of training images; below: their reconstructions."""
        if n <= 0 or self._grid_x is None:
            return None
        x = self._grid_x[:n]
        with self.evaluating(self.vq):
            recon = self.vq.decode(self.vq.encode(x))
        return image_grid(torch.cat([x.float(), recon.float()]), cols=len(x))

    def export(self) -> tuple[nn.Module, str, dict[str, Any]]:
        return self.vq, "vqvae", dataclasses.asdict(self.config)
