"""A small UNet noise predictor for DDPM/DDIM diffusion (Ho et al. 2020, appendix B).

The layout of the DDPM paper at laptop size: a time embedding (sinusoidal, then an MLP) feeds
every residual block; the encoder halves the resolution between levels, the decoder doubles it
and concatenates the encoder's features at the same resolution (the U); self-attention runs at
the resolutions listed in ``attention``. GroupNorm and SiLU throughout. ``forward(x, t)``
predicts the noise eps in x_t = sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) eps; the schedule the
model was trained with is part of its config, so samplers rebuild the same one
(core/schedulers).

With ``autoencoder`` set, the UNet works in that KL autoencoder's latent space (latent
diffusion, Rombach et al. 2022): ``image_size`` and ``channels`` are then the latent grid's,
and ``autoencoder_sha256`` pins the exact autoencoder it was trained on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from core.registry import register


@dataclass
class UNetConfig:
    image_size: int = 64
    channels: int = 3
    base: int = 64  # channels at full resolution
    mults: list[int] = field(default_factory=lambda: [1, 2, 2, 2])  # per level, x base
    res_blocks: int = 1  # residual blocks per level (the decoder has one more)
    attention: list[int] = field(default_factory=lambda: [16])  # resolutions with attention
    dropout: float = 0.0
    schedule: str = "cosine"  # the noise schedule trained with: linear or cosine
    timesteps: int = 1000
    autoencoder: str = ""  # name of the latent space's autoencoder; "" = pixel space
    autoencoder_sha256: str = ""

    def __post_init__(self) -> None:
        levels = len(self.mults)
        if levels < 1 or self.image_size % (2 ** (levels - 1)):
            raise ValueError(f"image_size {self.image_size} cannot be halved {levels - 1} times")
        if self.base < 8 or self.base % 8:
            raise ValueError(f"base must be a multiple of 8 (GroupNorm groups), not {self.base}")
        if self.channels < 1 or any(m < 1 for m in self.mults):
            raise ValueError("channels and every mult must be at least 1")
        if self.schedule not in ("linear", "cosine"):
            raise ValueError(f"schedule must be linear or cosine, not {self.schedule!r}")
        if self.timesteps < 1 or self.res_blocks < 1:
            raise ValueError("timesteps and res_blocks must be at least 1")


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps (Vaswani et al. 2017, as in DDPM)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], 1)


def _norm(ch: int) -> nn.GroupNorm:
    # Groups must divide every channel count, including the decoder's concatenations.
    return nn.GroupNorm(math.gcd(ch, 32), ch)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, temb: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.conv1 = _norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.time = nn.Linear(temb, cout)
        self.norm2, self.conv2 = _norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class Attention(nn.Module):
    """Single-head self-attention over the pixels of a feature map."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.norm = _norm(ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, c, h * w).transpose(2, 3).unbind(1)
        y = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        return x + self.proj(y.transpose(1, 2).reshape(n, c, h, w))


@register("unet", config=UNetConfig)
class UNet(nn.Module):
    """``forward(x, t)``: x (N, C, S, S) noisy images, t (N,) integer timesteps -> eps."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = config
        base, temb = config.base, 4 * config.base
        self.time = nn.Sequential(nn.Linear(base, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.head = nn.Conv2d(config.channels, base, 3, padding=1)
        widths = [base * m for m in config.mults]
        self.down = nn.ModuleList()
        skips, ch, size = [base], base, config.image_size
        for level, w in enumerate(widths):
            for _ in range(config.res_blocks):
                self.down.append(self._level_block(ch, w, temb, size))
                ch = w
                skips.append(ch)
            if level < len(widths) - 1:
                self.down.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                skips.append(ch)
                size //= 2
        self.mid = nn.ModuleList([ResBlock(ch, ch, temb, config.dropout), Attention(ch),
                                  ResBlock(ch, ch, temb, config.dropout)])
        self.up = nn.ModuleList()
        for level, w in reversed(list(enumerate(widths))):
            for _ in range(config.res_blocks + 1):
                self.up.append(self._level_block(ch + skips.pop(), w, temb, size))
                ch = w
            if level > 0:
                self.up.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                             nn.Conv2d(ch, ch, 3, padding=1)))
                size *= 2
        self.tail = nn.Sequential(_norm(ch), nn.SiLU(), nn.Conv2d(ch, config.channels, 3,
                                                                  padding=1))

    def _level_block(self, cin: int, cout: int, temb: int, size: int) -> nn.ModuleList:
        parts: list[nn.Module] = [ResBlock(cin, cout, temb, self.config.dropout)]
        if size in self.config.attention:
            parts.append(Attention(cout))
        return nn.ModuleList(parts)

    @staticmethod
    def _run(block: nn.Module, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        if isinstance(block, nn.ModuleList):  # a residual block, maybe with attention
            h = block[0](h, temb)
            for extra in block[1:]:
                h = extra(h)
            return h
        return block(h)  # a down- or upsampling layer

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, device=x.device).reshape(-1).expand(x.shape[0])
        temb = self.time(timestep_embedding(t, self.config.base))
        h = self.head(x)
        hs = [h]
        for block in self.down:
            h = self._run(block, h, temb)
            hs.append(h)
        h = self.mid[0](h, temb)
        h = self.mid[1](h)
        h = self.mid[2](h, temb)
        for block in self.up:
            if isinstance(block, nn.ModuleList):
                h = torch.cat([h, hs.pop()], 1)
            h = self._run(block, h, temb)
        return self.tail(h)
