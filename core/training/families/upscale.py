"""x4 super-resolution training (the net of core/nets/upscale.py) on real low/high pairs.

The recipe's ``data.size`` is the HIGH resolution; the batch carries those images. The low
resolution input is the same picture made at ``data.size / scale``: a world renders the same
seed at that size (its anti-aliased renderer makes a true low-resolution picture, not a blurred
copy), a folder loads the same file at that size. So the net learns the map the app needs:
from what the 64 px generators and renderers produce to what they would have drawn at 256.

Each step trains on random aligned crops (``task.crop`` px high resolution, a ``scale``-th of
that low resolution), drawn from (recipe seed, step), so steps are cheap while whole images
still flow through the data path. Loss: L1 (Lim et al. 2017 found it trains EDSR better than
L2); ``bicubic_l1`` logs what plain bicubic upsampling scores on the same crops.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.nets.upscale import UpscaleConfig, Upscaler, bicubic
from core.training.data import FolderSource, WorldSource, open_source
from core.training.recipe import RecipeError
from core.training.task import Batch, Task, image_grid, register_task, stream_seed


@dataclass
class UpscaleOptions:
    crop: int = 128  # high-resolution crop per image and step (0: the whole image)

    def __post_init__(self) -> None:
        if self.crop < 0:
            raise ValueError(f"task.crop must not be negative, not {self.crop}")


@register_task("upscale")
class UpscaleTask(Task):
    architecture = "upscale"
    Options = UpscaleOptions

    def __init__(self, recipe: Any, device: torch.device, generator: torch.Generator) -> None:
        super().__init__(recipe, device, generator)
        self.config = UpscaleConfig(**recipe.model)
        s, size = self.config.scale, recipe.data.size
        self.crop = self.options.crop or size
        if size % s or self.crop % s:
            raise RecipeError(f"data.size ({size}) and task.crop ({self.crop}) must be "
                              f"multiples of model.scale ({s}).")
        if self.crop > size:
            raise RecipeError(f"task.crop ({self.crop}) must not exceed data.size ({size}).")
        if recipe.data.flip:
            # The batch's flips are drawn inside the data loader; the low-resolution partner
            # rendered here could not follow them, and a mirrored pair would teach nonsense.
            raise RecipeError("data.flip is not supported by the upscale family (the low and "
                              "high resolution pictures must stay aligned).")
        self.low_size = size // s
        self.upscaler = Upscaler(self.config).to(device)
        self._low_source: WorldSource | FolderSource | None = None
        self._grid: tuple[torch.Tensor, torch.Tensor] | None = None

    def modules(self) -> dict[str, nn.Module]:
        return {"upscaler": self.upscaler}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"upscaler": self.adam(self.upscaler)}

    def ema_names(self) -> list[str]:
        return ["upscaler"]

    # ------------------------------------------------------------------ data

    def low_res(self, batch: Batch) -> torch.Tensor:
        """The batch's pictures at the low resolution, NCHW in [-1, 1] on the device."""
        if self._low_source is None:
            d = self.recipe.data
            self._low_source = open_source(d.source, self.low_size, d.fit)
        src = self._low_source
        if isinstance(src, WorldSource):
            images = [src.world.render(seed, size=self.low_size).image for seed in batch.seeds]
        else:
            images = [src.folder.load(index, self.low_size).image for index in batch.seeds]
        arr = np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2))
        x = torch.from_numpy(arr).to(self.device).float().div_(127.5).sub_(1.0)
        if batch.images.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)  # as the trainer made the batch
        return x

    def crops(self, low: torch.Tensor, high: torch.Tensor, step: int
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Aligned random crops; offsets are drawn for the global batch from (seed, step) and
        sliced to this rank, like Task.randn, so runs resume and distribute exactly."""
        s, lc = self.config.scale, self.crop // self.config.scale
        room = self.low_size - lc
        if room == 0:
            return low, high
        total = self.recipe.train.batch_size
        g = torch.Generator().manual_seed(stream_seed(self.recipe.seed, step, "crop"))
        offsets = torch.randint(0, room + 1, (total, 2), generator=g)
        start = self.rank * len(low)
        lows, highs = [], []
        for i, (y, x) in enumerate(offsets[start:start + len(low)].tolist()):
            lows.append(low[i, :, y:y + lc, x:x + lc])
            highs.append(high[i, :, y * s:(y + lc) * s, x * s:(x + lc) * s])
        return torch.stack(lows), torch.stack(highs)

    # ------------------------------------------------------------------ training

    def training_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        low, high = self.crops(self.low_res(batch), batch.images, step)
        with self.autocast():
            out = self.net("upscaler")(low)
        loss = F.l1_loss(out.float(), high)
        self.optimizer_step("upscaler", loss)
        if self._grid is None and self.rank == 0:
            n = self.recipe.train.sample_count
            self._grid = (self.low_res(batch)[:n], batch.images[:n].detach().clone())
        with torch.no_grad():
            bicubic_l1 = F.l1_loss(bicubic(low, self.config.scale), high)
        return {"l1": loss.detach(), "bicubic_l1": bicubic_l1}

    def sample_grid(self, n: int) -> np.ndarray | None:
        """One row per picture: bicubic upsampling, the net's upscale, the true picture."""
        if n <= 0 or self._grid is None:
            return None
        net = self.ema("upscaler")
        low, high = self._grid[0][:n], self._grid[1][:n]
        with self.evaluating(net):
            out = net(low).float()
        rows = torch.stack([bicubic(low, self.config.scale), out, high.float()],
                           dim=1).flatten(0, 1)
        return image_grid(rows, cols=3)

    def export(self) -> tuple[nn.Module, str, dict[str, Any]]:
        return self.ema("upscaler"), "upscale", dataclasses.asdict(self.config)
