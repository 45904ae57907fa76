"""A convolutional beta-VAE for 64x64 images (Kingma & Welling 2014; Higgins et al. 2017).

The encoder halves the resolution with stride-2 4x4 convolutions down to 4x4 and maps to the
mean and log-variance of a diagonal Gaussian posterior; the decoder mirrors it with transposed
convolutions (the layout of Higgins et al. 2017 / Burgess et al. 2018, widened to a few million
parameters). The decoder's likelihood is a Gaussian with fixed standard deviation
``decoder_std`` (in [-1, 1] pixel units), so the reconstruction term and bits per dimension are
defined by the config alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from core.registry import register


@dataclass
class VAEConfig:
    image_size: int = 64
    channels: int = 3
    latent_dim: int = 128
    base: int = 32  # channels of the first encoder layer (x2 per layer, at most 8x)
    decoder_std: float = 0.1

    def __post_init__(self) -> None:
        s = self.image_size
        if s < 8 or s & (s - 1):
            raise ValueError(f"image_size must be a power of two >= 8, not {s}")
        if self.latent_dim < 1 or self.base < 1 or self.channels < 1:
            raise ValueError("latent_dim, base and channels must be at least 1")
        if not self.decoder_std > 0:
            raise ValueError("decoder_std must be positive")

    @property
    def widths(self) -> list[int]:
        n = self.image_size.bit_length() - 3  # stride-2 stages between image_size and 4x4
        return [self.base * min(2 ** i, 8) for i in range(n)]


@register("vae", config=VAEConfig)
class VAE(nn.Module):
    """``forward(x)`` -> (reconstruction, mu, logvar); ``encode``, ``decode``, ``sample``."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        widths = config.widths
        enc: list[nn.Module] = []
        ch = config.channels
        for w in widths:
            enc += [nn.Conv2d(ch, w, 4, 2, 1), nn.LeakyReLU(0.2, True)]
            ch = w
        self.encoder = nn.Sequential(*enc, nn.Flatten())
        flat = ch * 4 * 4
        self.to_stats = nn.Linear(flat, 2 * config.latent_dim)
        self.from_latent = nn.Linear(config.latent_dim, flat)
        dec: list[nn.Module] = []
        for w in reversed([config.channels, *widths[:-1]]):
            dec += [nn.LeakyReLU(0.2, True), nn.ConvTranspose2d(ch, w, 4, 2, 1)]
            ch = w
        self.decoder = nn.Sequential(*dec, nn.Tanh())
        self._top = widths[-1]

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.to_stats(self.encoder(x)).chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = self.from_latent(z).view(z.shape[0], self._top, 4, 4)
        return self.decoder(h)

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reparameterised pass (Kingma & Welling 2014, eq. 10); ``noise`` ~ N(0, I) or the mean."""
        mu, logvar = self.encode(x)
        z = mu if noise is None else mu + noise * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.config.latent_dim, generator=generator)
        return self.decode(z.to(next(self.parameters()).device))

    def nll(self, x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
        """-log p(x|z) per image in nats under the Gaussian decoder (continuous density)."""
        var = self.config.decoder_std ** 2
        d = x[0].numel()
        sq = (x.float() - recon.float()).pow(2).flatten(1).sum(1)
        return sq / (2 * var) + 0.5 * d * math.log(2 * math.pi * var)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) per image (Kingma & Welling 2014, appendix B)."""
    return 0.5 * (mu.float().pow(2) + logvar.float().exp() - 1 - logvar.float()).sum(1)
