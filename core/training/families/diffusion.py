"""Diffusion training: DDPM's simple loss (Ho et al. 2020, eq. 14) for a UNet noise predictor.

Each step draws a timestep t uniformly for every image, noises it to x_t = sqrt(alpha_bar_t)
x0 + sqrt(1 - alpha_bar_t) eps with the recipe's schedule (core/schedulers) and regresses the
UNet's output on eps. With ``task.autoencoder`` set, x0 is that frozen KL autoencoder's latent
grid of the image (latent diffusion, Rombach et al. 2022), which is what makes 64 px diffusion
trainable on a laptop CPU; with ``task.autoencoder = ""`` the UNet works on pixels.

The learning rate warms up and then decays on a cosine (Task.schedule_lr); the exported model
is the EMA copy (``train.ema``), as in DDPM.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.nets.autoencoder import Autoencoder
from core.nets.unet import UNet, UNetConfig
from core.schedulers import NoiseSchedule
from core.training.recipe import RecipeError
from core.training.task import Batch, Task, image_grid, load_frozen, register_task, stream_seed


@dataclass
class DiffusionOptions:
    autoencoder: str = ""  # the latent space (a model name or path); "" = pixel space
    warmup_steps: int = 200
    final_lr: float = 0.1

    def __post_init__(self) -> None:
        if self.warmup_steps < 0 or not 0 <= self.final_lr <= 1:
            raise ValueError("task.warmup_steps must not be negative and task.final_lr must "
                             "lie in [0, 1]")


@register_task("diffusion")
class DiffusionTask(Task):
    architecture = "unet"
    Options = DiffusionOptions

    def __init__(self, recipe: Any, device: torch.device, generator: torch.Generator) -> None:
        super().__init__(recipe, device, generator)
        model = dict(recipe.model)
        self.ae: Autoencoder | None = None
        if self.options.autoencoder:
            self.ae, name, sha = load_frozen(self.options.autoencoder, Autoencoder,
                                             ("autoencoder",), "autoencoder", "ae_faces", device)
            if self.ae.config.image_size != recipe.data.size:
                raise RecipeError(f"the autoencoder {name} reads {self.ae.config.image_size} px "
                                  f"images; set data.size = {self.ae.config.image_size}.")
            model.update(image_size=self.ae.config.latent_size,
                         channels=self.ae.config.latent_channels, autoencoder=name,
                         autoencoder_sha256=sha)
        elif model.get("image_size", recipe.data.size) != recipe.data.size:
            raise RecipeError(f"model.image_size ({model['image_size']}) must equal data.size "
                              f"({recipe.data.size}) for pixel-space diffusion.")
        self.config = UNetConfig(**model)
        self.unet = UNet(self.config).to(device)
        self.schedule = NoiseSchedule.named(self.config.schedule, self.config.timesteps)
        self._grid_noise: torch.Tensor | None = None

    def modules(self) -> dict[str, nn.Module]:
        return {"unet": self.unet}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"unet": self.adam(self.unet)}

    def ema_names(self) -> list[str]:
        return ["unet"]

    def to_model_space(self, images: torch.Tensor) -> torch.Tensor:
        return self.ae.encode(images) if self.ae is not None else images

    def training_step(self, batch: Batch, step: int) -> dict[str, float | torch.Tensor]:
        lr = self.schedule_lr("unet", step, self.options.warmup_steps, self.options.final_lr)
        x0 = self.to_model_space(batch.images).float()
        cfg = self.config
        g = torch.Generator().manual_seed(stream_seed(self.recipe.seed, step, "timesteps"))
        t = torch.randint(0, cfg.timesteps, (self.recipe.train.batch_size,), generator=g)
        t = t[self.rank * len(x0):(self.rank + 1) * len(x0)].to(self.device)
        eps = self.randn(step, "noise", cfg.channels, cfg.image_size, cfg.image_size,
                         local=len(x0))
        xt = self.schedule.add_noise(x0, eps, t)
        with self.autocast():
            pred = self.net("unet")(xt, t)
        loss = F.mse_loss(pred.float(), eps)
        self.optimizer_step("unet", loss)
        return {"loss": loss.detach(), "lr": lr}

    @torch.no_grad()
    def sample_grid(self, n: int) -> np.ndarray | None:
        """DDIM samples (20 steps) from fixed noise, so grids are comparable over a run."""
        if n <= 0:
            return None
        from core.sampling.diffusion import DiffusionModel

        unet = self.ema("unet")
        with self.evaluating(unet):
            model = DiffusionModel(unet, self.ae)
            images = model.generate(n, 20, torch.Generator().manual_seed(self.recipe.seed + 1))
        return image_grid(images.float())

    def export(self) -> tuple[nn.Module, str, dict[str, Any]]:
        return self.ema("unet"), "unet", dataclasses.asdict(self.config)
