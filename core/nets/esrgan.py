"""RRDBNet, the ESRGAN / Real-ESRGAN generator, in the key layout of users' model files.

Wang et al. 2018, "ESRGAN: Enhanced Super-Resolution Generative Adversarial Networks", and Wang
et al. 2021, "Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure Synthetic Data".
Easel does not train this net: it runs the files artists already have (Real-ESRGAN x4plus,
x2plus, the anime 6-block model, and the many community ESRGAN models), so its parameter names
are those of BasicSR's RRDBNet and a state dict from such a file loads as is::

    conv_first                      3x3 conv into num_feat features
    body.N.rdbK.convJ   (K 1-3, J 1-5)  residual-in-residual dense blocks
    conv_body                       3x3 conv; a long skip adds it to conv_first's output
    conv_up1 .. conv_upU            nearest x2 then a 3x3 conv, U times
    conv_hr, conv_last              two 3x3 convs at the output resolution

Scale 2 and 1 models (Real-ESRGAN x2plus, 1x restoration models) keep the two x2 stages and
fold the input first with a pixel unshuffle of 2 or 4, so conv_first sees 4 or 16 times the
channels. The old ESRGAN layout (``model.0``, ``model.1.sub.N.RDB1.conv1.0``...) is renamed to
this one when it is imported (core/thirdparty/upscalers.py).

Input and output are NCHW in [0, 1], like the originals (the pipeline converts).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.registry import register

SLOPE = 0.2  # every LeakyReLU of the ESRGAN family
DENSE_CONVS = 5  # convs per residual dense block
DENSE_BLOCKS = 3  # residual dense blocks per RRDB


@dataclass
class RRDBConfig:
    in_channels: int = 3
    out_channels: int = 3
    scale: int = 4  # of the whole net: 2 ** upsamples / pixel_unshuffle
    num_feat: int = 64
    num_block: int = 23
    num_grow_ch: int = 32
    pixel_unshuffle: int = 1  # 1, or 2 (x2plus) or 4 (x1) on the input

    def __post_init__(self) -> None:
        if min(self.in_channels, self.out_channels, self.num_feat, self.num_grow_ch) < 1:
            raise ValueError("channels, num_feat and num_grow_ch must be at least 1")
        if self.num_block < 0:
            raise ValueError(f"num_block must not be negative, not {self.num_block}")
        if self.pixel_unshuffle not in (1, 2, 4):
            raise ValueError(f"pixel_unshuffle must be 1, 2 or 4, not {self.pixel_unshuffle}")
        folded = self.scale * self.pixel_unshuffle
        if self.scale < 1 or folded & (folded - 1) or folded > 16:
            raise ValueError(f"scale {self.scale} with pixel_unshuffle {self.pixel_unshuffle} "
                             "is not a power of two up to 16")

    @property
    def upsamples(self) -> int:
        """x2 stages (conv_up1, conv_up2...)."""
        return (self.scale * self.pixel_unshuffle).bit_length() - 1

    @property
    def multiple(self) -> int:
        """Tiles cut at multiples of this keep the pixel-unshuffle grid of a whole pass."""
        return self.pixel_unshuffle

    @property
    def reach(self) -> int:
        """Input pixels an output pixel sees on each side: every 3x3 conv before the x2 stages
        adds one pixel of the folded input (``pixel_unshuffle`` input pixels), the later ones
        less than one each; rounded up to a multiple of ``multiple``."""
        folded = 2 + DENSE_BLOCKS * DENSE_CONVS * self.num_block
        px = self.pixel_unshuffle * folded + self.upsamples + 2
        return -(-px // self.multiple) * self.multiple


class ResidualDenseBlock(nn.Module):
    """Five 3x3 convs, each seeing the block input and every earlier conv's output."""

    def __init__(self, num_feat: int, grow: int) -> None:
        super().__init__()
        for j in range(DENSE_CONVS):
            out = num_feat if j == DENSE_CONVS - 1 else grow
            self.add_module(f"conv{j + 1}", nn.Conv2d(num_feat + j * grow, out, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for j in range(1, DENSE_CONVS):
            conv = getattr(self, f"conv{j}")
            features.append(F.leaky_relu(conv(torch.cat(features, 1)), SLOPE))
        # ESRGAN scales each residual by 0.2 (its "residual scaling", section 3.2)
        return getattr(self, f"conv{DENSE_CONVS}")(torch.cat(features, 1)) * 0.2 + x


class RRDB(nn.Module):
    def __init__(self, num_feat: int, grow: int) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, grow)
        self.rdb2 = ResidualDenseBlock(num_feat, grow)
        self.rdb3 = ResidualDenseBlock(num_feat, grow)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


@register("esrgan", config=RRDBConfig)
class RRDBNet(nn.Module):
    """``forward(x)``: NCHW in [0, 1] at HxW -> NCHW at (scale*H)x(scale*W), any H and W."""

    unit_range = True  # takes and gives pixels in [0, 1]

    def __init__(self, config: RRDBConfig) -> None:
        super().__init__()
        self.config = config
        c, f = config.num_feat, config.pixel_unshuffle
        self.conv_first = nn.Conv2d(config.in_channels * f * f, c, 3, padding=1)
        self.body = nn.Sequential(*[RRDB(c, config.num_grow_ch) for _ in range(config.num_block)])
        self.conv_body = nn.Conv2d(c, c, 3, padding=1)
        for k in range(config.upsamples):
            self.add_module(f"conv_up{k + 1}", nn.Conv2d(c, c, 3, padding=1))
        self.conv_hr = nn.Conv2d(c, c, 3, padding=1)
        self.conv_last = nn.Conv2d(c, config.out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f, s = self.config.pixel_unshuffle, self.config.scale
        h, w = x.shape[-2:]
        if f > 1:
            # Real-ESRGAN pads by reflection to a multiple of the fold, and crops afterwards
            x = F.pixel_unshuffle(pad_to_multiple(x, f), f)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for k in range(self.config.upsamples):
            up = F.interpolate(feat, scale_factor=2, mode="nearest")
            feat = F.leaky_relu(getattr(self, f"conv_up{k + 1}")(up), SLOPE)
        out = self.conv_last(F.leaky_relu(self.conv_hr(feat), SLOPE))
        return out[..., :h * s, :w * s]


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """``x`` padded at the bottom and right to a multiple of ``multiple``: by reflection, or by
    repeating the edge where the picture is too small to reflect."""
    h, w = x.shape[-2:]
    pad = (0, -w % multiple, 0, -h % multiple)
    if not any(pad):
        return x
    return F.pad(x, pad, mode="reflect" if min(h, w) >= multiple else "replicate")
