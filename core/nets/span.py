"""SPAN, the Swift Parameter-free Attention Network, in the key layout of users' model files.

Wan et al. 2024, "Swift Parameter-free Attention Network for Efficient Super-Resolution" (the
NTIRE 2024 efficient-SR winner). Every conv is a ``Conv3XC``: a 1x1 shortcut (``sk``) plus a
1x1 -> 3x3 -> 1x1 chain (``conv.0-2``) that are linear, so at inference they fold into a single
3x3 conv (``eval_conv``). The reference recomputes that fold from ``sk`` and ``conv`` on every
forward and ignores the stored ``eval_conv``; so does Easel (the fold is a few small tensor
products, nothing beside the picture's convs). Six SPAB blocks apply the parameter-free
attention ``(x + f(x)) * (sigmoid(f(x)) - 0.5)``. Names follow the reference, so a state dict
from such a file loads as is::

    conv_1, block_1.c1_r .. block_6.c3_r, conv_2   Conv3XC: sk, conv.0-2, eval_conv
    conv_cat                                       1x1 conv over four feature maps
    upsampler.0                                    3x3 conv to out_channels * scale**2
    no_norm                                        (a buffer) only in files trained without
                                                   the input normalisation

Input and output are NCHW in [0, 1], like the original (the pipeline converts).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.registry import register

BLOCKS = 6
# The reference's input normalisation (DIV2K's mean colour, and pixels scaled to 0-255); a
# file cannot record it, so every SPAN file assumes these.
RGB_MEAN = (0.4488, 0.4371, 0.4040)
IMG_RANGE = 255.0


@dataclass
class SPANConfig:
    in_channels: int = 3
    out_channels: int = 3
    feature_channels: int = 48
    scale: int = 4
    norm: bool = True  # subtract RGB_MEAN and scale by IMG_RANGE first; False in no_norm files

    def __post_init__(self) -> None:
        if min(self.in_channels, self.out_channels, self.feature_channels, self.scale) < 1:
            raise ValueError("channels, feature_channels and scale must be at least 1")
        if self.norm and self.in_channels != len(RGB_MEAN):
            raise ValueError("the input normalisation is for RGB: in_channels must be 3")

    @property
    def multiple(self) -> int:
        return 1

    @property
    def reach(self) -> int:
        """Input pixels an output pixel sees on each side: one per 3x3 conv (conv_1, three
        per block, conv_2, the upsampler's)."""
        return 1 + 3 * BLOCKS + 1 + 1


class Conv3XC(nn.Module):
    def __init__(self, c_in: int, c_out: int, gain: int = 2) -> None:
        super().__init__()
        self.sk = nn.Conv2d(c_in, c_out, 1)
        self.conv = nn.Sequential(nn.Conv2d(c_in, c_in * gain, 1),
                                  nn.Conv2d(c_in * gain, c_out * gain, 3),
                                  nn.Conv2d(c_out * gain, c_out, 1))
        self.eval_conv = nn.Conv2d(c_in, c_out, 3, padding=1)  # kept for the file's keys

    def folded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The single 3x3 conv (weight, bias) equal to ``sk`` plus the 1x1-3x3-1x1 chain."""
        (w1, b1), (w2, b2), (w3, b3) = ((c.weight, c.bias) for c in self.conv)
        # a 1x1 conv is a matrix on channels: the chain is w3 @ w2[:, :, y, x] @ w1 per tap
        weight = torch.einsum("on,nmyx,mi->oiyx", w3[:, :, 0, 0], w2, w1[:, :, 0, 0])
        bias = w3[:, :, 0, 0] @ (w2.sum((2, 3)) @ b1 + b2) + b3
        weight = weight + F.pad(self.sk.weight, (1, 1, 1, 1))
        return weight, bias + self.sk.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.folded()
        return F.conv2d(x, weight, bias, padding=1)


class SPAB(nn.Module):
    """Three Conv3XC with SiLU between them and the parameter-free attention around them."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.c1_r = Conv3XC(channels, channels)
        self.c2_r = Conv3XC(channels, channels)
        self.c3_r = Conv3XC(channels, channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the block's output, its first conv's output after the SiLU). The reference
        returns the first conv's output after an in-place SiLU, so the activated one is what
        every trained SPAN concatenates."""
        act1 = F.silu(self.c1_r(x))
        out3 = self.c3_r(F.silu(self.c2_r(act1)))
        return (out3 + x) * (torch.sigmoid(out3) - 0.5), act1


@register("span", config=SPANConfig)
class SPAN(nn.Module):
    """``forward(x)``: NCHW in [0, 1] at HxW -> NCHW at (scale*H)x(scale*W)."""

    unit_range = True  # takes and gives pixels in [0, 1]

    def __init__(self, config: SPANConfig) -> None:
        super().__init__()
        self.config = config
        c = config.feature_channels
        if not config.norm:
            self.register_buffer("no_norm", torch.zeros(1))
        self.conv_1 = Conv3XC(config.in_channels, c)
        for i in range(BLOCKS):
            self.add_module(f"block_{i + 1}", SPAB(c))
        self.conv_cat = nn.Conv2d(4 * c, c, 1)
        self.conv_2 = Conv3XC(c, c)
        self.upsampler = nn.Sequential(
            nn.Conv2d(c, config.out_channels * config.scale ** 2, 3, padding=1),
            nn.PixelShuffle(config.scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.norm:
            mean = torch.tensor(RGB_MEAN, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
            x = (x - mean) * IMG_RANGE
        first = self.conv_1(x)
        out, _ = self.block_1(first)
        after_1 = out
        for i in range(2, BLOCKS + 1):
            out, inner = getattr(self, f"block_{i}")(out)
        # the reference concatenates the first features, the last block's (through conv_2),
        # the first block's and the last block's first conv (activated)
        cat = torch.cat([first, self.conv_2(out), after_1, inner], 1)
        return self.upsampler(self.conv_cat(cat))
