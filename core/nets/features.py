"""Random-weight feature networks for style transfer: no trained weights, a seed fixes them.

Gatys et al. (2016) match Gram statistics of a network's features. Without a pretrained network,
random convolutional features do the job when built right: several scales of receptive field
(Ustyuzhaninov et al., ICLR 2017) and each layer normalised so its style term has a comparable
scale (He, Wang and Hopcroft, NeurIPS 2016, random-weight VGG). :class:`RandomFeatures` is a
small VGG-like stack: stages of 3x3 convolutions with ReLU, average-pooled by 2 between stages,
weights drawn from the seed and rescaled at construction so that every layer's output has unit
mean square on a fixed, seeded reference picture (pink noise, whose spectrum is that of natural
images). The same seed gives the same network on every machine and device.

:class:`MultiScaleFilters` is the single-layer model of Ustyuzhaninov et al. (many random
filters of sizes 3 to 55 px, ReLU, no pooling), kept as a peer for the benchmark.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

TV_SCALE = 1e-2  # tv_weight 10 -> 0.1 x the mean squared neighbour difference


@dataclass(frozen=True)
class FeatureConfig:
    seed: int = 0
    widths: tuple[int, ...] = (32, 64, 128, 256)  # channels per stage (each stage halves size)
    convs: tuple[int, ...] = (2, 2, 2, 2)  # 3x3 convolutions per stage
    style_layers: tuple[int, ...] = (1, 3, 5, 7)  # indices into all convolutions
    content_layers: tuple[int, ...] = (5,)
    reference_size: int = 128  # side of the pink-noise picture the layers are normalised on

    def __post_init__(self) -> None:
        if len(self.widths) != len(self.convs) or not self.widths:
            raise ValueError("widths and convs name the same stages")
        n = sum(self.convs)
        for i in (*self.style_layers, *self.content_layers):
            if not 0 <= i < n:
                raise ValueError(f"layer {i} does not exist: the network has {n} convolutions")


def pink_noise(size: int, generator: torch.Generator, channels: int = 3) -> torch.Tensor:
    """(1, channels, size, size) noise with a 1/f amplitude spectrum, scaled to [-1, 1]."""
    fy = torch.fft.fftfreq(size).view(-1, 1)
    fx = torch.fft.rfftfreq(size).view(1, -1)
    f = (fx ** 2 + fy ** 2).sqrt().clamp(min=1.0 / size)
    spectrum = torch.randn(channels, size, size // 2 + 1, 2, generator=generator)
    spectrum = torch.view_as_complex(spectrum) / f
    x = torch.fft.irfftn(spectrum, s=(size, size), dim=(-2, -1))
    x = x - x.mean()
    return (x / x.abs().max()).unsqueeze(0)


class RandomFeatures(nn.Module):
    """Multi-scale random-weight convolutional features; ``forward`` returns every conv layer's
    activations (after ReLU), shallow to deep."""

    def __init__(self, config: FeatureConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or FeatureConfig()
        g = torch.Generator().manual_seed(int(config.seed))
        layers: list[nn.Conv2d] = []
        self.pool_after: list[bool] = []
        cin = 3
        for width, convs in zip(config.widths, config.convs, strict=True):
            for j in range(convs):
                conv = nn.Conv2d(cin, width, 3, padding=1, padding_mode="reflect")
                with torch.no_grad():
                    conv.weight.copy_(torch.randn(conv.weight.shape, generator=g)
                                      * math.sqrt(2.0 / (cin * 9)))
                    conv.bias.zero_()
                layers.append(conv)
                self.pool_after.append(j == convs - 1)
                cin = width
        self.convs = nn.ModuleList(layers)
        self.requires_grad_(False)
        self._normalise(pink_noise(config.reference_size, g))

    @torch.no_grad()
    def _normalise(self, reference: torch.Tensor) -> None:
        """Scale each layer so its output has unit mean square on ``reference``, one layer at a
        time (a layer's input is already the normalised output of the one before)."""
        x = reference
        for conv, pool in zip(self.convs, self.pool_after, strict=True):
            y = F.relu(conv(x))
            scale = y.pow(2).mean().sqrt().clamp(min=1e-8)
            conv.weight.div_(scale)
            conv.bias.div_(scale)
            x = F.relu(conv(x))
            if pool:
                x = F.avg_pool2d(x, 2)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for conv, pool in zip(self.convs, self.pool_after, strict=True):
            x = F.relu(conv(x))
            out.append(x)
            if pool and min(x.shape[-2:]) >= 4:  # a pooled side under 2 cannot be padded
                x = F.avg_pool2d(x, 2)
        return out


@dataclass(frozen=True)
class MultiScaleConfig:
    """Ustyuzhaninov et al. 2017's published single-layer model: 128 filters at each size."""

    seed: int = 0
    sizes: tuple[int, ...] = (3, 5, 7, 11, 15, 23, 37, 55)
    filters: int = 128
    style_layers: tuple[int, ...] = field(default=(0,))


class MultiScaleFilters(nn.Module):
    """One layer of random filters of many sizes (concatenated after ReLU)."""

    def __init__(self, config: MultiScaleConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or MultiScaleConfig()
        g = torch.Generator().manual_seed(int(config.seed))
        self.convs = nn.ModuleList()
        for k in config.sizes:
            conv = nn.Conv2d(3, config.filters, k, padding=k // 2, padding_mode="reflect")
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g)
                                  * math.sqrt(2.0 / (3 * k * k)))
                conv.bias.zero_()
            self.convs.append(conv)
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [torch.cat([F.relu(conv(x)) for conv in self.convs], 1)]


def gram(f: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """(N, C, C) Gram matrices of features (N, C, H, W), averaged over positions (or over the
    positions where ``mask`` (N, 1, H, W) weighs in)."""
    n, c = f.shape[:2]
    if mask is not None:
        m = F.interpolate(mask, size=f.shape[-2:], mode="area")
        f = f * m.sqrt()
        count = m.sum(dim=(1, 2, 3)).clamp(min=1.0).view(n, 1, 1)
    else:
        count = torch.full((n, 1, 1), float(f.shape[-1] * f.shape[-2]), device=f.device)
    flat = f.reshape(n, c, -1)
    return flat @ flat.transpose(1, 2) / count


def mean_std(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation (N, C) of features (N, C, H, W)."""
    flat = f.flatten(2)
    return flat.mean(-1), flat.var(-1, unbiased=False).add(1e-8).sqrt()


def relative(a: torch.Tensor, target: torch.Tensor, per_item: bool = False) -> torch.Tensor:
    """Squared distance of each item of ``a`` to ``target`` over the target's squared norm,
    averaged over the batch: terms of any layer or statistic weigh alike. ``per_item``: each
    item over its own target's norm (a batch of different styles or pictures weighs alike)."""
    dims = tuple(range(1, a.ndim))
    norm = target.pow(2).sum(dims) if per_item else target.pow(2).sum()
    return ((a - target).pow(2).sum(dims) / norm.clamp(min=1e-8)).mean()


class StyleLoss:
    """The style, content and total-variation terms of neural style (Gatys et al. 2016) with a
    feature network: Gram matrices (and per-channel means and deviations when ``moments``) of
    the style images at the style layers, weighted per style; content features compared at the
    content layers. Every term is relative (:func:`relative`).

    :meth:`paired` scores a batch against a batch of styles instead, the i-th picture against
    the i-th style and each relative to its own style (training a model for any painting)."""

    def __init__(self, net: RandomFeatures, styles: list[torch.Tensor], weights: list[float],
                 moments: bool = True, wrap: bool = False) -> None:
        self.net, self.moments, self.per_item, self.wrap = net, moments, False, wrap
        with torch.no_grad():
            self.targets = [(w, self._statistics(net(s)))
                            for s, w in zip(styles, weights, strict=True)]

    @classmethod
    def paired(cls, net: RandomFeatures, style_features: list[torch.Tensor],
               moments: bool = True) -> StyleLoss:
        """The loss towards a batch of styles, from their features (``net`` of the batch,
        computed by the caller, which often needs them for more than this)."""
        self = cls(net, [], [], moments)
        self.per_item = True
        self.targets = [(1.0, self._statistics([f.detach() for f in style_features]))]
        return self

    def _statistics(self, f: list[torch.Tensor]) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
        return {i: (gram(f[i]), torch.cat(mean_std(f[i]), 1))
                for i in self.net.config.style_layers}

    def content_targets(self, content: torch.Tensor) -> dict[int, torch.Tensor]:
        with torch.no_grad():
            f = self.net(content)
        return {i: f[i] for i in self.net.config.content_layers}

    def style(self, feats: list[torch.Tensor]) -> torch.Tensor:
        total = feats[0].new_zeros(())
        for w, targets in self.targets:
            for i, (g, moments) in targets.items():
                term = relative(gram(feats[i]), g, self.per_item)
                if self.moments:
                    term = term + relative(torch.cat(mean_std(feats[i]), 1), moments,
                                           self.per_item)
                total = total + w * term / len(targets)
        return total

    def content(self, feats: list[torch.Tensor], targets: dict[int, torch.Tensor]
                ) -> torch.Tensor:
        return sum(relative(feats[i], t, self.per_item) for i, t in targets.items()) / \
            len(targets)

    def terms(self, x: torch.Tensor, content: dict[int, torch.Tensor], strength: float,
              content_weight: float, tv_weight: float,
              feats: list[torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Each term for the picture(s) ``x`` and their weighted sum (``loss``): the style term
        times ``strength``, the content term (against ``content``, from
        :meth:`content_targets`) times ``content_weight``, the TV term times
        ``tv_weight * TV_SCALE``. ``feats``: ``x``'s features when the caller has them."""
        feats = self.net(x) if feats is None else feats
        out = {"style": self.style(feats), "content": self.content(feats, content),
               "tv": self.tv(x, self.wrap)}
        out["loss"] = (strength * out["style"] + content_weight * out["content"]
                       + tv_weight * TV_SCALE * out["tv"])
        return out

    @staticmethod
    def tv(x: torch.Tensor, wrap: bool = False) -> torch.Tensor:
        """Mean squared difference of neighbouring pixels (total variation, squared);
        ``wrap``: the last row and column neighbour the first too (a tile)."""
        if wrap:
            return (x - x.roll(1, -2)).pow(2).mean() + (x - x.roll(1, -1)).pow(2).mean()
        return (x[..., 1:, :] - x[..., :-1, :]).pow(2).mean() + \
            (x[..., 1:] - x[..., :-1]).pow(2).mean()
