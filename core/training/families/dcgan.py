"""DCGAN training (Radford et al. 2016).

Per step: one discriminator update on a real and a generated batch, then one generator update,
both with Adam (the paper: lr 2e-4, beta1 0.5). The loss is the paper's non-saturating one,
-log D(G(z)) for the generator (Goodfellow et al. 2014, section 3), or the hinge loss (Lim & Ye
2017; Miyato et al. 2018) with ``task.loss = "hinge"``. Options that keep a small GAN from
collapsing on a small world:

- ``task.augment``: differentiable augmentation of every image the discriminator sees, real
  and generated alike (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
  Training"): "colour" (brightness, saturation, contrast), "translation" (up to 1/8 of the
  side, zero-filled), "cutout" (a square of half the side).
- ``task.r1``: the R1 penalty on real images (Mescheder et al. 2018), gamma/2 |grad D|^2,
  computed every R1_EVERY steps and scaled to match.
- ``task.attribute_code``: the latent's first numbers are an attribute code of the faces world
  (core.nets.dcgan: code_groups); the discriminator classifies the attributes of real images
  (their labels) and the generator is trained so that its pictures show the classes its code
  names (AC-GAN, Odena et al. 2017), weighted by ``task.aux_weight``.

EMA weights of the generator (Karras et al. 2018, "Progressive Growing of GANs", section 5) are
exported when ``train.ema`` > 0, after their batch-norm statistics are measured again for the
EMA weights themselves (the online generator's running statistics do not fit them).
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
from core.training.attribute_code import (
    code_classes,
    code_loss,
    label_classes,
    world_attributes,
)
from core.training.recipe import RecipeError
from core.training.task import Batch, Task, image_grid, register_task, stream_seed

LOSSES = ("bce", "hinge")
AUGMENTS = ("colour", "translation", "cutout")
R1_EVERY = 4  # lazy R1 (Karras et al. 2020): the penalty every few steps, scaled up to match
BN_BATCHES = 32  # batches of 64 that measure the exported generator's batch-norm statistics


@dataclass
class DCGANOptions:
    real_label: float = 1.0  # < 1 gives one-sided label smoothing (Salimans et al. 2016)
    loss: str = "bce"
    augment: list[str] = dataclasses.field(default_factory=list)
    r1: float = 0.0  # R1 gamma; 0: off
    attribute_code: bool = False
    aux_weight: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.real_label <= 1.0:
            raise ValueError(f"task.real_label must be in (0, 1], not {self.real_label}")
        if self.loss not in LOSSES:
            raise ValueError(f"task.loss must be one of {', '.join(LOSSES)}, not {self.loss!r}")
        unknown = [a for a in self.augment if a not in AUGMENTS]
        if unknown:
            raise ValueError(f"unknown task.augment {unknown[0]!r}; known: "
                             f"{', '.join(AUGMENTS)}")
        if self.r1 < 0 or self.aux_weight < 0:
            raise ValueError("task.r1 and task.aux_weight must not be negative")


def augment(x: torch.Tensor, kinds: list[str], g: torch.Generator) -> torch.Tensor:
    """DiffAugment's colour, translation and cutout (see the module docstring), differentiable
    in ``x``; the random draws come from ``g`` (on the CPU)."""
    n, _, h, w = x.shape

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=g).to(x.device, x.dtype)

    if "colour" in kinds:
        x = x + (rand(n, 1, 1, 1) - 0.5)  # brightness (images in [-1, 1])
        mean = x.mean(1, keepdim=True)
        x = (x - mean) * (rand(n, 1, 1, 1) * 2) + mean  # saturation
        mean = x.mean((1, 2, 3), keepdim=True)
        x = (x - mean) * (rand(n, 1, 1, 1) + 0.5) + mean  # contrast
    if "translation" in kinds:
        r = max(1, h // 8)
        shifts = torch.randint(-r, r + 1, (n, 2), generator=g).tolist()
        padded = F.pad(x, (r, r, r, r))
        x = torch.stack([padded[i, :, r + dy:r + dy + h, r + dx:r + dx + w]
                         for i, (dy, dx) in enumerate(shifts)])
    if "cutout" in kinds:
        cy = (rand(n, 1, 1) * h).long()
        cx = (rand(n, 1, 1) * w).long()
        ys = torch.arange(h, device=x.device).view(1, h, 1)
        xs = torch.arange(w, device=x.device).view(1, 1, w)
        hole = ((ys - cy).abs() < h // 4) & ((xs - cx).abs() < w // 4)
        x = x * (~hole).unsqueeze(1).to(x.dtype)
    return x


@torch.no_grad()
def measure_batch_norm(g: nn.Module, z_dim: int, device: torch.device, seed: int) -> None:
    """Set ``g``'s batch-norm running statistics to their mean over BN_BATCHES batches of
    prior samples drawn through ``g`` itself (its training mode: batch statistics)."""
    norms = [m for m in g.modules() if isinstance(m, nn.BatchNorm2d)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    was_training = g.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative mean over the batches
    g.train()
    rng = torch.Generator().manual_seed(seed)
    for _ in range(BN_BATCHES):
        g(torch.randn(64, z_dim, generator=rng).to(device))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    g.train(was_training)


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
        model = dict(recipe.model)
        self.attributes: list[tuple[str, list[str]]] = []
        if self.options.attribute_code:
            self.attributes = world_attributes(recipe.data.source)
            model["code_groups"] = [len(classes) for _, classes in self.attributes]
        self.config = DCGANConfig(**model)
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

    def _augmented(self, x: torch.Tensor, step: int, stream: str) -> torch.Tensor:
        if not self.options.augment:
            return x
        g = torch.Generator().manual_seed(stream_seed(self.recipe.seed, step, stream))
        return augment(x, self.options.augment, g)

    def _judged(self, d: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(real/fake logits, attribute logits or None) of ``d`` for images ``x``."""
        if not self.attributes:
            return d(x).float(), None
        # a DDP wrapper forwards only forward(): reach the module for classify()
        logits, aux = getattr(d, "module", d).classify(x)
        return logits.float(), aux.float()

    def training_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        n = len(batch)
        opts = self.options
        z = self.randn(step, "z", self.config.z_dim, local=n)
        d, g = self.net("discriminator"), self.net("generator")
        out: dict[str, torch.Tensor] = {}
        r1 = opts.r1 > 0 and step % R1_EVERY == 0
        with self.autocast():
            fake = g(z)
            if batch.images.is_contiguous(memory_format=torch.channels_last):
                fake = fake.contiguous(memory_format=torch.channels_last)
            real = self._augmented(batch.images, step, "augment_real")
            if r1:
                real = real.detach().requires_grad_(True)
            # Real and fake pass separately, as in the paper's code: batch norm then normalises
            # each batch by its own statistics.
            real_logits, real_aux = self._judged(d, real)
            fake_logits, _ = self._judged(d, self._augmented(fake.detach(), step, "augment_d"))
            if opts.loss == "hinge":
                loss_d = F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
            else:
                real_target = torch.full_like(real_logits, opts.real_label)
                loss_d = (F.binary_cross_entropy_with_logits(real_logits, real_target)
                          + F.binary_cross_entropy_with_logits(fake_logits,
                                                               torch.zeros_like(fake_logits)))
            if real_aux is not None:
                aux_real = code_loss(real_aux, label_classes(batch.labels, self.attributes,
                                                             self.device),
                                     self.config.code_groups)
                loss_d = loss_d + opts.aux_weight * aux_real
                out["aux_real"] = aux_real.detach()
            if r1:
                (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
                penalty = grad.pow(2).flatten(1).sum(1).mean()
                loss_d = loss_d + opts.r1 / 2 * R1_EVERY * penalty
                out["r1"] = penalty.detach()
        self.optimizer_step("discriminator", loss_d)
        # The raw discriminator (not its DDP wrapper): its weights get no gradient here, and
        # the generator's own DDP wrapper still averages the generator's gradients.
        with frozen(self.d), self.autocast():
            logits, aux = self._judged(self.d, self._augmented(fake, step, "augment_g"))
            if opts.loss == "hinge":
                loss_g = -logits.mean()
            else:
                loss_g = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
            if aux is not None:
                groups = self.config.code_groups
                aux_fake = code_loss(aux, code_classes(z.to(aux.device), groups), groups)
                loss_g = loss_g + opts.aux_weight * aux_fake
                out["aux_fake"] = aux_fake.detach()
        self.optimizer_step("generator", loss_g)
        score = (lambda v: (v > 0).float().mean()) if opts.loss == "hinge" else torch.sigmoid
        return {"d": loss_d.detach(), "g": loss_g.detach(),
                "d_real": score(real_logits.detach()).mean(),
                "d_fake": score(fake_logits.detach()).mean(), **out}

    def _exported(self) -> nn.Module:
        """The generator to show and export: the EMA copy with its own batch-norm statistics
        (the online generator itself without EMA)."""
        g = self.ema("generator")
        if g is not self.g:
            measure_batch_norm(g, self.config.z_dim, self.device, self.recipe.seed + 2)
        return g

    def sample_grid(self, n: int) -> np.ndarray | None:
        if n <= 0:
            return None
        g = self._exported()
        with self.evaluating(g):
            images = g(self._grid_z[:n].to(self.device))
        return image_grid(images)

    def export(self) -> tuple[nn.Module, str, dict[str, Any]]:
        return self._exported(), "dcgan", dataclasses.asdict(self.config)
