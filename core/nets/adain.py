"""One pass for any painting: arbitrary style transfer by adaptive instance normalisation (AdaIN,
Huang & Belongie 2017).

A fixed encoder maps the content and the painting to features; AdaIN (their eq. 8) gives the
content features the painting's per-channel mean and deviation; a trained decoder turns those
back into a picture. The strength alpha blends the target with the content's own features
before decoding (their eq. 14), so 0 gives back the content and 1 the full style.

No pretrained VGG exists offline, so the encoder is the first ``layer + 1`` convolutions of
Easel's random-weight feature network (core/nets/features.py, the seed the style loss uses):
its weights are drawn from the seed, never trained, and stored with the decoder so a decoder
always runs with the encoder it learnt to invert. The decoder mirrors the encoder with
nearest-neighbour upsampling then convolution (no transposed convolutions, so no checkerboard;
Odena et al. 2016), reflection padding and no normalisation (as Huang & Belongie's). Every size
works: pooling and upsampling follow the input's own sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.nets.features import FeatureConfig, RandomFeatures, mean_std
from core.registry import register


@dataclass
class AdaINConfig:
    feature_seed: int = 0  # the random feature network the encoder is cut from
    layer: int = 5  # the encoder's last convolution (5: 128 channels at a quarter size)
    width: float = 1.0  # decoder channels as a share of the encoder's at each size
    style: str = ""  # what the net learnt from (the recipe's styles), for the card

    def __post_init__(self) -> None:
        n = sum(FeatureConfig().convs)
        if not 0 <= self.layer < n:
            raise ValueError(f"layer must be from 0 to {n - 1}")
        if not 0.125 <= self.width <= 4:
            raise ValueError("width must be from 0.125 to 4")


def adain(content: torch.Tensor, style: torch.Tensor, alpha: float | torch.Tensor = 1.0
          ) -> torch.Tensor:
    """Content features (N, C, H, W) renormalised to the style features' per-channel mean and
    deviation (Huang & Belongie eq. 8), blended with the content's own by ``alpha`` (a number,
    or (N,) per item): 0 gives the content features back, 1 the full target."""
    cm, cs = mean_std(content)
    sm, ss = mean_std(style)
    target = (content - cm[..., None, None]) / cs[..., None, None] * ss[..., None, None] \
        + sm[..., None, None]
    if isinstance(alpha, torch.Tensor):
        alpha = alpha.to(content).view(-1, 1, 1, 1)
    return alpha * target + (1 - alpha) * content


class Encoder(nn.Module):
    """The first ``layer + 1`` convolutions (ReLU, average pooling between stages) of
    :class:`RandomFeatures` for ``seed``; fixed, never trained."""

    def __init__(self, seed: int, layer: int) -> None:
        super().__init__()
        full = RandomFeatures(FeatureConfig(seed=seed))
        self.convs = nn.ModuleList(full.convs[:layer + 1])
        self.pool_after = full.pool_after[:layer]  # no pooling after the last convolution
        self.widths = [c.out_channels for c in self.convs]
        self.requires_grad_(False)

    def pool_sizes(self, feats: list[torch.Tensor]) -> list[tuple[int, int]]:
        """What :meth:`forward` returns beside the features, from the feature network's
        per-layer features of the same picture (training has those already)."""
        return [tuple(feats[k].shape[-2:]) for k, pool in enumerate(self.pool_after) if pool]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """The features, and the sizes at which each pooling was entered (for the decoder)."""
        sizes = []
        for k, conv in enumerate(self.convs):
            x = F.relu(conv(x), inplace=True)  # never trained through: no grad to keep
            if k < len(self.pool_after) and self.pool_after[k]:
                sizes.append(tuple(x.shape[-2:]))
                if min(x.shape[-2:]) >= 4:  # as RandomFeatures: a side under 2 cannot be padded
                    x = F.avg_pool2d(x, 2)
        return x, sizes


def _conv(cin: int, cout: int, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, 1, 1, padding_mode="reflect")]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Decoder(nn.Module):
    """The encoder mirrored: convolution k's mirror maps its output channels back to its input
    channels (times ``width``), upsampling to the size the encoder pooled from wherever it
    pooled; the mirror of the first convolution gives RGB."""

    def __init__(self, widths: list[int], pool_after: list[bool], width: float) -> None:
        super().__init__()
        chans = [max(4, round(w * width)) for w in widths]
        self.stages = nn.ModuleList()
        self.up_before: list[bool] = []
        cin, up = widths[-1], False
        for k in range(len(widths) - 1, 0, -1):
            self.stages.append(_conv(cin, chans[k - 1]))
            self.up_before.append(up)
            cin, up = chans[k - 1], pool_after[k - 1]
        self.stages.append(_conv(cin, 3, relu=False))
        self.up_before.append(up)

    def forward(self, x: torch.Tensor, sizes: list[tuple[int, int]]) -> torch.Tensor:
        sizes = list(sizes)
        for up, stage in zip(self.up_before, self.stages, strict=True):
            if up:
                x = F.interpolate(x, size=sizes.pop(), mode="nearest")
            x = stage(x)
        return torch.tanh(x)


@register("adain", config=AdaINConfig)
class AdaINNet(nn.Module):
    """(content, style) in [-1, 1] -> the content restyled, the content's size; any sizes."""

    def __init__(self, config: AdaINConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or AdaINConfig()
        self.encoder = Encoder(config.feature_seed, config.layer)
        self.decoder = Decoder(self.encoder.widths, self.encoder.pool_after, config.width)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """Encoder features of ``x``, and the sizes the decoder upsamples back to. A side of
        one pixel is repeated to two (reflection padding needs two)."""
        h, w = x.shape[-2:]
        if min(h, w) < 2:
            x = F.pad(x, (0, max(0, 2 - w), 0, max(0, 2 - h)), mode="replicate")
        return self.encoder(x)

    def restyle(self, content: torch.Tensor, styles: list[torch.Tensor],
                weights: list[float] | None = None, alpha: float | torch.Tensor = 1.0
                ) -> torch.Tensor:
        """``content`` restyled after ``styles`` (each (N or 1, 3, h, w), any size): with
        several, the weighted mean of their AdaIN targets (Huang & Belongie sec. 7.2), then
        blended with the content's own features by ``alpha``."""
        weights = [1.0] * len(styles) if weights is None else weights
        # NHWC: a third faster on a CPU (512 px, 1 thread: 0.8 s against 1.2 s).
        fc, sizes = self.encode(content.contiguous(memory_format=torch.channels_last))
        target = sum(w * adain(fc, self.encode(s.contiguous(
            memory_format=torch.channels_last))[0]) for s, w in zip(styles, weights, strict=True))
        if isinstance(alpha, torch.Tensor):
            alpha = alpha.to(fc).view(-1, 1, 1, 1)
        out = self.decoder(alpha * target + (1 - alpha) * fc, sizes)
        return out[..., :content.shape[-2], :content.shape[-1]]

    def forward(self, content: torch.Tensor, style: torch.Tensor,
                alpha: float | torch.Tensor = 1.0) -> torch.Tensor:
        return self.restyle(content, [style], None, alpha)
