"""Style transfer job specs and the limits of their settings.

Torch-free: the desktop panels build and restore these specs on the GUI thread, and importing
this module registers their kinds. The pipeline that runs them is core/pipelines/style.py.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class StyleSpec(JobSpec):
    kind = "style"
    panel = "style"

    image: ImageRef | None = None  # the content, HxWx3|4 uint8
    styles: tuple[ImageRef, ...] = ()  # one or more style images
    style_weights: tuple[float, ...] = ()  # one per style; empty: equal
    mask: ImageRef | None = None  # HxW uint8, nonzero = restyle here only (embedded)
    size: int = 512  # long side the style is worked at (the content is never enlarged)
    steps: int = 150  # optimisation steps over the whole pyramid
    optimizer: str = "adam"  # or "lbfgs": faster per step, but it can overshoot (bench/style.py)
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
