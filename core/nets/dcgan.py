"""DCGAN generator and discriminator (Radford, Metz & Chintala 2016, "Unsupervised
Representation Learning with Deep Convolutional GANs").

The paper's architecture guidelines (section 3): strided convolutions instead of pooling in the
discriminator and fractional-strided (transposed) convolutions in the generator; batch norm in
both nets except the generator's output and the discriminator's input layer; no fully connected
hidden layers; ReLU in the generator with Tanh at the output; LeakyReLU (slope 0.2) in the
discriminator; weights initialised from N(0, 0.02). Optional spectral normalisation of the
discriminator (Miyato et al. 2018) replaces its batch norm and steadies training.

With ``code_groups`` the first ``sum(code_groups)`` latent numbers are an attribute code, one
group per attribute of the training world, whose class is the group's largest number (so every
class is equally likely under the N(0, I) prior, as in the faces world): the discriminator then
also classifies each attribute (an auxiliary classifier, Odena et al. 2017, "Conditional Image
Synthesis with Auxiliary Classifier GANs"), and training teaches the generator to draw the
classes its code names. The model still samples unconditionally from N(0, I); arithmetic and
sliders act on the same latent.

The stack grows from 4x4 by doubling, so ``image_size`` must be a power of two >= 8
(64 px: 4 -> 8 -> 16 -> 32 -> 64, as in the paper's LSUN model).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from core.registry import register


@dataclass
class DCGANConfig:
    image_size: int = 64
    channels: int = 3
    z_dim: int = 100
    g_base: int = 64  # generator channels at the last hidden layer (x2 per layer towards 4x4)
    d_base: int = 64  # discriminator channels at its first layer
    spectral_norm: bool = False  # discriminator only
    code_groups: tuple[int, ...] = ()  # classes per attribute of the latent's attribute code

    def __post_init__(self) -> None:
        self.code_groups = tuple(int(k) for k in self.code_groups)
        if any(k < 2 for k in self.code_groups) or sum(self.code_groups) > self.z_dim:
            raise ValueError("code_groups holds 2 or more classes per attribute, and all of "
                             "them fit in z_dim")
        s = self.image_size
        if s < 8 or s & (s - 1):
            raise ValueError(f"image_size must be a power of two >= 8, not {s}")
        for name in ("channels", "z_dim", "g_base", "d_base"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")

    @property
    def n_layers(self) -> int:
        """Doublings between 4x4 and image_size."""
        return self.image_size.bit_length() - 3


def init_weights(module: nn.Module) -> None:
    """The paper's N(0, 0.02) init for convolutions, N(1, 0.02) scale for batch norm."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


@register("dcgan", config=DCGANConfig)
class Generator(nn.Module):
    """z (N, z_dim) or (N, z_dim, 1, 1) -> images (N, C, S, S) in [-1, 1]."""

    def __init__(self, config: DCGANConfig) -> None:
        super().__init__()
        self.config = config
        n = config.n_layers
        ch = config.g_base * 2 ** (n - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(config.z_dim, ch, 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(ch), nn.ReLU(True)]
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, config.channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim == 2:
            z = z[:, :, None, None]
        return self.main(z)


@register("dcgan_discriminator", config=DCGANConfig)
class Discriminator(nn.Module):
    """images (N, C, S, S) -> real/fake logits (N,)."""

    def __init__(self, config: DCGANConfig) -> None:
        super().__init__()
        self.config = config
        ch = config.d_base
        layers: list[nn.Module] = [nn.Conv2d(config.channels, ch, 4, 2, 1, bias=False),
                                   nn.LeakyReLU(0.2, True)]
        for _ in range(config.n_layers - 1):
            layers.append(nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False))
            if not config.spectral_norm:
                layers.append(nn.BatchNorm2d(ch * 2))
            layers.append(nn.LeakyReLU(0.2, True))
            ch *= 2
        layers.append(nn.Conv2d(ch, 1, 4, 1, 0, bias=False))
        self.main = nn.Sequential(*layers)
        # the auxiliary classifier: one logit per class of every code group
        self.aux = nn.Conv2d(ch, sum(config.code_groups), 4, 1, 0) if config.code_groups \
            else None
        init_weights(self)  # before the parametrisation, which hides the raw weight
        if config.spectral_norm:
            for i, m in enumerate(self.main):
                if isinstance(m, nn.Conv2d):
                    self.main[i] = nn.utils.parametrizations.spectral_norm(m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).flatten()

    def classify(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(real/fake logits (N,), attribute logits (N, sum(code_groups))): one pass."""
        if self.aux is None:
            raise ValueError("this discriminator has no attribute code to classify")
        h = self.main[:-1](x)
        return self.main[-1](h).flatten(), self.aux(h).flatten(1)

