"""A second reader of faces-world pictures: an attribute classifier that is not the shipped
faces judge, for the latent benchmark (bench/latent.py) to score models with beside the judge.

It lives in bench/ because it must stay independent of every model it scores: nothing in core/
or desktop/ imports it (tests/test_faces_reader.py checks), and it is never used to compute
directions, train, select or steer a model. Its weights were committed before the faces models
it scores were retrained.

How it differs from the judge (core/nets/judge.py, a VGG-style stack of 3x3 convolutions with
BatchNorm and ReLU, stride-2 stages from full resolution, trained on the world's training
seeds): a ConvNeXt-style net (Liu et al. 2022) with a 4x4 patchify stem straight to 1/4
resolution, residual blocks of a 5x5 depthwise convolution, a one-group GroupNorm (a
LayerNorm over channels and pixels) and a 3x inverted-bottleneck MLP with GELU, two stages
(16 px, 8 px), no BatchNorm, mean-pooled and layer-normalised into its penultimate features
(:func:`features`, the space of precision and recall in bench/latent.py). Each training
picture is Gaussian-blurred with sigma drawn uniformly from [0, 2] px and carries a little
pixel noise, so it reads blurry samples (VAE decodes) too.

Seeds: it trains on ``TRAIN_SEEDS`` = 3,000,000,000 onward, a block outside every split of
core.data.worlds (training 0 to 1e9, validation 1e9 to 1.1e9, held-out 2e9 to 2.1e9), so it
never saw a picture the judge, the models or any evaluation saw. It is validated on held-out
renders (core.evaluation.common.held_out_renders, seeds 2e9 onward), sharp and blurred with
OpenCV's Gaussian blur (an implementation other than the training augmentation's).

    python bench/faces_reader.py --train      # ~15 min on one thread; writes the weights,
                                              # their card and the validation table
    python bench/faces_reader.py --validate   # re-measures the table (exit 1 below 95%)
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.cards import ModelCard
from core.data.faces import ATTRIBUTES
from core.data.worlds import HELD_OUT, get_world
from core.evaluation.common import held_out_renders
from core.paths import atomic_write
from core.tensors import to_tensor
from core.weights import load_state, save_model

HERE = Path(__file__).resolve().parent
WEIGHTS = HERE / "readers" / "faces_reader.safetensors"
TABLE = HERE / "readers" / "faces_reader.md"
TRAIN_SEEDS = range(3_000_000_000, 3_100_000_000)
SIZE = 64
MAX_BLUR = 2.0  # training blur sigma is uniform in [0, MAX_BLUR] px
MAX_NOISE = 0.03  # training pixel noise std is uniform in [0, MAX_NOISE] (pixels in [-1, 1])
SIGMAS = (0.0, 0.75, 1.5)  # validation blurs
VALIDATION_N = 2000  # held-out renders per validation blur (held-out seeds from 0)
ACCURACY = 0.95  # every attribute at every validation blur
BATCH = 256
TRAIN = {"steps": 2400, "batch": 64, "lr": 2e-3, "weight_decay": 0.05, "warmup": 100}


class ReaderError(ValueError):
    """Reader weights that are missing or do not match their card."""


@dataclasses.dataclass
class ReaderConfig:
    heads: dict[str, list[str]]
    widths: tuple[int, int] = (64, 128)
    blocks: int = 2  # per stage
    kernel: int = 5  # depthwise
    expand: int = 3


class Block(nn.Module):
    """x + MLP(norm(depthwise(x))): a ConvNeXt block."""

    def __init__(self, c: int, kernel: int, expand: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(c, c, kernel, padding=kernel // 2, groups=c)
        self.norm = nn.GroupNorm(1, c)
        self.up = nn.Conv2d(c, expand * c, 1)
        self.down = nn.Conv2d(expand * c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(F.gelu(self.up(self.norm(self.dw(x)))))


class FacesReader(nn.Module):
    """See the module docstring. Reads (N, 3, 64, 64) pictures in [-1, 1]."""

    def __init__(self, config: ReaderConfig) -> None:
        super().__init__()
        self.config = config
        c1, c2 = config.widths
        blocks = [Block(c1, config.kernel, config.expand) for _ in range(config.blocks)]
        blocks2 = [Block(c2, config.kernel, config.expand) for _ in range(config.blocks)]
        self.trunk = nn.Sequential(
            nn.Conv2d(3, c1, 4, 4), nn.GroupNorm(1, c1), *blocks,
            nn.GroupNorm(1, c1), nn.Conv2d(c1, c2, 2, 2), *blocks2)
        self.norm = nn.LayerNorm(c2)
        self.heads = nn.ModuleDict({k: nn.Linear(c2, len(v)) for k, v in config.heads.items()})

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (N, widths[1])."""
        return self.norm(self.trunk(x).mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.features(x)
        return {k: head(f) for k, head in self.heads.items()}


# --------------------------------------------------------------------------- reading


def load_reader(path: str | Path = WEIGHTS) -> FacesReader:
    """The reader saved at ``path`` (its sha256 checked against its card first)."""
    try:
        state, card = load_state(path)
    except Exception as exc:  # noqa: BLE001 - WeightsError and the card's own read errors
        raise ReaderError(f"cannot load the faces reader: {exc} (train it with: python "
                          "bench/faces_reader.py --train)") from None
    cfg = dict(card.config)
    cfg["widths"] = tuple(cfg["widths"])
    net = FacesReader(ReaderConfig(**cfg))
    net.load_state_dict(state)
    return net.eval()


def _batches(images: np.ndarray) -> list[torch.Tensor]:
    a = np.asarray(images)
    return [to_tensor(a[i:i + BATCH], SIZE) for i in range(0, len(a), BATCH)]


@torch.no_grad()
def read(net: FacesReader, images: np.ndarray) -> list[dict[str, str]]:
    """One dict per uint8 (N, H, W, 3) picture: attribute -> the class the reader reads."""
    heads = net.config.heads
    picks: dict[str, list[int]] = {k: [] for k in heads}
    for x in _batches(images):
        out = net(x)
        for k in heads:
            picks[k] += out[k].argmax(-1).tolist()
    n = len(np.asarray(images))
    return [{k: heads[k][picks[k][i]] for k in heads} for i in range(n)]


@torch.no_grad()
def features(net: FacesReader, images: np.ndarray) -> np.ndarray:
    """Penultimate features (N, D) float64 of uint8 (N, H, W, 3) pictures."""
    parts = [net.features(x) for x in _batches(images)]
    if not parts:
        raise ReaderError("no pictures to read")
    return torch.cat(parts).double().numpy()


# --------------------------------------------------------------------------- training


def blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Each picture of (N, C, H, W) blurred by a Gaussian of its own ``sigma`` (N,) px
    (separable, reflected edges; sigma 0 leaves it as it is)."""
    n, c, h, w = x.shape
    r = math.ceil(3 * MAX_BLUR)
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    s = sigma.to(x.dtype).clamp_min(1e-3)[:, None]
    g = torch.exp(-0.5 * (t / s) ** 2)
    g = (g / g.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (N * C, taps)
    y = F.pad(x.reshape(1, n * c, h, w), (r, r, r, r), mode="reflect")
    y = F.conv2d(y, g[:, None, None, :], groups=n * c)
    y = F.conv2d(y, g[:, None, :, None], groups=n * c)
    return y.reshape(n, c, h, w)


def _targets(labels: Sequence[dict[str, Any]], heads: dict[str, list[str]]
             ) -> dict[str, torch.Tensor]:
    return {k: torch.tensor([v.index(lab[k]) for lab in labels]) for k, v in heads.items()}


def train(steps: int = TRAIN["steps"], batch: int = TRAIN["batch"], seed: int = 0,
          log_every: int = 100) -> tuple[FacesReader, dict[str, Any]]:
    """A reader trained from scratch on fresh renders of TRAIN_SEEDS (``batch`` new seeds a
    step), and what to record of the run."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    world = get_world("faces")
    net = FacesReader(ReaderConfig(heads={k: list(v) for k, v in ATTRIBUTES.items()}))
    opt = torch.optim.AdamW(net.parameters(), lr=TRAIN["lr"],
                            weight_decay=TRAIN["weight_decay"])
    warm = TRAIN["warmup"]
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (
        1 + math.cos(math.pi * min(1.0, s / steps))))
    t0, c0 = time.perf_counter(), time.process_time()
    net.train()
    for step in range(steps):
        samples = [world.render(TRAIN_SEEDS[step * batch + i], SIZE) for i in range(batch)]
        x = to_tensor(np.stack([s.image for s in samples]))
        x = blur(x, torch.rand(batch, generator=gen) * MAX_BLUR)
        x = x + torch.randn(x.shape, generator=gen) * torch.rand(batch, 1, 1, 1,
                                                                 generator=gen) * MAX_NOISE
        out = net(x)
        target = _targets([s.labels for s in samples], net.config.heads)
        loss = sum(F.cross_entropy(out[k], target[k]) for k in out)
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[union-attr]
        opt.step()
        sched.step()
        if log_every and (step + 1) % log_every == 0:
            print(f"step {step + 1}/{steps}  loss {loss.item():.4f}  "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
    net.eval()
    run = {"steps": steps, "batch": batch, "seed": seed,
           "wall_time_s": round(time.perf_counter() - t0, 1),
           "cpu_time_s": round(time.process_time() - c0, 1),
           "seeds": f"faces world seeds {TRAIN_SEEDS.start:,} to "
                    f"{TRAIN_SEEDS.start + steps * batch - 1:,}"}
    return net, run


# --------------------------------------------------------------------------- validation


def blurred(images: np.ndarray, sigma: float) -> np.ndarray:
    """uint8 pictures Gaussian-blurred by OpenCV (sigma in px; 0 leaves them as they are)."""
    if sigma <= 0:
        return images
    return np.stack([cv2.GaussianBlur(im, (0, 0), sigmaX=sigma, sigmaY=sigma,
                                      borderType=cv2.BORDER_REFLECT_101) for im in images])


def accuracy(reads: Sequence[dict[str, str]], labels: Sequence[dict[str, Any]]
             ) -> dict[str, float]:
    """Per attribute, the share of pictures read as their label says."""
    return {k: float(np.mean([r[k] == lab[k] for r, lab in zip(reads, labels, strict=True)]))
            for k in ATTRIBUTES}


def validation(net: FacesReader, n: int = VALIDATION_N, offset: int = 0,
               sigmas: Sequence[float] = SIGMAS) -> dict[str, dict[str, float]]:
    """Accuracy per attribute on ``n`` held-out renders (from held-out seed ``offset``) at
    each blur sigma, and ``shuffled``: the sharp readings against the labels of other renders
    (a negative control: chance, about 1 / classes)."""
    samples = held_out_renders("faces", n, SIZE, offset)
    images = np.stack([s.image for s in samples])
    labels = [s.labels for s in samples]
    out = {f"sigma {s:g}": accuracy(read(net, blurred(images, s)), labels) for s in sigmas}
    sharp = read(net, images)
    perm = np.random.default_rng(offset).permutation(n)
    out["shuffled"] = accuracy(sharp, [labels[i] for i in perm])
    return out


def table(result: dict[str, dict[str, float]], n: int) -> str:
    cols = list(result)
    lines = [f"Faces reader on {n} held-out renders (held-out seeds {HELD_OUT.start:,} on), "
             "blurred by OpenCV; 'shuffled' reads the sharp renders against other renders' "
             "labels (a negative control: chance).", "",
             "| attribute | classes | chance | " + " | ".join(cols) + " |",
             "|---|---:|---:|" + "---:|" * len(cols)]
    for k, classes in ATTRIBUTES.items():
        cells = [f"{100 * result[c][k]:.1f}%" for c in cols]
        lines.append(f"| {k} | {len(classes)} | {100 / len(classes):.1f}% | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def failures(result: dict[str, dict[str, float]]) -> list[str]:
    return [f"{k} at {c}: {100 * v:.1f}%" for c, row in result.items() if c != "shuffled"
            for k, v in row.items() if v < ACCURACY]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--train", action="store_true",
                      help="train from scratch; write the weights, card and validation table")
    what.add_argument("--validate", action="store_true",
                      help="re-measure the validation table of the committed weights")
    ap.add_argument("--steps", type=int, default=TRAIN["steps"])
    ap.add_argument("--n", type=int, default=VALIDATION_N, help="held-out renders per blur")
    ap.add_argument("--weights", default=str(WEIGHTS))
    args = ap.parse_args()
    if args.steps < 1 or args.n < 10:
        print("--steps must be >= 1 and --n >= 10", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    if args.train:
        net, run = train(args.steps)
        result = validation(net, args.n)
        text = table(result, args.n)
        path = Path(args.weights)
        cmd = "python bench/faces_reader.py --train" + (
            f" --steps {args.steps}" if args.steps != TRAIN["steps"] else "")
        card = ModelCard(
            name=path.stem, family="reader", architecture="faces_reader",
            config={**dataclasses.asdict(net.config), "widths": list(net.config.widths)},
            command=cmd, data=run["seeds"], steps=run["steps"], wall_time_s=run["wall_time_s"],
            device="cpu, 1 thread", metrics={"validation": result, "validation_n": args.n},
            notes="bench-only faces attribute reader; never used to train, select or steer",
            extra={"train": {**TRAIN, **run, "max_blur": MAX_BLUR, "max_noise": MAX_NOISE}})
        save_model(path.parent, path.stem, net, card)
        atomic_write(path.with_suffix(".md"), (text + f"\n\nProduced by: `{cmd}` "
                     f"({run['wall_time_s']:.0f} s of training, "
                     f"{run['cpu_time_s']:.0f} CPU s on one "
                     "thread).\n").encode("utf-8"))
    else:
        try:
            net = load_reader(args.weights)
        except ReaderError as exc:
            print(exc, file=sys.stderr)
            return 2
        result = validation(net, args.n)
        text = table(result, args.n)
    print(text)
    bad = failures(result)
    if bad:
        print(f"below {100 * ACCURACY:.0f}%: " + ", ".join(bad), file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
