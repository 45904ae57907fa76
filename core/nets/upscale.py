"""A small x4 (or x2, x8) super-resolution net: EDSR-lite with sub-pixel upsampling.

Layout (Lim et al. 2017, "Enhanced Deep Residual Networks for Single Image Super-Resolution"):
a 3x3 conv into ``channels`` features, ``blocks`` residual blocks (conv-ReLU-conv, no batch
norm: EDSR drops it because it flattens the range of the features that super-resolution needs)
and a conv, all at the LOW resolution with a long skip around them. Then one sub-pixel stage per
factor of two (Shi et al. 2016, "Real-Time Single Image and Video Super-Resolution Using an
Efficient Sub-Pixel Convolutional Neural Network", ESPCN): a conv to 4x the channels and
PixelShuffle(2). The last stage emits RGB directly (3 * 4 channels before the shuffle), so no
convolution ever runs at the output resolution: on 2 CPU cores that is what keeps a 64 -> 256
upscale near 15 ms (bench: 14.6 ms against 25 ms with a 16-channel conv at 256 px).

The net predicts a residual on top of bicubic upsampling of its input (a global skip, as in
VDSR, Kim et al. 2016), so at initialisation it already is bicubic and learns only the detail.
Input and output are NCHW in [-1, 1]; any input size works (the output is not clamped).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.registry import register


@dataclass
class UpscaleConfig:
    scale: int = 4  # a power of two: 2, 4 or 8
    channels: int = 32  # features at the low resolution and in the upsampling stages
    blocks: int = 6  # residual blocks at the low resolution

    def __post_init__(self) -> None:
        if self.scale not in (2, 4, 8):
            raise ValueError(f"scale must be 2, 4 or 8, not {self.scale}")
        if self.channels < 1:
            raise ValueError(f"channels must be at least 1, not {self.channels}")
        if self.blocks < 0:
            raise ValueError(f"blocks must not be negative, not {self.blocks}")

    @property
    def stages(self) -> int:
        return self.scale.bit_length() - 1

    @property
    def multiple(self) -> int:
        """Tiles may start anywhere (the net folds nothing)."""
        return 1

    @property
    def reach(self) -> int:
        """How far (in input pixels) an output pixel sees: every 3x3 conv at the input
        resolution adds 1 (head, two per block, the body's conv, the first stage's conv),
        the later stages' convs add less than 1 each, and the bicubic skip adds 2. Tiles
        that overlap by this much give the same pixels as one pass over the whole image."""
        return 1 + 2 * self.blocks + 1 + self.stages + 2


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x), inplace=True))


@register("upscale", config=UpscaleConfig)
class Upscaler(nn.Module):
    """``forward(x)``: NCHW in [-1, 1] at HxW -> NCHW at (scale*H)x(scale*W)."""

    unit_range = False  # takes and gives pixels in [-1, 1] (the users' nets take [0, 1])

    def __init__(self, config: UpscaleConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        self.head = nn.Conv2d(3, c, 3, padding=1)
        self.body = nn.Sequential(*[ResidualBlock(c) for _ in range(config.blocks)],
                                  nn.Conv2d(c, c, 3, padding=1))
        stages: list[nn.Module] = []
        for _ in range(config.stages - 1):
            stages += [nn.Conv2d(c, 4 * c, 3, padding=1), nn.PixelShuffle(2), nn.ReLU(True)]
        stages += [nn.Conv2d(c, 3 * 4, 3, padding=1), nn.PixelShuffle(2)]
        self.upsample = nn.Sequential(*stages)
        # Zero the last conv: the untrained net is exactly bicubic upsampling, and training
        # starts from that instead of from random detail on top of it.
        last = stages[-2]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.head(x)
        features = features + self.body(features)
        return bicubic(x, self.config.scale) + self.upsample(features)


def bicubic(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic upsampling by ``scale``. MPS has no bicubic kernel in the torch versions Easel
    allows (and no CPU fallback unless enabled before torch starts), so there it runs on the
    CPU; autograd follows the round trip."""
    if x.device.type == "mps":
        return F.interpolate(x.cpu(), scale_factor=scale, mode="bicubic",
                             align_corners=False).to(x.device)
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)
