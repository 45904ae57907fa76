"""A VQ-VAE: a convolutional autoencoder whose latent grid is a grid of codebook indices.

van den Oord et al. 2017 ("Neural Discrete Representation Learning"): the encoder maps an
image to a ``grid`` x ``grid`` map of ``code_dim`` vectors, each replaced by its nearest entry
of a learned codebook (straight-through gradient to the encoder), and the decoder draws the
image back from the quantised map. The codebook is learned by exponential moving averages of
the vectors assigned to each code (the paper's appendix A.1) rather than by a loss, and codes
that fall out of use are restarted on random encoder outputs (Dhariwal et al. 2020, Jukebox;
Zeghidour et al. 2021) so the whole codebook stays in use. The scene prior (core/nets/prior.py)
models the index grid; the decoder turns its samples into pixels.

Input and output are NCHW in [-1, 1]; an image of ``image_size`` gives a grid of
``image_size / downsample`` codes per side.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.registry import register


@dataclass
class VQVAEConfig:
    image_size: int = 64
    channels: int = 3
    base: int = 64  # channels after the first stride-2 stage (x2 for the later stages)
    downsample: int = 8  # 2, 4, 8 or 16: image pixels per code along each side
    res_blocks: int = 2  # residual blocks at the code resolution, in encoder and decoder
    codebook_size: int = 512
    code_dim: int = 64
    ema_decay: float = 0.99  # codebook EMA (van den Oord et al. 2017, appendix A.1)
    commitment: float = 0.25  # beta of the commitment loss

    def __post_init__(self) -> None:
        if self.downsample not in (2, 4, 8, 16):
            raise ValueError(f"downsample must be 2, 4, 8 or 16, not {self.downsample}")
        if self.image_size % self.downsample:
            raise ValueError(f"image_size ({self.image_size}) must be a multiple of "
                             f"downsample ({self.downsample})")
        if min(self.base, self.codebook_size, self.code_dim, self.channels) < 1:
            raise ValueError("base, codebook_size, code_dim and channels must be at least 1")
        if not 0 < self.ema_decay < 1:
            raise ValueError(f"ema_decay must lie in (0, 1), not {self.ema_decay}")

    @property
    def grid(self) -> int:
        """Codes per side of the index grid."""
        return self.image_size // self.downsample

    @property
    def stages(self) -> int:
        return self.downsample.bit_length() - 1


class ResBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1),
                                   nn.ReLU(), nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class Quantizer(nn.Module):
    """Nearest-neighbour lookup into a codebook kept by EMA (no gradient reaches it)."""

    def __init__(self, size: int, dim: int, decay: float) -> None:
        super().__init__()
        self.decay = decay
        self.register_buffer("codebook", torch.randn(size, dim) * 0.1)
        # EMA of assignments per code; all zero, so the first update starts every code on data.
        self.register_buffer("cluster_size", torch.zeros(size))
        self.register_buffer("code_sum", self.codebook.clone())  # EMA of the assigned vectors

    def codes(self, z: torch.Tensor) -> torch.Tensor:
        """(N, D, H, W) encoder output -> (N, H, W) nearest code indices."""
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        book = self.codebook
        dist = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ book.t()
                + book.pow(2).sum(1)[None, :])
        return dist.argmin(1).view(z.shape[0], z.shape[2], z.shape[3])

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """(N, H, W) indices -> (N, D, H, W) code vectors."""
        return F.embedding(codes, self.codebook).permute(0, 3, 1, 2).contiguous()

    @torch.no_grad()
    def update(self, z: torch.Tensor, codes: torch.Tensor, generator: torch.Generator,
               dead_below: float) -> int:
        """One EMA step of the codebook towards the vectors assigned to each code, then restart
        codes whose EMA count fell below ``dead_below`` on random vectors of this batch.
        Returns the number of codes restarted."""
        flat = z.detach().float().permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        onehot = F.one_hot(codes.reshape(-1), self.codebook.shape[0]).float()
        self.cluster_size.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.code_sum.mul_(self.decay).add_(onehot.t() @ flat, alpha=1 - self.decay)
        # Laplace smoothing keeps rarely used codes from dividing by ~0 (appendix A.1).
        n = self.cluster_size.sum()
        size = (self.cluster_size + 1e-5) / (n + self.codebook.shape[0] * 1e-5) * n
        self.codebook.copy_(self.code_sum / size[:, None])
        dead = (self.cluster_size < dead_below).nonzero().flatten()
        if len(dead):
            pick = torch.randint(0, len(flat), (len(dead),), generator=generator)
            fresh = flat[pick.to(flat.device)]
            self.codebook[dead] = fresh
            self.code_sum[dead] = fresh
            self.cluster_size[dead] = 1.0
        return len(dead)


@register("vqvae", config=VQVAEConfig)
class VQVAE(nn.Module):
    """``forward(x)`` -> (reconstruction, encoder output, code indices);
    ``encode(x)`` -> indices, ``decode(indices)`` -> images."""

    def __init__(self, config: VQVAEConfig) -> None:
        super().__init__()
        self.config = config
        c = config.base
        widths = [c] + [2 * c] * (config.stages - 1)
        enc: list[nn.Module] = []
        ch = config.channels
        for w in widths:
            enc += [nn.Conv2d(ch, w, 4, 2, 1), nn.ReLU()]
            ch = w
        enc += [nn.Conv2d(ch, ch, 3, padding=1)]
        enc += [ResBlock(ch) for _ in range(config.res_blocks)]
        enc += [nn.ReLU(), nn.Conv2d(ch, config.code_dim, 1)]
        self.encoder = nn.Sequential(*enc)
        self.quantizer = Quantizer(config.codebook_size, config.code_dim, config.ema_decay)
        dec: list[nn.Module] = [nn.Conv2d(config.code_dim, ch, 3, padding=1)]
        dec += [ResBlock(ch) for _ in range(config.res_blocks)]
        dec += [nn.ReLU()]
        for w in reversed(widths[:-1]):
            dec += [nn.ConvTranspose2d(ch, w, 4, 2, 1), nn.ReLU()]
            ch = w
        dec += [nn.ConvTranspose2d(ch, config.channels, 4, 2, 1)]
        self.decoder = nn.Sequential(*dec)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z = self.encoder(x)
        codes = self.quantizer.codes(z.float())
        q = self.quantizer.lookup(codes).to(z.dtype)
        # Straight-through estimator: the decoder sees q, the encoder gets q's gradient.
        recon = self.decoder(z + (q - z).detach())
        return recon, z, codes

    def commitment_loss(self, z: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Mean squared distance of the encoder output to its codes (eq. 3's beta term)."""
        return F.mse_loss(z.float(), self.quantizer.lookup(codes).detach())

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, 3, S, S) in [-1, 1] -> code indices (N, grid, grid)."""
        return self.quantizer.codes(self.encoder(x).float())

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Code indices (N, grid, grid) -> images (N, 3, S, S), roughly in [-1, 1]."""
        q = self.quantizer.lookup(codes.long())
        return self.decoder(q.to(next(self.decoder.parameters()).dtype))
