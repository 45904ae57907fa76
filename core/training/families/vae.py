"""beta-VAE training (Kingma & Welling 2014; Higgins et al. 2017).

Loss per image: -log p(x|z) under the Gaussian decoder of core.nets.vae plus beta times
KL(q(z|x) || N(0, I)), with beta optionally warmed up linearly from 0 (Bowman et al. 2016) so
the posterior does not collapse early. The optimised value is divided by the number of pixel
values (a per-dimension scale keeps float16 gradients in range); the logged ``recon`` and
``kl`` are in nats per image.

Two options for the faces world:

- ``task.attribute_code``: the first latent numbers are an attribute code
  (core/training/attribute_code.py): the encoder's posterior means are read as class logits of
  each attribute and taught the image's labels (weight ``task.code_weight``), so the code names
  the classes and the decoder learns to draw them; samples stay unconditional N(0, I) draws.
- ``task.adversarial``: a VAE-GAN term (Larsen et al. 2016) against blur: from step
  ``task.adversarial_start`` a spectrally normalised DCGAN discriminator (hinge loss, Miyato et
  al. 2018) sees real images against reconstructions and prior samples, and the decoder is
  also trained to pass it, weighted by ``task.adversarial`` (per pixel value, as the rest).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from core.nets.dcgan import DCGANConfig, Discriminator
from core.nets.vae import VAE, VAEConfig, kl_divergence
from core.training.attribute_code import code_loss, label_classes, world_attributes
from core.training.families.dcgan import frozen
from core.training.recipe import RecipeError
from core.training.task import Batch, Task, image_grid, register_task


@dataclass
class VAEOptions:
    beta: float = 1.0
    kl_warmup_steps: int = 0  # beta ramps from 0 to beta over these steps
    attribute_code: bool = False
    code_weight: float = 1.0
    # The code's logits are code_scale x the posterior means, with label smoothing
    # code_smoothing: together they bound how far apart the means of two classes are asked to
    # be (about 3 / code_scale for two classes at 0.1), so the classes' clusters overlap under
    # the posterior noise, the decoder learns the whole range between them, and draws from
    # the prior land on a class rather than between far-apart clusters.
    code_scale: float = 1.0
    code_smoothing: float = 0.0
    adversarial: float = 0.0  # the VAE-GAN term's weight; 0: off
    adversarial_start: int = 0
    d_base: int = 32  # the discriminator's width

    def __post_init__(self) -> None:
        if not 0 <= self.code_smoothing < 1 or self.code_scale <= 0:
            raise ValueError("task.code_smoothing must lie in [0, 1) and task.code_scale be "
                             "positive")
        if min(self.code_weight, self.adversarial, self.adversarial_start, self.d_base - 1) < 0:
            raise ValueError("task.code_weight, task.adversarial and task.adversarial_start "
                             "must not be negative, task.d_base at least 1")
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
        self.attributes = world_attributes(recipe.data.source) \
            if self.options.attribute_code else []
        self.groups = [len(classes) for _, classes in self.attributes]
        if sum(self.groups) > self.config.latent_dim:
            raise RecipeError(f"The attribute code needs {sum(self.groups)} latent numbers; "
                              f"model.latent_dim is {self.config.latent_dim}.")
        self.d = Discriminator(DCGANConfig(
            image_size=self.config.image_size, channels=self.config.channels,
            d_base=self.options.d_base, spectral_norm=True)).to(device) \
            if self.options.adversarial > 0 else None

    def modules(self) -> dict[str, nn.Module]:
        return {"vae": self.vae} if self.d is None else {"vae": self.vae, "discriminator": self.d}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        out = {"vae": self.adam(self.vae)}
        if self.d is not None:
            out["discriminator"] = self.adam(self.d, betas=(0.5, 0.999))
        return out

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
        out = {"loss": (nll + kl).detach(), "recon": nll.detach(), "kl": kl.detach()}
        if self.attributes:
            code = code_loss(self.options.code_scale * mu[:, :sum(self.groups)],
                             label_classes(batch.labels, self.attributes, self.device),
                             self.groups, self.options.code_smoothing)
            loss = loss + self.options.code_weight * code
            out["code"] = code.detach()
        adversarial = self.d is not None and step >= self.options.adversarial_start
        if adversarial:
            prior = self.randn(step, "prior", self.config.latent_dim, local=len(batch))
            with self.autocast():
                fakes = torch.cat([recon, self.vae.decode(prior.to(self.device))])
            out.update(self._discriminator_step(x, fakes.detach()))
            with frozen(self.d), self.autocast():
                fool = -self.d(fakes).float().mean()
            loss = loss + self.options.adversarial * fool
            out["g_adv"] = fool.detach()
        self.optimizer_step("vae", loss)
        if self._grid_x is None and self.rank == 0:
            self._grid_x = x[: self.recipe.train.sample_count].detach().clone()
        return out

    def _discriminator_step(self, real: torch.Tensor, fakes: torch.Tensor
                            ) -> dict[str, torch.Tensor]:
        """One hinge-loss update of the discriminator: real images against ``fakes``."""
        d = self.net("discriminator")
        with self.autocast():
            loss = (torch.relu(1 - d(real).float()).mean()
                    + torch.relu(1 + d(fakes).float()).mean())
        self.optimizer_step("discriminator", loss)
        return {"d": loss.detach()}

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
