"""One pass for any painting: the AdaIN net (core/nets/adain.py) learns to restyle any picture
after any style image it is given, so no training per painting is needed.

Only the decoder is trained; the encoder is the front of the random-weight feature network the
style loss uses (core/nets/features.py), so AdaIN works in the feature space the loss measures.
Each step pairs the batch's pictures (a world or a folder, as the fast styles train on) with
as many style images and scores the decoded pictures with Easel's weight-free style loss: the
Gram-matrix and moment terms against each picture's own style (each relative to its style, so
every painting weighs alike), the content term against the picture, total variation, and
Huang & Belongie's content loss, the decoded picture's encoder features against the AdaIN
target they were decoded from (their eq. 12).

Styles are drawn per picture from (recipe seed, position) like the batch itself, so a resumed
or distributed run sees the same pairs: ``task.texture_share`` of them are texture photos
(core/data/textures.py), the rest procedural paintings (core/data/styles.py) with their palette,
mark size and density drawn too. ``task.variations`` seeds of each manner or photo are
rendered once and kept in memory; each use turns or flips one. The manners and photos of
HELD_OUT_PAINTINGS and HELD_OUT_TEXTURES are never trained on: evaluation measures on them.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from core.data.styles import HELD_OUT_PAINTINGS, STYLES, varied_painting
from core.data.textures import HELD_OUT_TEXTURES, TEXTURES, TexturesMissing, varied_texture
from core.nets.adain import AdaINConfig, AdaINNet, adain
from core.nets.features import FeatureConfig, RandomFeatures, StyleLoss, relative
from core.training.recipe import RecipeError
from core.training.task import Batch, Task, image_grid, register_task, stream_seed


def _trainable_paintings() -> list[str]:
    return [n for n in STYLES if n not in HELD_OUT_PAINTINGS]


def _trainable_textures() -> list[str]:
    return [n for n in TEXTURES if n not in HELD_OUT_TEXTURES]


@dataclass
class OnePassOptions:
    paintings: list[str] = field(default_factory=_trainable_paintings)  # procedural manners
    textures: list[str] = field(default_factory=_trainable_textures)  # texture photos
    texture_share: float = 0.35  # of the styles, how many are texture photos
    variations: int = 200  # seeds per manner or photo, rendered once and cycled
    content_from_styles: float = 0.15  # of the pictures, how many are another style image
    strength: float = 10.0  # the style term's weight (the content term weighs content_weight)
    content_weight: float = 1.0  # the decoded picture's features against the picture's
    target_weight: float = 1.0  # ... and against the AdaIN target (Huang & Belongie eq. 12)
    tv_weight: float = 50.0
    moments: bool = True

    def __post_init__(self) -> None:
        for name, known, held in (("paintings", STYLES, HELD_OUT_PAINTINGS),
                                  ("textures", TEXTURES, HELD_OUT_TEXTURES)):
            for n in getattr(self, name):
                if n not in known:
                    raise ValueError(f"task.{name}: unknown {n!r}; known: {', '.join(known)}")
                if n in held:
                    raise ValueError(f"task.{name}: {n!r} is held out for evaluation (it is "
                                     "never trained on); leave it out")
        if not self.paintings and not self.textures:
            raise ValueError("task.paintings and task.textures are both empty: name at least "
                             "one style source")
        for name in ("texture_share", "content_from_styles"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"task.{name} must be from 0 to 1")
        if self.variations < 1:
            raise ValueError("task.variations must be at least 1")
        if min(self.strength, self.content_weight, self.target_weight, self.tv_weight) < 0:
            raise ValueError("the task's loss weights must not be negative")

    def sources(self) -> str:
        """What the model learns from, in words (for its card)."""
        parts = [f"procedural paintings ({', '.join(self.paintings)})"] if self.paintings \
            else []
        if self.textures:
            parts.append(f"texture photos ({', '.join(self.textures)})")
        return " and ".join(parts)


class StyleDraws:
    """The style image of each global batch position, a function of (seed, position) alone;
    renders are cached, so each (manner, seed) is drawn once."""

    def __init__(self, options: OnePassOptions, seed: int, size: int) -> None:
        self.o, self.seed, self.size = options, seed, size
        self._cache: dict[tuple[str, str, int], np.ndarray] = {}

    def pick(self, position: int, stream: str = "style") -> np.ndarray:
        o = self.o
        rng = np.random.default_rng(stream_seed(self.seed, position, stream))
        texture = bool(o.textures) and (not o.paintings or rng.random() < o.texture_share)
        names = o.textures if texture else o.paintings
        name = names[int(rng.integers(len(names)))]
        key = ("texture" if texture else "painting", name, int(rng.integers(o.variations)))
        if key not in self._cache:
            render = varied_texture if texture else varied_painting
            try:
                self._cache[key] = render(name, key[2], self.size)
            except TexturesMissing as exc:
                raise RecipeError(str(exc)) from None
        img = np.rot90(self._cache[key], int(rng.integers(4)))
        return np.ascontiguousarray(img[:, ::-1] if rng.random() < 0.5 else img)

    def batch(self, positions: Iterable[int], stream: str, device: torch.device
              ) -> torch.Tensor:
        arr = np.stack([self.pick(g, stream) for g in positions]).transpose(0, 3, 1, 2)
        x = torch.from_numpy(np.ascontiguousarray(arr)).to(device).float() / 127.5 - 1
        return x.contiguous(memory_format=torch.channels_last)


@register_task("style_onepass")
class OnePassTask(Task):
    architecture = "adain"
    Options = OnePassOptions

    def __init__(self, recipe: Any, device: torch.device, generator: torch.Generator) -> None:
        super().__init__(recipe, device, generator)
        model = dict(recipe.model)
        model["style"] = model.get("style") or \
            f"any painting (learnt from {self.options.sources()})"
        self.config = AdaINConfig(**model)
        self.model = AdaINNet(self.config).to(device)
        self.features = RandomFeatures(FeatureConfig(seed=self.config.feature_seed)).to(device)
        self.draws = StyleDraws(self.options, recipe.seed, recipe.data.size)
        self._grid: tuple[torch.Tensor, torch.Tensor] | None = None

    def modules(self) -> dict[str, nn.Module]:
        return {"decoder": self.model.decoder}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"decoder": self.adam(self.model.decoder)}

    def ema_names(self) -> list[str]:
        return ["decoder"]

    def _positions(self, step: int, n: int) -> range:
        start = step * self.recipe.train.batch_size + self.rank * n
        return range(start, start + n)

    def training_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        o, layer = self.options, self.config.layer
        x = batch.images.float().contiguous()
        positions = self._positions(step, len(x))
        styles = self.draws.batch(positions, "style", self.device)
        swap = [k for k, g in enumerate(positions)
                if np.random.default_rng(stream_seed(self.recipe.seed, g, "swap")).random()
                < o.content_from_styles]
        if swap:
            x = x.clone()
            x[swap] = self.draws.batch([positions[k] for k in swap], "content", self.device)
        with torch.no_grad():
            fx, fs = self.features(x), self.features(styles)
            target = adain(fx[layer], fs[layer])
        loss = StyleLoss.paired(self.features, fs, o.moments)
        with self.autocast():
            out = self.net("decoder")(target, self.model.encoder.pool_sizes(fx))
        fo = self.features(out.float())
        terms = loss.terms(out, {i: fx[i] for i in self.features.config.content_layers},
                           o.strength, o.content_weight, o.tv_weight, feats=fo)
        terms["target"] = relative(fo[layer], target, per_item=True)
        terms["loss"] = terms["loss"] + o.target_weight * terms["target"]
        self.optimizer_step("decoder", terms["loss"])
        if self._grid is None and self.rank == 0:
            n = self.recipe.train.sample_count
            self._grid = (x[:n].detach().clone(), styles[:n].detach().clone())
        return {k: v.detach() for k, v in terms.items()}

    def sample_grid(self, n: int) -> np.ndarray | None:
        """Rows of three: the picture, the style image, the net's restyling."""
        if n <= 0 or self._grid is None:
            return None
        net = self.exported()
        x, s = self._grid[0][:n], self._grid[1][:n]
        with self.evaluating(net):
            out = net(x, s).float()
        return image_grid(torch.stack([x, s, out], 1).flatten(0, 1), cols=3)

    def exported(self) -> AdaINNet:
        """The net with the EMA decoder (a copy: training goes on with the online one)."""
        net = copy.deepcopy(self.model)
        net.decoder.load_state_dict(self.ema("decoder").state_dict())
        return net

    def export(self) -> tuple[nn.Module, str, dict[str, Any]]:
        return self.exported(), "adain", dataclasses.asdict(self.config)
