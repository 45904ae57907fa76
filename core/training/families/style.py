"""Fast style training: a transform net (core/nets/transform.py) learns to paint one style image
onto any picture (Johnson et al. 2016), with the random-feature style loss of the optimisation
path (core/nets/features.py), so no pretrained network is needed.

Each step restyles a batch of the recipe's pictures (a world or the user's folder) and scores
the output's features against the style image's Gram matrices and moments, the input's content
features and total variation. ``task.style`` names the style image: a file, or
``procedural:<name>`` for the paintings core/data/styles.py renders (the shipped styles).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from core.algorithms.colour import over_white
from core.nets.features import FeatureConfig, RandomFeatures, StyleLoss
from core.nets.transform import TransformConfig, TransformNet
from core.tensors import image_to_tensor, resize_long
from core.training.recipe import RecipeError
from core.training.task import Batch, Task, image_grid, register_task

PROCEDURAL = "procedural:"


@dataclass
class StyleOptions:
    style: str = ""  # a style image's path, or procedural:brush|mosaic|hatching
    strength: float = 10.0  # weight of the style term (the content term weighs 1)
    tv_weight: float = 50.0
    moments: bool = True
    feature_seed: int = 0

    def __post_init__(self) -> None:
        if not self.style:
            raise ValueError("task.style is empty: name a style image, e.g. "
                             "easel train style-fast --style PAINTING.png")
        if self.strength < 0 or self.tv_weight < 0:
            raise ValueError("task.strength and task.tv_weight must not be negative")


def style_image(style: str, size: int) -> np.ndarray:
    """The style image as uint8 RGB with its long side ``size`` (procedural ones are rendered
    at that size; files are loaded through the safe image intake, alpha over white)."""
    if style.startswith(PROCEDURAL):
        from core.data.styles import render_style

        try:
            return render_style(style[len(PROCEDURAL):], 0, size)
        except KeyError as exc:
            raise RecipeError(str(exc.args[0])) from None
    from core.imageio import ImageError, load_image

    try:
        loaded = load_image(Path(style).expanduser())
    except ImageError as exc:
        raise RecipeError(f"the style image cannot be used: {exc}") from None
    rgba = loaded.rgb if loaded.alpha is None else np.dstack([loaded.rgb, loaded.alpha])
    return resize_long(over_white(rgba), size)


@register_task("style_fast")
class StyleTask(Task):
    architecture = "transform"
    Options = StyleOptions

    def __init__(self, recipe: Any, device: torch.device, generator: torch.Generator) -> None:
        super().__init__(recipe, device, generator)
        model = dict(recipe.model)
        model["style"] = model.get("style") or self.options.style  # the card says what it paints
        self.config = TransformConfig(**model)
        self.transform = TransformNet(self.config).to(device)
        self.features = RandomFeatures(FeatureConfig(seed=self.options.feature_seed)).to(device)
        # The style at the training pictures' size, as the optimisation path sizes it.
        style = style_image(self.options.style, recipe.data.size)
        self.loss = StyleLoss(self.features, [image_to_tensor(style, device)], [1.0],
                              self.options.moments)
        self._grid: torch.Tensor | None = None

    def modules(self) -> dict[str, nn.Module]:
        return {"transform": self.transform}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"transform": self.adam(self.transform)}

    def ema_names(self) -> list[str]:
        return ["transform"]

    def training_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        x = batch.images.float().contiguous()
        out = self.net("transform")(x)
        o = self.options
        terms = self.loss.terms(out, self.loss.content_targets(x), o.strength, 1.0,
                                o.tv_weight)
        self.optimizer_step("transform", terms["loss"])
        if self._grid is None and self.rank == 0:
            self._grid = x[:self.recipe.train.sample_count].detach().clone()
        return {k: v.detach() for k, v in terms.items()}

    def sample_grid(self, n: int) -> np.ndarray | None:
        """Pairs of columns: each picture, then the net's restyling of it."""
        if n <= 0 or self._grid is None:
            return None
        net = self.ema("transform")
        x = self._grid[:n]
        with self.evaluating(net):
            out = net(x).float()
        return image_grid(torch.stack([x, out], 1).flatten(0, 1), cols=2)

    def export(self) -> tuple[nn.Module, str, dict[str, Any]]:
        return self.ema("transform"), "transform", dataclasses.asdict(self.config)
