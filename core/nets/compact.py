"""SRVGGNetCompact, Real-ESRGAN's compact upscaler (realesr-general-x4v3, realesr-animevideov3),
in the key layout of users' model files.

A plain stack of 3x3 convs with PReLUs at the input resolution (Wang et al. 2021, Real-ESRGAN's
"compact" model), a last conv to ``out_channels * scale**2`` and a pixel shuffle (Shi et al.
2016), added to the nearest-neighbour upsampled input. Parameter names are those of
Real-ESRGAN's SRVGGNetCompact, so a state dict from such a file loads as is::

    body.0            3x3 conv into num_feat features
    body.1            PReLU (one slope per feature)
    body.2k, 2k+1     3x3 conv and PReLU, num_conv times
    body.2*num_conv+2 3x3 conv to out_channels * scale**2

Input and output are NCHW in [0, 1], like the original (the pipeline converts).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.registry import register


@dataclass
class CompactConfig:
    in_channels: int = 3
    out_channels: int = 3
    num_feat: int = 64
    num_conv: int = 16
    scale: int = 4

    def __post_init__(self) -> None:
        if min(self.in_channels, self.num_feat, self.scale) < 1 or self.num_conv < 0:
            raise ValueError("channels, num_feat and scale must be at least 1, num_conv at "
                             "least 0")
        if self.out_channels != self.in_channels:
            raise ValueError("the upsampled input is added to the output, so out_channels "
                             f"must equal in_channels ({self.in_channels}), not "
                             f"{self.out_channels}")

    @property
    def multiple(self) -> int:
        return 1

    @property
    def reach(self) -> int:
        """Input pixels an output pixel sees on each side: one per 3x3 conv."""
        return self.num_conv + 2


@register("compact", config=CompactConfig)
class SRVGGNetCompact(nn.Module):
    """``forward(x)``: NCHW in [0, 1] at HxW -> NCHW at (scale*H)x(scale*W)."""

    unit_range = True  # takes and gives pixels in [0, 1]

    def __init__(self, config: CompactConfig) -> None:
        super().__init__()
        self.config = config
        c = config.num_feat
        layers: list[nn.Module] = [nn.Conv2d(config.in_channels, c, 3, padding=1),
                                   nn.PReLU(c)]
        for _ in range(config.num_conv):
            layers += [nn.Conv2d(c, c, 3, padding=1), nn.PReLU(c)]
        layers.append(nn.Conv2d(c, config.out_channels * config.scale ** 2, 3, padding=1))
        self.body = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        s = self.config.scale
        return F.pixel_shuffle(out, s) + F.interpolate(x, scale_factor=s, mode="nearest")
