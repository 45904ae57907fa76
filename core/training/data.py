"""Training data: each step's batch is a deterministic function of (recipe seed, step).

Global position ``g = step * batch_size + i`` names the i-th image of a step. For an endless
world (``data.images = 0``) it maps to training seed ``TRAIN[base + g]``, a fresh render for
every image; for a finite set (a folder, or ``data.images = N`` world renders) positions walk
through epochs, each a permutation of the N items drawn from (seed, epoch). So resuming at step
k needs nothing but k, and under torchrun rank r simply takes its contiguous share of every
step's positions (the distributed sampler), which makes N processes see exactly the batches one
process would.

Batches are rendered ahead by a DataLoader worker process (``data.workers``), so rendering
overlaps the training step; images travel as uint8 and become float in [-1, 1] on the device.
"""

from __future__ import annotations

import functools
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.training.recipe import DataSection, RecipeError
from core.training.task import Batch, stream_seed


@dataclass(frozen=True)
class Item:
    image: np.ndarray  # (H, W, 3) uint8
    labels: dict[str, Any]
    caption: str | None
    seed: int


class WorldSource:
    """Renders from a registered world (core.data.worlds) at the recipe's size."""

    def __init__(self, name: str, size: int) -> None:
        from core.data.worlds import get_world

        self.name = name
        self.size = size
        self.world = get_world(name)

    def __len__(self) -> int:
        from core.data.worlds import TRAIN

        return len(TRAIN)

    def item(self, index: int) -> Item:
        from core.data.worlds import TRAIN

        seed = TRAIN[index % len(TRAIN)]
        s = self.world.render(seed, size=self.size)
        return Item(s.image, dict(s.labels), s.caption, seed)


class FolderSource:
    """A user's image folder through core.data.folder (squared, resized, captions).

    Flips are the trainer's (``data.flip``), so the folder's own random flip is not used.
    Files of the held-out split (``held_out``, :func:`core.data.folder.held_out_split`) are never
    trained on: evaluation measures on them.
    """

    def __init__(self, path: str, size: int, fit: str = "crop", held_out: float = 0.0,
                 min_images: int = 0) -> None:
        from core.data.folder import FolderError, FolderWorld, held_out_split

        self.name = path
        self.size = size
        try:
            self.folder = FolderWorld(path, size=size, fit=fit, flip=False)
        except FolderError as exc:
            raise RecipeError(str(exc)) from None
        root = self.folder.root
        held = held_out_split([f.relative_to(root).as_posix() for f in self.folder.files],
                              held_out)
        self.train_index = [i for i in range(len(self.folder)) if i not in held]
        self.held_out = len(self.folder) - len(self.train_index)
        if len(self.train_index) < max(min_images, 1):
            skipped = self.folder.scan.summary()
            kept = f", {self.held_out} of them kept apart for evaluation" if self.held_out \
                else ""
            raise RecipeError(
                f"{path} has {len(self.folder)} usable image"
                f"{'s' if len(self.folder) != 1 else ''}{kept}; training needs at least "
                f"{max(min_images, 1)}" + (f" ({skipped})" if skipped else "") + ".")

    def __len__(self) -> int:
        return len(self.train_index)

    def item(self, index: int) -> Item:
        s = self.folder.load(self.train_index[index], self.size)
        return Item(s.image, dict(s.labels), s.caption, index)


def open_source(source: str, size: int, fit: str = "crop", held_out: float = 0.0,
                min_images: int = 0) -> WorldSource | FolderSource:
    """``source`` is a world name ("faces", "scenes") or a folder path (squared by ``fit``,
    without its ``held_out`` split, refused below ``min_images`` training images)."""
    from core.data.worlds import world_names

    if source in world_names():
        return WorldSource(source, size)
    path = Path(source).expanduser()
    if path.is_dir():
        return FolderSource(str(path.resolve()), size, fit, held_out, min_images)
    raise RecipeError(f"data source {source!r} is neither a world ({', '.join(world_names())}) "
                      "nor a folder.")


class StepBatches(torch.utils.data.Dataset):
    """Map-style dataset whose item ``step`` is this rank's share of that step's batch.

    Holds plain settings only and opens its source lazily, so worker processes (fork or spawn)
    build their own.
    """

    def __init__(self, data: DataSection, seed: int, batch_size: int, rank: int = 0,
                 world_size: int = 1) -> None:
        if batch_size % world_size:
            raise RecipeError(f"train.batch_size ({batch_size}) must be divisible by the "
                              f"number of processes ({world_size}).")
        self.data = data
        self.seed = seed
        self.batch_size = batch_size
        self.local = batch_size // world_size
        self.rank = rank
        self._source: WorldSource | FolderSource | None = None
        self._perm: tuple[int, np.ndarray] | None = None

    def open(self) -> None:
        """Open the source now: errors surface before training starts, and forked render
        workers inherit the opened source (a folder is scanned once)."""
        _ = self.source

    @property
    def source(self) -> WorldSource | FolderSource:
        if self._source is None:
            d = self.data
            self._source = open_source(d.source, d.size, d.fit, d.held_out, d.min_images)
        return self._source

    def __len__(self) -> int:  # steps are unbounded; the sampler says which to render
        return 2 ** 62

    def finite(self) -> int:
        """The number of distinct items cycled through (0 = endless fresh renders)."""
        if isinstance(self.source, FolderSource):
            n = len(self.source)
            return min(n, self.data.images) if self.data.images else n
        return self.data.images

    def index(self, position: int) -> int:
        n = self.finite()
        base = stream_seed(self.seed, 0, "data") % len(self.source)
        if not n:
            return (base + position) % len(self.source)
        epoch, pos = divmod(position, n)
        if self._perm is None or self._perm[0] != epoch:
            rng = np.random.default_rng(stream_seed(self.seed, epoch, "epoch"))
            self._perm = (epoch, rng.permutation(n))
        item = int(self._perm[1][pos])
        return item if isinstance(self.source, FolderSource) else (base + item) % len(self.source)

    def positions(self, step: int) -> range:
        start = step * self.batch_size + self.rank * self.local
        return range(start, start + self.local)

    def __getitem__(self, step: int) -> dict[str, Any]:
        images, labels, captions, seeds = [], [], [], []
        for g in self.positions(step):
            it = self.source.item(self.index(g))
            img = it.image
            if self.data.flip and stream_seed(self.seed, g, "flip") & 1:
                img = img[:, ::-1]
            images.append(img)
            labels.append(it.labels)
            captions.append(it.caption)
            seeds.append(it.seed)
        arr = np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2))
        return {"images": torch.from_numpy(arr), "labels": labels, "captions": captions,
                "seeds": seeds}


def _collate(x: Any) -> Any:
    return x  # the dataset already returns a whole batch


WORKER_LOG = "workers.log"


def _worker_init(_: int, log: str | None = None) -> None:
    torch.set_num_threads(1)  # rendering is numpy/PIL; keep the worker off the trainer's cores
    # Ctrl-C in a terminal reaches the whole process group; the trainer alone decides how to
    # stop (finish the step, checkpoint), and it shuts its workers down itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if log:
        # A worker's own failures reach the trainer, which raises them; what a worker prints
        # after the trainer died (a connection reset) must not bury the trainer's last words
        # in the run's log, so workers write to a log of their own.
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 2)
        os.close(fd)


def batches(dataset: StepBatches, start: int, stop: int, workers: int, prefetch: int,
            pin: bool = False, worker_log: Path | None = None) -> Iterator[dict[str, Any]]:
    """Raw batches for steps ``start .. stop-1``, rendered ahead by ``workers`` processes
    (whose stderr goes to ``worker_log`` when given)."""
    if workers <= 0:
        for step in range(start, stop):
            yield dataset[step]
        return
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=None, sampler=range(start, stop), num_workers=workers,
        prefetch_factor=prefetch, collate_fn=_collate,
        worker_init_fn=functools.partial(_worker_init, log=str(worker_log) if worker_log else None),
        pin_memory=pin)
    yield from loader


def to_batch(raw: dict[str, Any], device: torch.device, channels_last: bool) -> Batch:
    """uint8 NCHW -> float32 in [-1, 1] on the device (converted there: 4x less to copy)."""
    x = raw["images"].to(device, non_blocking=True).float().div_(127.5).sub_(1.0)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return Batch(x, raw["labels"], raw["captions"], raw["seeds"])


def training_captions(source: str, size: int, n: int) -> list[str]:
    """The captions of the first ``n`` training items of a world or a folder (the folder's
    ``.txt`` files, read without decoding any picture)."""
    src = open_source(source, size)
    if isinstance(src, FolderSource):
        from core.data.folder import read_caption

        return [c for f in src.folder.files[:n] if (c := read_caption(f))]
    if src.name == "scenes":
        # Captions without drawing: the layout carries them.
        from core.data.captions import sample_scene
        from core.data.worlds import TRAIN

        return [sample_scene(TRAIN[i]).caption or "" for i in range(n)]
    return [c for i in range(n) if (c := src.item(i).caption)]


def caption_vocab(data: DataSection, n: int, what: str) -> list[str]:
    """The word list (core.nets.text.build_vocab) of the first ``n`` training captions of a
    recipe's data; RecipeError when it has none (``what`` names the model that needs them)."""
    from core.nets.text import build_vocab

    captions = training_captions(data.source, data.size, n)
    if not captions:
        raise RecipeError(f"{data.source} has no captions: {what} learns from captioned "
                          "images (a .txt file beside each image).")
    return build_vocab(captions)
