"""Style transfer job specs, the limits of their settings, the optimisation's schedule and an
estimate of a run's time.

Torch-free: the desktop panels build and restore these specs on the GUI thread, and importing
this module registers their kinds. The pipeline that runs them is core/pipelines/style.py.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from core.jobs import ImageRef, JobSpec

OPTIMIZERS = ("lbfgs", "adam")
COLOUR_MODES = ("", "luminance", "histogram")
MIN_SIZE, MAX_SIZE = 64, 2048  # long side of the picture the style is worked at
MAX_STEPS = 2000
MAX_STYLES = 8
MAX_FEATHER = 256
FAMILY = "style_fast"  # weights/style_fast/<name>.safetensors
ONE_PASS_FAMILY = "style_onepass"  # weights/style_onepass/<name>.safetensors
ONE_PASS_MODEL = "style_onepass"  # the shipped one-pass net (easel train style_onepass)
# Of the steps, coarse to fine: four in five at a quarter and half the size, where a step costs
# a sixteenth and a quarter of a full-size one (bench/style.py: fewer full-size steps than this
# lose style fidelity on the held-out nets).
LEVEL_SHARES = (0.5, 0.3, 0.2)
# CPU seconds per megapixel, measured on a 2-core x86 machine (bench/style.py): one evaluation
# of the optimisation's loss and gradient, and one pass of each one-pass model.
CPU_S_PER_MPIXEL = {"step": 1.45, "one_pass": 3.5, "fast": 2.0}
EVALS_PER_STEP = {"lbfgs": 2.5, "adam": 1.0}  # the line search evaluates more than once


@dataclass(frozen=True)
class StyleSpec(JobSpec):
    kind = "style"
    panel = "style"

    image: ImageRef | None = None  # the content, HxWx3|4 uint8
    styles: tuple[ImageRef, ...] = ()  # one or more style images
    style_weights: tuple[float, ...] = ()  # one per style; empty: equal
    mask: ImageRef | None = None  # HxW uint8, nonzero = restyle here only (embedded)
    size: int = 512  # long side the style is worked at (the content is never enlarged)
    steps: int = 140  # optimisation steps over the whole pyramid
    # "adam": the closest texture on held-out nets; "lbfgs" (with a line search) settles in
    # fewer steps on an optimum that keeps more of the picture (bench/style.py)
    optimizer: str = "adam"
    strength: float = 10.0  # weight of the style term (the content term weighs 1)
    content_weight: float = 1.0
    tv_weight: float = 50.0  # total variation: less speckle
    moments: bool = True  # also match per-channel means and deviations
    preserve_color: str = ""  # "", "luminance" or "histogram"
    feather: int = 8  # a region mask's seam, pixels
    feature_seed: int = 0  # the random feature network's seed
    fast: str = ""  # a fast style model's name: one pass instead of optimising
    one_pass: str = ""  # a one-pass (any painting) model's name: one pass after the styles
    alpha: float = 1.0  # one pass: 0 keeps the picture's own features, 1 the style's fully
    tile: bool = False  # seamless: circular padding, so the result repeats without seams


def pyramid(long_side: int) -> list[int]:
    """Long sides of the optimisation's levels, coarse to fine: a quarter, half and the full
    size, keeping only levels of at least 2 x MIN_SIZE px (a small picture is worked at its own
    size alone)."""
    return [s for s in (long_side // 4, long_side // 2) if s >= MIN_SIZE * 2] + [long_side]


def level_steps(steps: int, levels: int) -> list[int]:
    """How many of ``steps`` each level takes, coarse to fine: most at the coarse levels, where
    a step costs a fraction of a full-size one (LEVEL_SHARES)."""
    shares = LEVEL_SHARES[-levels:]
    return [max(1, round(steps * s / sum(shares))) for s in shares]


def estimate_cpu_seconds(height: int, width: int, size: int = StyleSpec.size,
                         steps: int = StyleSpec.steps, optimizer: str = StyleSpec.optimizer,
                         method: str = "") -> float:
    """CPU seconds a run on a ``width`` x ``height`` picture should take at these settings
    (``method``: "", "fast" or "one_pass"), from the per-megapixel costs measured on this
    design's reference machine; the caller scales it by what its last run measured."""
    scale = min(1.0, size / max(height, width, 1))
    h, w = max(1, round(height * scale)), max(1, round(width * scale))
    if method:
        return CPU_S_PER_MPIXEL[method] * h * w / 1e6
    evals = EVALS_PER_STEP.get(optimizer, 1.0)
    total = 0.0
    for side, n in zip(pyramid(max(h, w)), level_steps(steps, len(pyramid(max(h, w)))),
                       strict=True):
        f = side / max(h, w)
        total += n * evals * CPU_S_PER_MPIXEL["step"] * (h * f) * (w * f) / 1e6
    return total


def estimate_wall_seconds(cpu_seconds: float, threads: int | None = None) -> float:
    """Wall seconds for ``cpu_seconds`` of work on ``threads`` CPU threads (default: the
    machine's, as torch uses), each thread after the first counting for 0.8 of one."""
    threads = max(1, threads or os.cpu_count() or 1)
    return cpu_seconds / (1 + 0.8 * (threads - 1)) if math.isfinite(cpu_seconds) else 0.0
