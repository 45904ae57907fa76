"""Style transfer benchmark: Easel's neural style (random-weight features) against its peers,
measured in one run on the same content and style images.

Inputs, nothing downloaded:

- content: the photos bundled inside the scikit-image wheel (astronaut, coffee, chelsea, rocket),
  centre-cropped to a square and resized to --size (default 512) with Pillow's bicubic filter;
- style: the procedural paintings of core/data/styles.py ("brush", "mosaic", "hatching", seed 0,
  the paintings the shipped fast styles learn) and one more "brush" painting drawn from seed 1
  (the same manner, a painting no fast style saw), all rendered at 256 px. The pipeline resizes a
  style to the picture's long side; the metrics below do the same.

Methods, each on every content x style pair:

- Easel, L-BFGS: the style pipeline as the app runs it (core.jobs.run_job on a StyleSpec, CPU,
  default settings: L-BFGS with a strong-Wolfe line search, coarse to fine with most steps at
  the quarter and half sizes, the half-width feature net, strength 10, moments, feature_seed 0);
- Easel, Adam: the same with optimizer="adam";
- Gatys et al. 2016 on a random-weight VGG-19 (He, Wang & Hopcroft 2016: VGG-19's layout with
  random weights, each layer normalised; core.evaluation.style.VGG19, seed 0): Gram matrices at
  conv1_1..conv5_1, content at conv4_2 (relative terms, strength 10 as Easel's), L-BFGS with
  the same line search at full size in one level from the content, for the same CPU seconds
  as Easel's run with the default optimiser on the pair (at least PEER_MIN_STEPS steps);
- Ustyuzhaninov et al. 2017: their single-layer multi-scale random filter model
  (core.nets.features.MultiScaleFilters with the published settings: filter sizes 3, 5, 7, 11,
  15, 23, 37 and 55, 128 filters each, ReLU), the Gram loss on that layer only (relative, as
  core.nets.features.relative), optimised with Easel's L-BFGS settings (torch.optim.LBFGS, lr 1,
  one iteration per step, history 20, strong-Wolfe line search; clamped to the picture range
  after each step, like their box-constrained L-BFGS-B) at full size, in one level, starting
  FROM THE CONTENT IMAGE (they started from noise to synthesise textures; from noise a Gram-only
  loss keeps no content at all). It gets the same CPU seconds as Easel's default run on the
  same pair, setup included: steps stop when the next one would end past that budget, but
  never before PEER_MIN_STEPS steps (fewer leave the picture almost the content, which would
  make the comparison empty), so on small pictures it can overrun; its real seconds and CPU
  seconds are reported;
- Reinhard et al. 2001: colour transfer only, core.algorithms.colour.reinhard_transfer(content,
  style);
- Easel fast styles (a transform net trained for one style: one pass), through the pipeline
  with a warm model cache, for each style whose model weights/style_fast/style_fast_<name> is
  installed (the "brush" model is also run on the seed 1 brush painting); skipped with a
  "not installed" line otherwise;
- for scale: the content unchanged, and the style image itself (resized to the content).

Scores, averaged over the pairs a method ran on:

- held-out Gram distance (style fidelity, lower is better): for random-feature networks
  RandomFeatures(FeatureConfig(seed=s)) with s = 101..105, NOT the seed-0 network Easel
  optimises, the mean over those nets and their style layers of the relative Gram distance
  ||G(result) - G(style)||^2 / ||G(style)||^2 (G averaged over positions, the style resized to
  the result's long side as the pipeline does). The same on the seed-0 net is shown too: the
  gap shows how much of Easel's score is the one net it was optimised on. The held-out nets
  share Easel's architecture (not the peer's), which favours Easel; read it with that in mind;
- colour-histogram distance (lower is better): the mean over R, G and B of the L1 distance
  between the result's and the style's 32-bin histograms normalised to sum 1 (0: the same
  colours in the same proportions; 2: none in common);
- content edge SSIM (content fidelity, higher is better): SSIM (core.evaluation.metrics.ssim,
  Gaussian window) between the Sobel gradient magnitudes of the result's and the content's
  luminance (Rec. 601). All three metrics are easel eval's (core/evaluation/style.py);
- a second fidelity measure of another family (so no method is scored only by the kind of net
  it was made with): the same Gram distance in a random-weight VGG-19 (seed 201, not the
  Gatys peer's 0), and, when the optional bench-only package plenoptic is importable
  (pip install plenoptic; it does not pull torchvision), the distance of Portilla & Simoncelli
  2000 texture statistics (plenoptic's PortillaSimoncelli model on 256 px greyscale,
  ||s(result) - s(style)|| / ||s(style)||); without it that column reads "-".

A strength curve (the content <-> style slider every path gets): on the first pair at --size,
Easel's optimisation at strengths CURVE_STRENGTHS and, when installed, the one-pass net at
strengths CURVE_ALPHAS, each point's held-out Gram distance and content edge SSIM.

A second table gives the time to a finished --size px result on this CPU: the two Easel
optimisation runs (target for the default optimiser at 512 px: at most 10 s wall and 20 CPU
seconds), the peers, the fast styles (median
after one warm-up, target < 0.7 s at 512 px), and, for scale, one forward pass of random-weight
TransformNets at the shipped size (base 16) and at Johnson et al.'s size (base 32). One-off
costs are not charged to the first pair: each Easel optimiser runs once untimed first (one step
at the size), the peer once on a 48 px picture, each fast style once. Torch uses its default
thread count, as a style job in the app does (printed in the header).

A gallery PNG (--gallery, default bench/out/style_gallery.png; bench/out/style_gallery_quick.png
with --quick): the style images along the top, the content photos down the side and Easel's
L-BFGS results in the grid; below it, the first photo restyled after each style by every method.

The full run takes about an hour on a 2-core machine (16 pairs; the L-BFGS, Adam and
equal-time peer runs are each up to a minute a pair at 512 px).

Run: python bench/style.py [--smoke] [--quick] [--size PX] [--out FILE.md] [--gallery FILE.png]
(needs the dev extras: scikit-image).
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from report import (
    Sample,
    add_smoke,
    interleaved,
    machine_line,
    markdown_table,
    median_cpu,
    median_wall,
    text_table,
    timed,
)

from core.algorithms.colour import reinhard_transfer
from core.data.styles import render_style
from core.evaluation.style import (
    HELD_OUT_SEEDS,
    VGG19,
    VGG19_SEEDS,
    colour_distance,
    edge_ssim,
    gram_distance,
)
from core.imageio import atomic_write
from core.jobs import Context, ImageRef, run_job
from core.nets.features import (
    MultiScaleConfig,
    MultiScaleFilters,
    RandomFeatures,
    StyleLoss,
    gram,
    relative,
)
from core.nets.transform import TransformConfig, TransformNet
from core.pipelines.style import FAMILY, StyleSpec, resize_long, to_tensor, to_uint8
from core.specs.style import ONE_PASS_FAMILY, ONE_PASS_MODEL
from core.weights import ModelCache, find_model

SIZE = 512
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
STYLE_SIZE = 256
# (label, procedural style, seed); the last is another painting in the brush manner.
STYLES = (("brush", "brush", 0), ("mosaic", "mosaic", 0), ("hatching", "hatching", 0),
          ("brush seed 1", "brush", 1))
OPTIMISED_SEED = 0  # StyleSpec.feature_seed's default: the net Easel optimises on
QUICK_PHOTOS, QUICK_STYLES, QUICK_SIZE, QUICK_STEPS = 2, 1, 128, 6
SMOKE_SIZE, SMOKE_STEPS = 64, 3  # --smoke: one photo, one style (rendered at 64 px too)
PEER_MIN_STEPS = 5  # the equal-time peer's fewest L-BFGS steps, whatever its budget
SMOKE_PEER_STEPS = 1  # --smoke: its steps cost seconds each even at 64 px
TIME_REPEATS = 5  # short runs timed per method (median): reinhard, fast styles, forward passes
DEFAULT_TARGET_S, DEFAULT_TARGET_CPU, FAST_TARGET_S = 10.0, 20.0, 0.7  # at 512 px
TILE = 192  # gallery tile side, px
CAPTION = 14  # gallery caption strip, px

CURVE_STRENGTHS = (1.0, 3.0, 10.0, 30.0)  # Easel's optimisation (the default is 10)
CURVE_ALPHAS = (0.25, 0.5, 0.75, 1.0)  # the one-pass net's 0..1 strength
PS_SIZE = 256  # Portilla-Simoncelli statistics are taken on greyscale pictures of this side

EASEL_LBFGS, EASEL_ADAM = "Easel, L-BFGS", "Easel, Adam"
GATYS = "Gatys et al. 2016, random VGG-19, equal CPU time"
USTYUZHANINOV = "Ustyuzhaninov et al. 2017, equal CPU time"
REINHARD = "Reinhard et al. 2001 colour transfer"
CONTENT, STYLE_ITSELF = "content unchanged (for scale)", "style image itself (for scale)"


# --------------------------------------------------------------------------- images


def photo(name: str, n: int) -> np.ndarray:
    """A scikit-image sample photo, centre-cropped square and resized to n (bicubic)."""
    import skimage.data
    from PIL import Image

    img = getattr(skimage.data, name)()[..., :3]
    h, w = img.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    square = Image.fromarray(np.ascontiguousarray(img[y0:y0 + s, x0:x0 + s]))
    return np.asarray(square.resize((n, n), Image.Resampling.BICUBIC))


# --------------------------------------------------------------------------- metrics
# gram_distance, colour_distance and edge_ssim are easel eval's (core/evaluation/style.py), so
# the benchmark and the model cards measure alike.


# --------------------------------------------------------------------------- methods


@dataclass
class Outcome:
    image: np.ndarray
    seconds: float  # wall-clock (the median of several runs for a short method)
    steps: int | None = None  # optimisation steps taken, where that means something
    cpu: float = 0.0  # this process's CPU seconds over the same run(s), all threads


def easel(content: np.ndarray, style: np.ndarray, label: str, size: int, optimizer: str,
          steps: int) -> Outcome:
    spec = StyleSpec(image=ImageRef.of(content), styles=(ImageRef.of(style, path=label),),
                     size=size, steps=steps, optimizer=optimizer)
    result, t = timed(lambda: run_job(spec, Context.for_spec(spec, device="cpu")))
    return Outcome(result.images[0], t.wall, steps, t.cpu)


_NETS: dict[str, torch.nn.Module] = {}


def equal_cpu_lbfgs(x: torch.Tensor, loss_of: Callable[[torch.Tensor], torch.Tensor],
                    budget_cpu: float, c0: float, min_steps: int) -> tuple[torch.Tensor, int]:
    """L-BFGS (Easel's settings and line search) on ``x`` until the next step would end past
    ``budget_cpu`` CPU seconds from ``c0``, but at least ``min_steps`` steps."""
    x = x.detach().requires_grad_(True)
    opt = torch.optim.LBFGS([x], lr=1.0, max_iter=1, history_size=20,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = loss_of(x)
        loss.backward()
        return loss

    setup = time.process_time() - c0
    steps = 0
    while True:
        opt.step(closure)
        with torch.no_grad():
            x.clamp_(-1, 1)
        steps += 1
        used = time.process_time() - c0
        if steps >= min_steps and used + (used - setup) / steps > budget_cpu:
            return x.detach(), steps


def ustyuzhaninov(content: np.ndarray, style: np.ndarray, budget_cpu: float,
                  min_steps: int = PEER_MIN_STEPS) -> Outcome:
    """Gram loss on the multi-scale random filter layer, L-BFGS from the content, for
    ``budget_cpu`` CPU seconds (net construction excluded: it is built once), and at least
    ``min_steps`` steps."""
    net = _NETS.setdefault("msf", MultiScaleFilters(MultiScaleConfig()))
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.no_grad():
        target = gram(net(to_tensor(resize_long(style, max(content.shape[:2]))))[0])
    x, steps = equal_cpu_lbfgs(to_tensor(content), lambda x: relative(gram(net(x)[0]), target),
                               budget_cpu, c0, min_steps)
    return Outcome(to_uint8(x), time.perf_counter() - t0, steps, time.process_time() - c0)


def gatys_vgg19(content: np.ndarray, style: np.ndarray, budget_cpu: float,
                min_steps: int = PEER_MIN_STEPS) -> Outcome:
    """Gatys et al.'s loss (Gram matrices at conv1_1..conv5_1, content at conv4_2) in a
    random-weight VGG-19 with per-layer normalisation, L-BFGS from the content at full size
    for ``budget_cpu`` CPU seconds (at least ``min_steps`` steps)."""
    net = _NETS.setdefault("vgg19", RandomFeatures(VGG19))
    t0, c0 = time.perf_counter(), time.process_time()
    c = to_tensor(content)
    loss = StyleLoss(net, [to_tensor(resize_long(style, max(content.shape[:2])))], [1.0],
                     moments=False)
    targets = loss.content_targets(c)
    x, steps = equal_cpu_lbfgs(
        c, lambda x: loss.terms(x, targets, StyleSpec.strength, 1.0, 0.0)["loss"],
        budget_cpu, c0, min_steps)
    return Outcome(to_uint8(x), time.perf_counter() - t0, steps, time.process_time() - c0)


def ps_distance(image: np.ndarray, style: np.ndarray) -> float | None:
    """Relative distance of Portilla & Simoncelli's texture statistics (plenoptic), or None
    when plenoptic is not installed."""
    try:
        from plenoptic.models import PortillaSimoncelli  # plenoptic 2
    except ImportError:
        try:
            from plenoptic.simulate import PortillaSimoncelli  # plenoptic 1
        except ImportError:
            return None
    model = _NETS.get("ps")
    if model is None:
        model = _NETS["ps"] = PortillaSimoncelli((PS_SIZE, PS_SIZE))

    def grey(img: np.ndarray) -> torch.Tensor:
        sq = resize_long(img, PS_SIZE)
        sq = np.asarray(sq[:PS_SIZE, :PS_SIZE], np.float32)
        if sq.shape[:2] != (PS_SIZE, PS_SIZE):  # not square: the statistics need the size
            sq = np.resize(sq, (PS_SIZE, PS_SIZE, 3))
        y = sq @ np.array([0.299, 0.587, 0.114], np.float32) / 255.0
        return torch.from_numpy(np.ascontiguousarray(y))[None, None]

    with torch.no_grad():
        a, b = model(grey(image)), model(grey(style))
    return float((a - b).norm() / b.norm().clamp(min=1e-12))


def repeated(fn: Callable[[int], np.ndarray], repeats: int) -> Outcome:
    """A short method timed ``repeats`` times (median wall and CPU seconds)."""
    out: list[np.ndarray] = []
    samples = interleaved({"m": lambda r: out.append(fn(r))}, repeats, warm=False)["m"]
    return Outcome(out[-1], median_wall(samples), None, median_cpu(samples))


def reinhard(content: np.ndarray, style: np.ndarray, repeats: int = TIME_REPEATS) -> Outcome:
    return repeated(lambda r: reinhard_transfer(content, style), repeats)


@dataclass
class FastModel:
    name: str
    cache: ModelCache = field(default_factory=ModelCache)
    warm: bool = False

    def __call__(self, content: np.ndarray, size: int, repeats: int = TIME_REPEATS) -> Outcome:
        spec = StyleSpec(image=ImageRef.of(content), fast=self.name, size=size)

        def run(r: int) -> np.ndarray:
            return run_job(spec, Context.for_spec(spec, device="cpu",
                                                  models=self.cache)).images[0]

        if not self.warm:  # weights loaded into the cache, kernels chosen: not timed
            run(-1)
            self.warm = True
        return repeated(run, repeats)


def fast_models(styles: list[tuple[str, str, int]]) -> tuple[dict[str, FastModel], list[str]]:
    """The installed fast model of each procedural style in ``styles`` by style name, and a
    line for each one that is missing."""
    found: dict[str, FastModel] = {}
    missing: list[str] = []
    for proc in dict.fromkeys(p for _, p, _ in styles):
        name = f"{FAMILY}_{proc}"
        if find_model(name, (FAMILY,)) is None:
            missing.append(f"fast style {name}: not installed (no weights/{FAMILY}/{name}"
                           f".safetensors with a readable card; `easel train {name}` makes "
                           "one): its rows are skipped")
        else:
            found[proc] = FastModel(name)
    return found, missing


@torch.no_grad()
def transform_seconds(base: int, size: int, repeats: int = TIME_REPEATS) -> list[Sample]:
    """Forward passes of a random-weight TransformNet on a size x size picture, after one
    untimed warm-up."""
    net = TransformNet(TransformConfig(base=base)).eval()
    x = torch.rand(1, 3, size, size) * 2 - 1
    return interleaved({"net": lambda r: net(x)}, repeats)["net"]


def strength_curve(content: np.ndarray, style: np.ndarray, label: str, size: int,
                   steps: int) -> list[list[str]]:
    """Rows of (path, strength, held-out Gram distance, VGG-19 Gram distance, content edge
    SSIM) along each path's strength slider; the one-pass net's only where installed."""
    rows = [["unstyled", "-", f"{gram_distance(content, style):.3f}",
             f"{gram_distance(content, style, VGG19_SEEDS, VGG19):.3f}", "1.000"]]

    def row(path: str, strength: float, img: np.ndarray) -> list[str]:
        return [path, f"{strength:g}", f"{gram_distance(img, style):.3f}",
                f"{gram_distance(img, style, VGG19_SEEDS, VGG19):.3f}",
                f"{edge_ssim(img, content):.3f}"]

    for strength in CURVE_STRENGTHS:
        spec = StyleSpec(image=ImageRef.of(content), styles=(ImageRef.of(style, path=label),),
                         size=size, steps=steps, strength=strength)
        rows.append(row(EASEL_LBFGS, strength,
                        run_job(spec, Context.for_spec(spec, device="cpu")).images[0]))
    if find_model(ONE_PASS_MODEL, (ONE_PASS_FAMILY,)) is not None:
        cache = ModelCache()
        for alpha in CURVE_ALPHAS:
            spec = StyleSpec(image=ImageRef.of(content), styles=(ImageRef.of(style),),
                             size=size, one_pass=ONE_PASS_MODEL, alpha=alpha)
            rows.append(row("Easel one pass", alpha, run_job(
                spec, Context.for_spec(spec, device="cpu", models=cache)).images[0]))
    else:
        rows.append(["Easel one pass", "-", "not installed", "-", "-"])
    return rows


# --------------------------------------------------------------------------- tables


@dataclass
class Score:
    seconds: float
    cpu: float
    steps: int | None
    gram: float
    gram_seed0: float
    colour: float
    ssim: float
    vgg: float  # Gram distance in a random-weight VGG-19
    ps: float | None  # Portilla-Simoncelli statistics distance (None: plenoptic missing)


def score(out: Outcome, content: np.ndarray, style: np.ndarray) -> Score:
    return Score(out.seconds, out.cpu, out.steps,
                 gram_distance(out.image, style, HELD_OUT_SEEDS),
                 gram_distance(out.image, style, (OPTIMISED_SEED,)),
                 colour_distance(out.image, style), edge_ssim(out.image, content),
                 gram_distance(out.image, style, VGG19_SEEDS, VGG19),
                 ps_distance(out.image, style))


QUALITY_HEADERS = ["method", "pairs", "steps", "s/image", "CPU s/image", "held-out Gram dist",
                   "Gram dist, seed-0 net", "VGG-19 Gram dist", "P-S stats dist",
                   "colour-hist L1", "content edge SSIM"]


def quality_row(method: str, scores: list[Score]) -> list[str]:
    steps = [s.steps for s in scores if s.steps is not None]
    if not steps:
        step_text = "-"
    elif min(steps) == max(steps):
        step_text = str(steps[0])
    else:
        step_text = f"{statistics.mean(steps):.1f} ({min(steps)}-{max(steps)})"
    sec = statistics.mean(s.seconds for s in scores)
    cpu = statistics.mean(s.cpu for s in scores)
    return [method, str(len(scores)), step_text, f"{sec:.3f}" if sec < 10 else f"{sec:.1f}",
            f"{cpu:.3f}" if cpu < 10 else f"{cpu:.1f}",
            f"{statistics.mean(s.gram for s in scores):.3f}",
            f"{statistics.mean(s.gram_seed0 for s in scores):.3f}",
            f"{statistics.mean(s.vgg for s in scores):.3f}",
            "-" if any(s.ps is None for s in scores)
            else f"{statistics.mean(s.ps for s in scores):.3f}",
            f"{statistics.mean(s.colour for s in scores):.3f}",
            f"{statistics.mean(s.ssim for s in scores):.3f}"]


# --------------------------------------------------------------------------- gallery


def _tile(img: np.ndarray | None, caption: str, side: int) -> np.ndarray:
    from PIL import Image, ImageDraw

    canvas = Image.new("RGB", (side, side + CAPTION), (255, 255, 255))
    if img is not None:
        canvas.paste(Image.fromarray(resize_long(img, side)), (0, CAPTION))
    ImageDraw.Draw(canvas).text((2, 1), caption[: side // 6], fill=(0, 0, 0))
    return np.asarray(canvas)


def _row(tiles: list[np.ndarray], columns: int, side: int) -> np.ndarray:
    blank = np.full((side + CAPTION, side, 3), 255, np.uint8)
    tiles = tiles + [blank] * (columns - len(tiles))
    gap = np.full((side + CAPTION, 4, 3), 255, np.uint8)
    parts: list[np.ndarray] = []
    for t in tiles:
        parts += [t, gap]
    return np.concatenate(parts[:-1], 1)


def gallery(contents: dict[str, np.ndarray], styles: dict[str, np.ndarray],
            results: dict[tuple[str, str, str], np.ndarray], methods: list[str],
            side: int) -> bytes:
    """Part one: styles along the top, photos down the side, Easel L-BFGS in the grid. Part
    two: the first photo after each style, by every method that ran on it."""
    from PIL import Image

    first = next(iter(contents))
    columns = max(1 + len(styles), 2 + len(methods))
    rows = [_row([_tile(None, "Easel L-BFGS", side)]
                 + [_tile(img, f"style: {k}", side) for k, img in styles.items()],
                 columns, side)]
    for c, img in contents.items():
        rows.append(_row([_tile(img, c, side)]
                         + [_tile(results.get((c, s, EASEL_LBFGS)), f"{c} x {s}", side)
                            for s in styles], columns, side))
    rows.append(np.full((CAPTION, rows[0].shape[1], 3), 255, np.uint8))
    for s, style in styles.items():
        tiles = [_tile(contents[first], first, side), _tile(style, f"style: {s}", side)]
        tiles += [_tile(results[(first, s, m)], m, side) for m in methods
                  if (first, s, m) in results]
        rows.append(_row(tiles, columns, side))
    gap = np.full((4, rows[0].shape[1], 3), 255, np.uint8)
    parts: list[np.ndarray] = []
    for r in rows:
        parts += [r, gap]
    buf = io.BytesIO()
    Image.fromarray(np.concatenate(parts[:-1], 0)).save(buf, "PNG")
    return buf.getvalue()


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"{QUICK_PHOTOS} photos x {QUICK_STYLES} style at {QUICK_SIZE} px, "
                    f"{QUICK_STEPS} steps: a few minutes")
    add_smoke(ap)
    ap.add_argument("--size", type=int, default=None,
                    help=f"long side of the pictures, px (default {SIZE}; {QUICK_SIZE} with "
                    "--quick)")
    ap.add_argument("--photos", type=int, default=None,
                    help=f"the first N photos of {', '.join(PHOTOS)} (default all)")
    ap.add_argument("--styles", type=int, default=None,
                    help=f"the first N of the {len(STYLES)} styles (default all)")
    ap.add_argument("--out", type=Path, help="also write the tables as markdown to this file")
    ap.add_argument("--gallery", type=Path, default=None,
                    help="the gallery PNG (default bench/out/style_gallery.png, or "
                    "bench/out/style_gallery_quick.png with --quick)")
    args = ap.parse_args(argv)
    size = args.size or (SMOKE_SIZE if args.smoke else QUICK_SIZE if args.quick else SIZE)
    if not 64 <= size <= 2048:
        ap.error("--size must be from 64 to 2048")
    steps = SMOKE_STEPS if args.smoke else QUICK_STEPS if args.quick else StyleSpec.steps
    few = args.quick or args.smoke
    photos = PHOTOS[:args.photos or (1 if args.smoke else QUICK_PHOTOS if few else len(PHOTOS))]
    style_list = list(STYLES[:args.styles or (QUICK_STYLES if few else len(STYLES))])
    repeats = 1 if args.smoke else TIME_REPEATS
    peer_steps = SMOKE_PEER_STEPS if args.smoke else PEER_MIN_STEPS
    gallery_path = args.gallery or Path(__file__).parent / "out" / (
        "style_gallery_quick.png" if args.quick else "style_gallery.png")

    mode = ", smoke: figures mean nothing" if args.smoke else ", quick" if args.quick else ""
    header = (f"# Style transfer benchmark ({size} px, {len(photos)} photos x {len(style_list)} "
              f"styles{mode})\n"
              f"{platform.platform()}, Python {platform.python_version()}, {machine_line()} "
              "at start (torch's default threads, as a style job runs in the app)")
    print(header, flush=True)

    contents = {name: photo(name, size) for name in photos}
    style_size = SMOKE_SIZE if args.smoke else STYLE_SIZE
    styles = {label: render_style(proc, seed, style_size) for label, proc, seed in style_list}
    fast, missing = fast_models(style_list)
    for line in missing:
        print(line, flush=True)

    methods = [EASEL_LBFGS, EASEL_ADAM, GATYS, USTYUZHANINOV, REINHARD,
               *(f"Easel fast {fast[p].name}" for p in fast)]
    scores: dict[tuple[str, str], list[Score]] = {}  # (method, style) -> per content
    results: dict[tuple[str, str, str], np.ndarray] = {}
    # The peers get the CPU seconds of Easel's run with the default optimiser on each pair.
    default = EASEL_LBFGS if StyleSpec.optimizer == "lbfgs" else EASEL_ADAM
    budget: dict[tuple[str, str], float] = {}

    def record(method: str, c: str, s: str, out: Outcome) -> None:
        sc = score(out, contents[c], styles[s])
        scores.setdefault((method, s), []).append(sc)
        results[(c, s, method)] = out.image
        steps_text = "" if sc.steps is None else f", {sc.steps} steps"
        ps = "-" if sc.ps is None else f"{sc.ps:.3f}"
        print(f"  {c} x {s}: {method}: {sc.seconds:.2f} s ({sc.cpu:.1f} CPU s){steps_text}, "
              f"held-out Gram {sc.gram:.3f}, seed-0 Gram {sc.gram_seed0:.3f}, VGG-19 Gram "
              f"{sc.vgg:.3f}, P-S {ps}, colour {sc.colour:.3f}, edge SSIM {sc.ssim:.3f}",
              flush=True)

    # One-off costs (lazy imports, kernel choice, building the peer's filters) are not charged
    # to the first pair, nor to the peer's budget: a short untimed run of each method first.
    c0, s0 = next(iter(contents.values())), next(iter(styles))
    for optimizer in ("lbfgs", "adam"):
        easel(c0, styles[s0], s0, size, optimizer, 1)
    ustyuzhaninov(resize_long(c0, 48), styles[s0], 0.0, min_steps=1)
    gatys_vgg19(resize_long(c0, 48), styles[s0], 0.0, min_steps=1)

    print(f"\nRunning {len(contents) * len(styles)} content x style pairs", flush=True)
    runs: list[tuple[str, Callable[[str, str], Outcome]]] = [
        (EASEL_LBFGS, lambda c, s: easel(contents[c], styles[s], s, size, "lbfgs", steps)),
        (EASEL_ADAM, lambda c, s: easel(contents[c], styles[s], s, size, "adam", steps)),
        (GATYS, lambda c, s: gatys_vgg19(contents[c], styles[s], budget[(c, s)],
                                         peer_steps)),
        (USTYUZHANINOV, lambda c, s: ustyuzhaninov(contents[c], styles[s],
                                                   budget[(c, s)], peer_steps)),
        (REINHARD, lambda c, s: reinhard(contents[c], styles[s], repeats)),
    ]
    for (_, proc, _), s in zip(style_list, styles, strict=True):
        for c, content in contents.items():
            for method, fn in runs:
                out = fn(c, s)
                if method == default:
                    budget[(c, s)] = out.cpu
                record(method, c, s, out)
            if proc in fast:
                record(f"Easel fast {fast[proc].name}", c, s,
                       fast[proc](content, size, repeats))
            record(CONTENT, c, s, Outcome(content, 0.0))
            record(STYLE_ITSELF, c, s, Outcome(resize_long(styles[s], size), 0.0))

    # ---- the strength curve, on the first pair
    curve_rows = strength_curve(contents[first_photo := next(iter(contents))],
                                styles[s0], s0, size, steps)

    # ---- quality, averaged over pairs; then per style
    order = [*methods, CONTENT, STYLE_ITSELF]
    q_rows = [quality_row(m, [sc for (mm, _), v in scores.items() if mm == m for sc in v])
              for m in order if any(mm == m for mm, _ in scores)]
    per_style_rows = [[s, *quality_row(m, scores[(m, s)])] for s in styles for m in order
                      if (m, s) in scores]
    mean_gram = {m: statistics.mean(sc.gram for (mm, _), v in scores.items() if mm == m
                                    for sc in v)
                 for m in (EASEL_LBFGS, GATYS, USTYUZHANINOV, REINHARD)}
    peers = {m: mean_gram[m] for m in (GATYS, USTYUZHANINOV, REINHARD)}
    verdict = ("yes" if all(mean_gram[EASEL_LBFGS] < v for v in peers.values()) else "NO")
    target_line = (f"Target, Easel (L-BFGS) lower held-out Gram distance than both peers at "
                   f"equal time: {verdict} (Easel {mean_gram[EASEL_LBFGS]:.3f}; "
                   + "; ".join(f"{m} {v:.3f}" for m, v in peers.items()) + ")")

    # ---- time to a finished picture
    t_headers = ["method", "picture", "s/picture (median)", "CPU s (median)", "min", "max",
                 "runs", "target", "met"]
    t_rows = []
    big = size == SIZE

    def t_row(method: str, secs: list[tuple[float, float]], target: float | None,
              target_cpu: float | None = None) -> list[str]:
        walls = [w for w, _ in secs]
        med, cpu = statistics.median(walls), statistics.median(c for _, c in secs)
        ok = target is not None and med <= target and (target_cpu is None or cpu <= target_cpu)
        met = "-" if target is None else ("n/a (not 512 px)" if not big else
                                          ("yes" if ok else "NO"))
        goal = "-" if target is None else f"<= {target:g} s" + (
            f", {target_cpu:g} CPU s" if target_cpu is not None else "")
        return [method, f"{size}x{size}", f"{med:.3f}", f"{cpu:.3f}", f"{min(walls):.3f}",
                f"{max(walls):.3f}", str(len(secs)), goal, met]

    def secs_of(method: str) -> list[tuple[float, float]]:
        return [(sc.seconds, sc.cpu) for (m, _), v in scores.items() if m == method for sc in v]

    for method in (EASEL_LBFGS, EASEL_ADAM):
        mine = method == default
        t_rows.append(t_row(f"{method}, {steps} steps" + (" (the default)" if mine else ""),
                            secs_of(method), DEFAULT_TARGET_S if mine else None,
                            DEFAULT_TARGET_CPU if mine else None))
    t_rows.append(t_row(GATYS, secs_of(GATYS), None))
    t_rows.append(t_row(USTYUZHANINOV, secs_of(USTYUZHANINOV), None))
    t_rows.append(t_row(REINHARD, secs_of(REINHARD), None))
    for model in fast.values():
        name = f"Easel fast {model.name}"
        t_rows.append(t_row(f"{name} (pipeline, warm)", secs_of(name), FAST_TARGET_S))
    t_rows.append(t_row("TransformNet base 16 (shipped size, random weights), forward",
                        [(t.wall, t.cpu) for t in transform_seconds(16, size, repeats)],
                        FAST_TARGET_S))
    t_rows.append(t_row("TransformNet base 32 (Johnson et al. size, random weights), forward",
                        [(t.wall, t.cpu) for t in transform_seconds(32, size, repeats)], None))

    notes = (f"Held-out Gram distance: mean over RandomFeatures nets of seeds "
             f"{HELD_OUT_SEEDS[0]}..{HELD_OUT_SEEDS[-1]} and their style layers of "
             "||G(result)-G(style)||^2/||G(style)||^2; seed-0 net: the one Easel optimises on.\n"
             "Colour-hist L1: mean over R, G, B of the L1 distance of normalised 32-bin "
             "histograms (0..2). Content edge SSIM: SSIM (Gaussian window) of the\n"
             "Sobel magnitudes of luminance, result vs content. Lower, lower, higher is "
             f"better. Easel: the pipeline's defaults ({steps} steps coarse to fine, strength "
             "10).\nVGG-19 Gram dist: the same distance in a random-weight VGG-19 (seed "
             f"{VGG19_SEEDS[0]}, conv1_1..conv5_1); P-S: Portilla-Simoncelli statistics "
             "(plenoptic; '-' when not installed).\nGatys et al. (random VGG-19) and "
             "Ustyuzhaninov et al. (multi-scale random filters, 3..55 px, 128 each, Gram loss "
             "only): L-BFGS with a line search from the content image, for the CPU seconds of "
             "Easel's default run on the\nsame pair (setup included; at least "
             f"{peer_steps} steps, so they can overrun). "
             "Wall-clock seconds on a shared machine (CPU seconds: this process, all threads; "
             "short methods: the median of\n"
             f"{repeats} runs): compare rows of one run, not runs.")
    if missing:
        notes += "\n" + "\n".join(missing)

    q_title = f"## Quality, mean over content x style pairs ({size} px)"
    p_title = "## Per style"
    t_title = f"## Time to a finished {size} px picture on this CPU"
    c_title = (f"## Strength curve ({first_photo} x {s0}, {size} px): content <-> style "
               "along each path's slider")
    c_headers = ["path", "strength", "held-out Gram dist", "VGG-19 Gram dist",
                 "content edge SSIM"]
    print(f"\n{q_title}\n")
    print(text_table(QUALITY_HEADERS, q_rows))
    print("\n" + target_line)
    print(f"\n{p_title}\n")
    print(text_table(["style", *QUALITY_HEADERS], per_style_rows, left=2))
    print(f"\n{t_title}\n")
    print(text_table(t_headers, t_rows, left=2))
    print(f"\n{c_title}\n")
    print(text_table(c_headers, curve_rows, left=2))
    print("\n" + notes)

    png = gallery(contents, styles, results, methods, min(TILE, size))
    if args.smoke and args.gallery is None:
        print(f"\ngallery built ({len(png)} bytes), not written (--smoke without --gallery)")
    else:
        gallery_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(gallery_path, png)
        print(f"\nwrote {gallery_path}")
    if args.out:
        md = "\n\n".join([header, q_title, markdown_table(QUALITY_HEADERS, q_rows), target_line,
                          p_title, markdown_table(["style", *QUALITY_HEADERS], per_style_rows,
                                                  left=2),
                          t_title, markdown_table(t_headers, t_rows, left=2),
                          c_title, markdown_table(c_headers, curve_rows, left=2),
                          notes.replace("\n", " "),
                          f"Gallery: {gallery_path}"]) + "\n"
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(args.out, md.encode("utf-8"))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
