"""Fast style transfer: a feed-forward image transform net (Johnson et al. 2016) trained for one
style, with instance normalisation (Ulyanov et al. 2016) instead of batch norm.

Down by 4 with two strided convolutions, residual blocks at a quarter size, up by 4 with
nearest-neighbour upsampling then convolution (no transposed convolutions, so no checkerboard;
Odena et al. 2016). Reflection padding keeps borders clean. ``base`` 16 makes it about four
times cheaper than the published net (base 32), which keeps a 512 px picture well under a
second on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.registry import register


@dataclass
class TransformConfig:
    base: int = 16  # channels at full size; x2 and x4 at half and quarter size
    res_blocks: int = 5
    style: str = ""  # what the net was trained to paint (its style image), for the card

    def __post_init__(self) -> None:
        if self.base < 4 or self.res_blocks < 0:
            raise ValueError("base must be at least 4 and res_blocks not negative")


def _conv(cin: int, cout: int, k: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, padding_mode="reflect"),
                               nn.InstanceNorm2d(cout, affine=True)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class _Residual(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(c, c, 3), _conv(c, c, 3, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class _Up(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = _conv(cin, cout, 3)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return self.conv(F.interpolate(x, size=size, mode="nearest"))


@register("transform", config=TransformConfig)
class TransformNet(nn.Module):
    """(N, 3, H, W) in [-1, 1] -> the same size restyled, in [-1, 1]; any H and W."""

    def __init__(self, config: TransformConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or TransformConfig()
        b = config.base
        self.down = nn.ModuleList(
            [_conv(3, b, 9), _conv(b, 2 * b, 3, 2), _conv(2 * b, 4 * b, 3, 2)])
        self.res = nn.Sequential(*[_Residual(4 * b) for _ in range(config.res_blocks)])
        self.up1 = _Up(4 * b, 2 * b)
        self.up2 = _Up(2 * b, b)
        self.out = nn.Conv2d(b, 3, 9, 1, 4, padding_mode="reflect")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sizes = []
        for layer in self.down:
            sizes.append(x.shape[-2:])
            x = layer(x)
        x = self.res(x)
        x = self.up1(x, sizes[2])
        x = self.up2(x, sizes[1])
        return torch.tanh(self.out(x))
