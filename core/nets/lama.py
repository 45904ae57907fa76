"""LaMa's inpainting generator (Suvorov et al. 2022, "Resolution-robust Large Mask Inpainting
with Fourier Convolutions"), the network of the released big-lama model, written as Easel's
own module (spandrel, which packages it, needs torchvision).

Layout (an FFC ResNet): a 7x7 convolution, ``downsamplings`` stride-2 3x3 convolutions, then
``blocks`` residual blocks of Fast Fourier Convolutions (Chi et al. 2020, NeurIPS, "Fast
Fourier Convolution") at the bottleneck, as many stride-2 transposed convolutions back up, a
7x7 convolution and a sigmoid. An FFC splits its channels into a local group (ordinary 3x3
convolutions) and a global group whose convolution runs on the picture's 2-D Fourier
transform, so from the first block on every pixel sees the whole picture: what lets LaMa
continue a wall or a fence across a large hole. In big-lama three quarters of the bottleneck's
channels are global.

The parameter names are those of the released checkpoints (``model.<index>.<part>``, as
advimman/lama's ``FFCResNetGenerator`` numbers its ``nn.Sequential``), so a user's file loads
as it is once core/thirdparty/lama.py has taken off its wrapper prefix; layers without
parameters (paddings, activations, the join of the two groups) keep their places in the
numbering. Input: an RGB picture in [0, 1] and a mask (1 = hole), sides multiples of
2 ** downsamplings; output: the painted picture in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from core.registry import register


@dataclass
class LaMaConfig:
    in_channels: int = 4  # the picture with its hole blanked, and the mask
    out_channels: int = 3
    channels: int = 64  # after the first convolution; doubled by every downsampling
    downsamplings: int = 3
    blocks: int = 18  # FFC residual blocks at the bottleneck
    max_channels: int = 1024  # no layer is wider
    # of the bottleneck's channels, how many go through the Fourier (global) path: 0.75 of
    # them in every released LaMa
    global_channels: int = 384

    def __post_init__(self) -> None:
        for name in ("in_channels", "out_channels", "channels", "downsamplings", "max_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.in_channels < 2:
            raise ValueError("in_channels counts the mask too: at least 2")
        if self.blocks < 0:
            raise ValueError(f"blocks must not be negative, not {self.blocks}")
        if not 0 < self.global_channels < self.bottleneck:
            raise ValueError(f"global_channels must lie between 0 and the bottleneck's "
                             f"{self.bottleneck} channels, not {self.global_channels}")

    def width(self, level: int) -> int:
        """Channels after ``level`` downsamplings."""
        return min(self.max_channels, self.channels * 2 ** level)

    @property
    def bottleneck(self) -> int:
        return self.width(self.downsamplings)

    @property
    def multiple(self) -> int:
        """The picture's sides must be multiples of this."""
        return 2 ** self.downsamplings


class FourierUnit(nn.Module):
    """A 1x1 convolution, batch norm and ReLU applied to the real and imaginary parts of the
    features' 2-D real FFT ("ortho" norm, as LaMa was trained), then transformed back. The
    transforms run in float32 whatever the features' dtype."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_layer = nn.Conv2d(2 * channels, 2 * channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(2 * channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        f = torch.fft.rfftn(x.float(), dim=(-2, -1), norm="ortho")
        # (N, C, H, W') complex -> (N, 2C, H, W') with channel c's real part at 2c and its
        # imaginary part at 2c + 1: the order the trained 1x1 convolution reads.
        f = torch.stack((f.real, f.imag), dim=2).flatten(1, 2)
        f = torch.relu(self.bn(self.conv_layer(f.to(x.dtype)))).float()
        f = f.unflatten(1, (-1, 2))
        out = torch.fft.irfftn(torch.complex(f[:, :, 0], f[:, :, 1]), s=size, dim=(-2, -1),
                               norm="ortho")
        return out.to(x.dtype)


class SpectralTransform(nn.Module):
    """The global-to-global path of an FFC: 1x1 convolution to half the channels, a Fourier
    unit added to its own input, 1x1 convolution back."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        half = out_channels // 2
        self.conv1 = nn.Sequential(nn.Conv2d(in_channels, half, 1, bias=False),
                                   nn.BatchNorm2d(half), nn.ReLU(inplace=True))
        self.fu = FourierUnit(half)
        self.conv2 = nn.Conv2d(half, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(x + self.fu(x))


Groups = tuple[torch.Tensor, torch.Tensor | None]  # (local, global); no global group: None


class FFC(nn.Module):
    """The four paths of a Fast Fourier Convolution between the local and global channel
    groups (local->local, local->global, global->local: spatial convolutions with reflection
    padding; global->global: the spectral transform). A path whose input or output group is
    empty does not exist."""

    def __init__(self, in_channels: int, out_channels: int, in_global: int, out_global: int,
                 kernel: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        in_local, out_local = in_channels - in_global, out_channels - out_global

        def conv(cin: int, cout: int) -> nn.Conv2d | None:
            if not (cin and cout):
                return None
            return nn.Conv2d(cin, cout, kernel, stride, padding, bias=False,
                             padding_mode="reflect")

        self.convl2l = conv(in_local, out_local)
        self.convl2g = conv(in_local, out_global)
        self.convg2l = conv(in_global, out_local)
        if in_global and out_global and stride != 1:
            raise ValueError("the spectral transform of a strided FFC is not supported")
        self.convg2g = SpectralTransform(in_global, out_global) if in_global and out_global \
            else None

    def forward(self, local: torch.Tensor | None, glob: torch.Tensor | None
                ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        def total(*paths: tuple[nn.Module | None, torch.Tensor | None]) -> torch.Tensor | None:
            parts = [m(x) for m, x in paths if m is not None and x is not None]
            return sum(parts[1:], parts[0]) if parts else None

        return (total((self.convl2l, local), (self.convg2l, glob)),
                total((self.convl2g, local), (self.convg2g, glob)))


class FFCLayer(nn.Module):
    """An FFC followed by batch norm and ReLU on each group (advimman/lama's FFC_BN_ACT)."""

    def __init__(self, in_channels: int, out_channels: int, in_global: int, out_global: int,
                 kernel: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.ffc = FFC(in_channels, out_channels, in_global, out_global, kernel, stride,
                       padding)
        out_local = out_channels - out_global
        self.bn_l = nn.BatchNorm2d(out_local) if out_local else None
        self.bn_g = nn.BatchNorm2d(out_global) if out_global else None

    def forward(self, x: torch.Tensor | Groups) -> Groups:
        local, glob = x if isinstance(x, tuple) else (x, None)
        local, glob = self.ffc(local, glob)
        return (None if local is None else torch.relu(self.bn_l(local)),
                None if glob is None else torch.relu(self.bn_g(glob)))


class FFCResBlock(nn.Module):
    """Two FFC layers with a skip around them, on both groups."""

    def __init__(self, channels: int, global_channels: int) -> None:
        super().__init__()
        self.conv1 = FFCLayer(channels, channels, global_channels, global_channels, 3, 1, 1)
        self.conv2 = FFCLayer(channels, channels, global_channels, global_channels, 3, 1, 1)

    def forward(self, x: Groups) -> Groups:
        local, glob = self.conv2(self.conv1(x))
        return x[0] + local, x[1] + glob


class JoinGroups(nn.Module):
    """The local and global groups back into one tensor (local first)."""

    def forward(self, x: Groups) -> torch.Tensor:
        return torch.cat(x, dim=1) if x[1] is not None else x[0]


@register("lama", config=LaMaConfig)
class LaMa(nn.Module):
    def __init__(self, config: LaMaConfig) -> None:
        super().__init__()
        self.config = c = config
        last = c.downsamplings - 1
        layers: list[nn.Module] = [nn.ReflectionPad2d(3),
                                   FFCLayer(c.in_channels, c.channels, 0, 0, 7)]
        layers += [FFCLayer(c.width(i), c.width(i + 1), 0, c.global_channels if i == last else 0,
                            3, stride=2, padding=1) for i in range(c.downsamplings)]
        layers += [FFCResBlock(c.bottleneck, c.global_channels) for _ in range(c.blocks)]
        layers.append(JoinGroups())
        for level in range(c.downsamplings, 0, -1):
            layers += [nn.ConvTranspose2d(c.width(level), c.width(level - 1), 3, stride=2,
                                          padding=1, output_padding=1),
                       nn.BatchNorm2d(c.width(level - 1)), nn.ReLU(inplace=True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(c.channels, c.out_channels, 7),
                   nn.Sigmoid()]
        self.model = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``image`` (N, C-1, H, W) in [0, 1], ``mask`` (N, 1, H, W), 1 where to paint ->
        (N, out_channels, H, W) in [0, 1]: the whole picture as the model paints it."""
        m = self.config.multiple
        if image.shape[-2] % m or image.shape[-1] % m:
            raise ValueError(f"LaMa needs sides that are multiples of {m}, got "
                             f"{image.shape[-1]}x{image.shape[-2]}")
        return self.model(torch.cat([image * (1 - mask), mask], dim=1))
