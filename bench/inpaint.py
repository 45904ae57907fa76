"""Inpainting benchmark: Easel's PatchMatch fill against its peers, measured in one run.

Peers: OpenCV ``cv2.inpaint`` (Telea 2004 fast marching and the Navier-Stokes method of
Bertalmio et al. 2001, radius 5) and scikit-image ``inpaint_biharmonic`` (Damelin & Hoang
2018), all on the same 512x512 images and masks:

- images: procedural periodic textures (brick, weave, stripes, dots; numpy, seeded) and photos
  bundled inside the scikit-image wheel (astronaut, coffee, chelsea, rocket; centre-cropped to a
  square and resized to 512 with Pillow's bicubic filter), so nothing is downloaded;
- masks: a centred box of 6% of the pixels, and brush strokes covering 12% (thick random
  polylines from a seeded generator). The same masks are used for every image.

Scores are measured against the original pixels, inside the hole only: PSNR over the hole's
pixels and channels, and SSIM as the mean of skimage's SSIM map (7x7 window, per channel) over
the hole's pixels. A texture has one right answer up to a shift, so high scores are expected
there; a photo's hole has no single right answer, so its scores say little beyond "close in
colour and smoothness" - which favours the smooth diffusion methods.

World renders (the diffusion engine): WORLD_IMAGES held-out renders per world at 64 px, each
with three masks (a centred box of 25%, brush strokes of 15%, a random 50% of the pixels; the
strokes and pixels seeded by the image, the same for every method). Methods: the diffusion
engine with the world's shipped model (20 DDIM steps with RePaint resampling, jump 5 x 3, the
app's default; through the inpaint pipeline), PatchMatch (the pipeline) and the three
classical peers. Scores: hole PSNR of the squared error pooled over all images' holes, hole
SSIM as above, and FJD (the Frechet distance in the world judge's feature space) between the
filled pictures and the originals. A second table times one 64 px diffusion inpaint at 20 and
50 steps and with RePaint resampling, on one torch thread as the app runs it (--smoke: 4 and
10 steps, jump 2 x 2).

Asking for a smile (--smile): SMILE_FACES held-out faces rendered neutral, the mouth masked (the
box the acceptance screenshot uses), SMILE_VARIATIONS fills each through the pipeline's default
settings, without and with ``attribute="smiling=smiling"`` at several guidance strengths. A
fill counts as smiling when a judge gives it P(smiling) > 0.5: the shipped faces judge (which
also steers, so it can be fooled) and, with --reader, a second faces judge that never steers
(train it with `easel train judge_faces --seed 1 --name judge_faces_seed1`). The true
smiling render of each face gives a hole PSNR for scale.

Run: python bench/inpaint.py [--smoke] [--quick] [--out FILE.md] [--worlds-only] [--write-card]
     python bench/inpaint.py --smile [--reader JUDGE.safetensors] [--write-card] [--out FILE.md]
(needs the dev extras: opencv-python-headless and scikit-image).
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from report import (
    REPEATS,
    SHORT_S,
    add_smoke,
    interleaved,
    load_range,
    machine_line,
    markdown_table,
    median_cpu,
    median_wall,
    text_table,
    timed,
)

from core.algorithms import masks as mask_ops
from core.algorithms.patchmatch import fill
from core.device import cpu_threads, torch_threads
from core.imageio import atomic_write

SIZE = 512
SMOKE_SIZE = 128  # --smoke: pictures small enough for a few seconds in all
WORLD_SIZE = 64
WORLD_IMAGES = 200
SMOKE_WORLD_IMAGES = 2  # --smoke: per world, the first world only, the strokes mask only
# Diffusion sampling: (steps, the longer run's steps, RePaint jump, resample); the first, with
# jump and resample, is the app's default. --smoke runs the same settings, shortened.
DIFFUSION = (20, 50, 5, 3)
SMOKE_DIFFUSION = (4, 10, 2, 2)
WORLDS = ("faces", "scenes")
SMILE_FACES = 24
SMILE_VARIATIONS = 4
SMILE_GUIDANCE = (0.1, 0.2, 0.4)


# --------------------------------------------------------------------------- images


def brick(n: int, rng: np.random.Generator) -> np.ndarray:
    bh, bw, mortar = 32, 64, 4
    y, x = np.mgrid[:n, :n]
    row = y // bh
    xs = x + (row % 2) * (bw // 2)
    col = xs // bw
    tint = rng.normal(0, 14, (row.max() + 1, col.max() + 1, 3))
    out = np.array([168.0, 72, 52]) + tint[row, col]
    joint = (y % bh < mortar) | (xs % bw < mortar)
    out[joint] = (188, 182, 170)
    out += rng.normal(0, 7, (n, n, 1))
    return np.clip(out, 0, 255).astype(np.uint8)


def weave(n: int, rng: np.random.Generator) -> np.ndarray:
    p = 16
    y, x = np.mgrid[:n, :n]
    over = (x // p + y // p) % 2 == 0  # which thread is on top in this cell
    u, v = (x % p + 0.5) / p, (y % p + 0.5) / p
    shade = np.where(over, np.sin(np.pi * v), np.sin(np.pi * u))[..., None]
    warp, weft = np.array([205.0, 185, 140]), np.array([110.0, 80, 60])
    out = np.where(over[..., None], warp, weft) * (0.55 + 0.45 * shade)
    out += rng.normal(0, 4, (n, n, 1))
    return np.clip(out, 0, 255).astype(np.uint8)


def stripes(n: int, rng: np.random.Generator) -> np.ndarray:
    y, x = np.mgrid[:n, :n]
    band = ((x + y) // 6) % 3
    colours = np.array([[40.0, 70, 160], [230, 210, 80], [200, 60, 60]])
    out = colours[band] + rng.normal(0, 5, (n, n, 1))
    return np.clip(out, 0, 255).astype(np.uint8)


def dots(n: int, rng: np.random.Generator) -> np.ndarray:
    p, radius = 20, 6.0
    y, x = np.mgrid[:n, :n].astype(np.float64)
    yo = y % p - p / 2 + 0.5
    xo = (x + (y // p % 2) * p / 2) % p - p / 2 + 0.5  # staggered rows
    a = np.clip(radius + 0.5 - np.hypot(yo, xo), 0, 1)[..., None]  # anti-aliased edge
    out = (1 - a) * np.array([235.0, 228, 210]) + a * np.array([30.0, 110, 90])
    out += rng.normal(0, 4, (n, n, 1))
    return np.clip(out, 0, 255).astype(np.uint8)


def photo(name: str, n: int) -> np.ndarray:
    import skimage.data
    from PIL import Image

    img = getattr(skimage.data, name)()[..., :3]
    h, w = img.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    square = Image.fromarray(img[y0:y0 + s, x0:x0 + s])
    return np.asarray(square.resize((n, n), Image.Resampling.BICUBIC))


TEXTURES: dict[str, Callable[[int, np.random.Generator], np.ndarray]] = {
    "brick": brick, "weave": weave, "stripes": stripes, "dots": dots,
}
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


# --------------------------------------------------------------------------- masks


def box_mask(n: int, fraction: float = 0.06) -> np.ndarray:
    side = round(n * fraction ** 0.5)
    m = np.zeros((n, n), bool)
    y0 = x0 = (n - side) // 2
    m[y0:y0 + side, x0:x0 + side] = True
    return m


def stroke_mask(n: int, fraction: float = 0.12, seed: int = 1,
                length: tuple[float, float] = (40, 120), width: tuple[int, int] = (5, 13),
                segments: tuple[int, int] = (2, 6), unit: float | None = None) -> np.ndarray:
    """Thick random polylines, added one at a time until they cover ``fraction``: 2-5
    ``segments`` of ``length`` each, grown by a radius drawn from ``width``, all in units of
    ``unit`` pixels (n / 512 by default, so a mask looks the same at every size)."""
    rng = np.random.default_rng(seed)
    m = np.zeros((n, n), bool)
    scale = n / 512 if unit is None else unit
    while m.mean() < fraction:
        line = np.zeros((n, n), bool)
        p = rng.uniform(0.1, 0.9, 2) * n
        for _ in range(rng.integers(*segments)):
            angle = rng.uniform(0, 2 * np.pi)
            q = np.clip(p + rng.uniform(*length) * scale * np.array([np.sin(angle),
                                                                      np.cos(angle)]), 0, n - 1)
            t = np.linspace(0.0, 1.0, int(np.hypot(*(q - p))) + 2)[:, None]
            pts = np.rint(p + t * (q - p)).astype(int)
            line[pts[:, 0], pts[:, 1]] = True
            p = q
        m |= mask_ops.grow(line, int(rng.integers(*width) * scale)) > 0
    return m


def world_masks(n: int, index: int) -> dict[str, np.ndarray]:
    """The three mask kinds for the ``index``-th picture (the same for every method)."""
    strokes = stroke_mask(n, 0.15, index, length=(0.1 * n, 0.3 * n), width=(1, 3),
                          segments=(2, 5), unit=1.0)  # 1-2 px radius: a brush on 64 px
    return {"box 25%": box_mask(n, 0.25), "strokes 15%": strokes,
            "random 50%": np.random.default_rng(index).random((n, n)) < 0.5}


# --------------------------------------------------------------------------- methods


def patchmatch(img: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The fill as the inpaint pipeline runs it (threads by core.device.cpu_threads)."""
    return run_fill(img, hole)[0]


def run_fill(img: np.ndarray, hole: np.ndarray) -> tuple[np.ndarray, int]:
    """(filled image, number of search/vote rounds)."""
    with torch_threads(cpu_threads()):
        gen = fill(img, hole, rng=np.random.default_rng(0))
        total = 0
        while True:
            try:
                _, total, _ = next(gen)
            except StopIteration as done:
                return done.value, total


def cv2_method(flag_name: str, radius: int = 5) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    def run(img: np.ndarray, hole: np.ndarray) -> np.ndarray:
        import cv2

        return cv2.inpaint(img, hole.astype(np.uint8) * 255, radius, getattr(cv2, flag_name))

    return run


def biharmonic(img: np.ndarray, hole: np.ndarray) -> np.ndarray:
    from skimage.restoration import inpaint_biharmonic

    out = inpaint_biharmonic(img.astype(np.float64) / 255.0, hole, channel_axis=-1)
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def pipeline_fill(**settings) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A fill through the inpaint pipeline (what the app and `easel inpaint` run), the models
    loaded once."""
    from core.jobs import Context, ImageRef, run_job
    from core.pipelines.inpaint import InpaintSpec
    from core.weights import ModelCache

    cache = ModelCache()

    def run(img: np.ndarray, hole: np.ndarray) -> np.ndarray:
        spec = InpaintSpec(image=ImageRef.of(img), seed=0, **settings,
                           mask=ImageRef.of(hole.astype(np.uint8) * 255, embed=True))
        return run_job(spec, Context.for_spec(spec, device="cpu", models=cache)).images[0]

    return run


METHODS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "patchmatch (easel)": patchmatch,
    "cv2 telea r5": cv2_method("INPAINT_TELEA"),
    "cv2 ns r5": cv2_method("INPAINT_NS"),
    "skimage biharmonic": biharmonic,
}


# --------------------------------------------------------------------------- scores


def hole_psnr(truth: np.ndarray, out: np.ndarray, hole: np.ndarray) -> float:
    mse = float(((truth.astype(np.float64) - out)[hole] ** 2).mean())
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


def hole_ssim(truth: np.ndarray, out: np.ndarray, hole: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    _, smap = structural_similarity(truth, out, channel_axis=-1, data_range=255, full=True)
    return float(smap[hole].mean())


# --------------------------------------------------------------------------- main


def quality(quick: bool, smoke: bool = False) -> tuple[list[str], list[list[str]]]:
    """Every method on every image and mask. The methods run interleaved; a method whose run
    is short is repeated (report.interleaved) and its median wall and CPU seconds shown."""
    size = SMOKE_SIZE if smoke else SIZE
    rng = np.random.default_rng(0)
    images = {name: make(size, rng) for name, make in TEXTURES.items()}
    images.update({name: photo(name, size) for name in PHOTOS})
    if quick or smoke:
        images = {k: images[k] for k in (("brick", "astronaut") if smoke
                                         else ("brick", "stripes", "astronaut"))}
    holes = {"box 6%": box_mask(size), "strokes 12%": stroke_mask(size)}
    headers = ["image", "mask", "method", "seconds", "CPU s", "hole PSNR dB", "hole SSIM"]
    rows: list[list[str]] = []
    scores: dict[tuple[str, str, str], list[tuple[float, float, float, float]]] = {}
    loads = []
    for name, img in images.items():
        group = "textures" if name in TEXTURES else "photos"
        for mask_name, hole in holes.items():
            outs: dict[str, np.ndarray] = {}

            def peer(method: str, run: Callable, img: np.ndarray = img,
                     hole: np.ndarray = hole, outs: dict = outs) -> Callable[[int], None]:
                return lambda r: outs.__setitem__(method, run(img, hole))

            peers = {method: peer(method, run) for method, run in METHODS.items()}
            times = interleaved(peers, 1 if smoke else REPEATS, warm=False, long_s=SHORT_S)
            loads += [s for v in times.values() for s in v]
            for method, samples in times.items():
                out = outs[method]
                if method == "patchmatch (easel)" and not np.array_equal(out[~hole], img[~hole]):
                    raise RuntimeError(f"PatchMatch changed pixels outside the hole on {name}")
                sec, cpu = median_wall(samples), median_cpu(samples)
                psnr, ssim = hole_psnr(img, out, hole), hole_ssim(img, out, hole)
                rows.append([name, mask_name, method, f"{sec:.3f}", f"{cpu:.3f}", f"{psnr:.2f}",
                             f"{ssim:.3f}"])
                scores.setdefault((group, mask_name, method), []).append((sec, cpu, psnr, ssim))
    for (group, mask_name, method), vals in scores.items():
        sec, cpu, psnr, ssim = np.mean(vals, axis=0)
        rows.append([f"MEAN {group}", mask_name, method, f"{sec:.3f}", f"{cpu:.3f}",
                     f"{psnr:.2f}", f"{ssim:.3f}"])
    rows.append(["load average", "", "over these runs", load_range(loads), "", "", ""])
    return headers, rows


def world_inpainting(quick: bool, smoke: bool = False
                     ) -> tuple[list[str], list[list[str]], dict[str, Any]]:
    """Diffusion against PatchMatch and the classical peers on held-out world renders; the
    worlds run side by side in two processes of one torch thread each (with ``smoke``, two
    images of the first world with one mask kind, in this process)."""
    from concurrent.futures import ProcessPoolExecutor

    n_images = SMOKE_WORLD_IMAGES if smoke else 20 if quick else WORLD_IMAGES
    headers = ["world", "mask", "method", "s/image", "CPU s/image", "hole PSNR dB (pooled)",
               "hole SSIM", "FJD"]
    worlds = WORLDS[:1] if smoke else WORLDS
    diffusion = SMOKE_DIFFUSION if smoke else DIFFUSION
    if smoke:
        done = [_one_world(worlds[0], n_images, diffusion)]
    else:
        with ProcessPoolExecutor(max_workers=len(worlds)) as pool:
            done = list(pool.map(_one_world, worlds, [n_images] * len(worlds),
                                 [diffusion] * len(worlds)))
    rows = [row for world_rows, _ in done for row in world_rows]
    return headers, rows, {world: figures for world, (_, figures) in zip(worlds, done,
                                                                        strict=True)}


def _one_world(world: str, n_images: int, diffusion: tuple[int, int, int, int] = DIFFUSION
               ) -> tuple[list[list[str]], dict[str, Any]]:
    import torch

    from core.evaluation.common import held_out_renders
    from core.evaluation.metrics import fjd_from_features
    from core.judges import features, load_judge

    torch.set_num_threads(1)
    judge = load_judge(world)
    images = [s.image for s in held_out_renders(world, n_images, WORLD_SIZE)]
    real = features(judge, np.stack(images))
    steps, _, jump, resample = diffusion
    methods = {f"diffusion (easel, diffusion_{world}, {steps} steps, RePaint {jump}x{resample})":
               pipeline_fill(engine="diffusion", model=f"diffusion_{world}", steps=steps,
                             jump=jump, resample=resample),
               "patchmatch (easel)": pipeline_fill(engine="patchmatch"),
               **{k: v for k, v in METHODS.items() if k != "patchmatch (easel)"}}
    rows: list[list[str]] = []
    figures: dict[str, Any] = {}
    from core.jobs import JobError

    for kind in ("strokes 15%",) if n_images <= SMOKE_WORLD_IMAGES else (
            "box 25%", "strokes 15%", "random 50%"):
        for method, run in methods.items():
            outs, errs, ssims, secs, cpus = [], [], [], [], []
            for i, img in enumerate(images):
                hole = world_masks(WORLD_SIZE, i)[kind]
                try:
                    out, sample = timed(lambda img=img, hole=hole, run=run: run(img, hole))
                except JobError as exc:  # PatchMatch has no whole patch to copy from
                    print(f"  {world} {kind} {method}: {exc}", flush=True)
                    rows.append([world, kind, method, "n/a", "n/a", "n/a", "n/a", "n/a"])
                    break
                secs.append(sample.wall)
                cpus.append(sample.cpu)
                if "easel" in method and not np.array_equal(out[~hole], img[~hole]):
                    raise RuntimeError(f"{method} changed pixels outside the hole")
                outs.append(out)
                errs.append(((img.astype(np.float64) - out)[hole] ** 2).mean())
                ssims.append(hole_ssim(img, out, hole))
            if len(outs) < len(images):
                continue
            fjd = fjd_from_features(features(judge, np.stack(outs)), real)
            # PSNR of the mean squared error over every image's hole (a per-image mean would be
            # infinite as soon as one flat hole is filled exactly).
            psnr = 10.0 * np.log10(255.0 ** 2 / max(float(np.mean(errs)), 1e-12))
            row = [world, kind, method, f"{np.mean(secs):.3f}", f"{np.mean(cpus):.3f}",
                   f"{psnr:.2f}",
                   f"{np.mean(ssims):.3f}", f"{fjd:.3f}"]
            rows.append(row)
            print("  " + "  ".join(row), flush=True)
            figures.setdefault(kind, {})[method.split(" (")[0]] = {
                "hole_psnr": float(psnr), "hole_ssim": float(np.mean(ssims)),
                "fjd": float(fjd), "seconds": float(np.mean(secs)),
                "cpu_seconds": float(np.mean(cpus))}
    return rows, figures


def diffusion_times(repeats: int = 7, smoke: bool = False
                    ) -> tuple[list[str], list[list[str]], dict[str, Any]]:
    """Median seconds of one 64 px diffusion inpaint (box 25%) through the pipeline, the
    three settings interleaved (report.interleaved)."""
    from core.evaluation.common import held_out_renders
    from core.sampling.diffusion import repaint_path

    img = held_out_renders("faces", 1, WORLD_SIZE)[0].image
    hole = box_mask(WORLD_SIZE, 0.25)
    headers = ["setting", "denoising passes", "median s", "median CPU s", "runs", "target"]
    steps, long, jump, resample = SMOKE_DIFFUSION if smoke else DIFFUSION
    settings = ((f"{steps} DDIM steps", {"steps": steps, "jump": jump, "resample": 1},
                 "" if smoke else "< 1.5 s"),
                (f"{long} DDIM steps", {"steps": long, "jump": jump, "resample": 1}, ""),
                (f"{steps} steps, RePaint jump {jump} x resample {resample}"
                 f"{'' if smoke else ' (the default)'}",
                 {"steps": steps, "jump": jump, "resample": resample}, ""))

    def peer(**kw: Any) -> Callable[[int], None]:
        run = pipeline_fill(engine="diffusion", model="diffusion_faces", **kw)
        return lambda r: run(img, hole)

    peers = {label: peer(**kw) for label, kw, _ in settings}
    # warm: the models are loaded once, untimed (with smoke the one run is timed cold)
    times = interleaved(peers, 1 if smoke else repeats, warm=not smoke)
    rows, figures = [], {}
    for label, kw, target in settings:
        med = median_wall(times[label])
        moves = repaint_path(list(range(kw["steps"], 0, -1)), kw["jump"], kw["resample"])
        rows.append([label, str(sum(m.denoise for m in moves)), f"{med:.3f}",
                     f"{median_cpu(times[label]):.3f}", str(len(times[label])), target])
        figures[label] = float(med)
    rows.append(["load average over these runs", "",
                 load_range([s for v in times.values() for s in v]), "", "", ""])
    return headers, rows, figures


def asking_for_a_smile(reader: str | None, n_faces: int = SMILE_FACES
                       ) -> tuple[list[str], list[list[str]], dict[str, Any]]:
    """Smile rates of mouth fills on neutral held-out faces, without and with asking."""
    from core.data.worlds import get_world, split_seeds
    from core.jobs import Context, ImageRef, run_job
    from core.judges import load_judge, outputs
    from core.pipelines.inpaint import DEFAULT_GUIDANCE, InpaintSpec
    from core.weights import ModelCache

    world = get_world("faces")
    seeds = split_seeds("held_out", n_faces, 50_000)
    neutral = [world.render(s, size=WORLD_SIZE, smiling="neutral").image for s in seeds]
    truth = [world.render(s, size=WORLD_SIZE, smiling="smiling").image for s in seeds]
    hole = np.zeros((WORLD_SIZE, WORLD_SIZE), bool)
    hole[39:49, 23:41] = True
    judges = {"judge_faces (steers)": load_judge("faces")}
    if reader:
        judges[f"{Path(reader).stem} (never steers)"] = load_judge(reader)
    cache = ModelCache()
    headers = ["asked for", "guidance", "fills", *[f"smiling by {n}" for n in judges],
               "hole PSNR vs the smiling render dB", "s/fill"]
    rows, figures = [], {}
    for attribute, guidance in (("", 0.0), *(("smiling=smiling", g) for g in SMILE_GUIDANCE)):
        fills, errs, t0 = [], [], time.perf_counter()
        for img, smile in zip(neutral, truth, strict=True):
            spec = InpaintSpec(image=ImageRef.of(img), engine="diffusion",
                               model="diffusion_faces", variations=SMILE_VARIATIONS, seed=0,
                               mask=ImageRef.of(hole.astype(np.uint8) * 255, embed=True),
                               attribute=attribute, guidance=guidance or DEFAULT_GUIDANCE)
            for out in run_job(spec, Context.for_spec(spec, device="cpu", models=cache)).images:
                fills.append(out)
                errs.append(((smile.astype(np.float64) - out)[hole] ** 2).mean())
        seconds = (time.perf_counter() - t0) / len(fills)
        rates = {}
        for name, judge in judges.items():
            k = judge.config.heads["smiling"].index("smiling")
            p = outputs(judge, np.stack(fills))["smiling"].softmax(-1)[:, k].numpy()
            rates[name.split()[0]] = float((p > 0.5).mean())
        psnr = 10 * np.log10(255.0 ** 2 / float(np.mean(errs)))
        label = attribute or "nothing"
        rows.append([label, f"{guidance:g}" if attribute else "-", str(len(fills)),
                     *[f"{r:.2f}" for r in rates.values()], f"{psnr:.2f}", f"{seconds:.2f}"])
        figures[f"{label} {guidance:g}" if attribute else label] = {
            "smile_rate": rates, "hole_psnr_vs_smiling": round(psnr, 2),
            "seconds_per_fill": round(seconds, 3)}
    return headers, rows, figures


def scaling(quick: bool, smoke: bool = False) -> tuple[list[str], list[list[str]]]:
    headers = ["size", "hole px", "scales*rounds", "seconds", "CPU s", "image Mpx/s",
               "hole kpx/s"]
    rows = []
    for n in (SMOKE_SIZE,) if smoke else (512, 1024) if quick else (512, 1024, 2048):
        img = photo("astronaut", n)
        hole = box_mask(n)
        (_, total), sample = timed(lambda img=img, hole=hole: run_fill(img, hole))
        sec = sample.wall
        rows.append([f"{n}x{n}", str(int(hole.sum())), str(total), f"{sec:.2f}",
                     f"{sample.cpu:.2f}",
                     f"{n * n / 1e6 / sec:.2f}", f"{hole.sum() / 1e3 / sec:.1f}"])
    return headers, rows


def gui_responsiveness(smoke: bool = False) -> tuple[list[str], list[list[str]]]:
    """The longest stall of the Qt event loop while the real InferenceService fills a hole."""
    from gui_probe import longest_gui_gap  # bench/ is on sys.path when run as a script

    size = SMOKE_SIZE if smoke else SIZE
    headers = ["image", "mask", "job seconds", "longest GUI gap ms", "p99 gap ms", "ticks"]
    rows = []
    for name in ("astronaut",) if smoke else ("astronaut", "stripes"):
        img = photo(name, size) if name == "astronaut" else stripes(size, np.random.default_rng(0))
        r = longest_gui_gap(img, box_mask(size))
        rows.append([name, "box 6%", f"{r['job_s']:.2f}", f"{r['max_gap_ms']:.1f}",
                     f"{r['p99_gap_ms']:.1f}", str(r["ticks"])])
    return headers, rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="three images and two sizes only")
    add_smoke(ap)
    ap.add_argument("--out", type=Path, help="also write the tables as markdown to this file")
    ap.add_argument("--worlds-only", action="store_true",
                    help="only the world renders (diffusion against its peers) and its timing")
    ap.add_argument("--write-card", action="store_true",
                    help="write the world figures into the diffusion models' cards")
    ap.add_argument("--smile", action="store_true",
                    help="only asking diffusion_faces for a smile (smile rates of mouth fills)")
    ap.add_argument("--reader", help="a second faces judge (.safetensors) that reads the smiles "
                    "without steering")
    args = ap.parse_args(argv)

    import torch

    size = SMOKE_SIZE if args.smoke else SIZE
    what = f"{WORLD_SIZE} px world renders" if args.worlds_only or args.smile else f"{size}x{size}"
    mode = ", smoke: figures mean nothing" if args.smoke else ", quick" if args.quick else ""
    header = (f"# Inpainting benchmark ({what}{mode})\n"
              f"{platform.platform()}, Python {platform.python_version()}, {machine_line()} "
              "at start; seconds are wall, CPU seconds this process's (all threads)")
    print(header, flush=True)
    torch.set_num_threads(cpu_threads())  # as the app starts a job (core.device.cpu_threads)
    if args.smile:
        return smile_only(args, header)
    print(f"\n## Diffusion and its peers on held-out world renders ({WORLD_SIZE} px)\n")
    w_headers, w_rows, w_figures = world_inpainting(args.quick, args.smoke)
    print(text_table(w_headers, w_rows, left=3))
    t_headers, t_rows, t_figures = diffusion_times(smoke=args.smoke)
    print(f"\n## One {WORLD_SIZE} px diffusion inpaint (diffusion_faces, box 25%)\n")
    print(text_table(t_headers, t_rows, left=3))
    world_md = [(f"## Diffusion and its peers on held-out world renders ({WORLD_SIZE} px, "
                f"{20 if args.quick else WORLD_IMAGES} per world)"),
                markdown_table(w_headers, w_rows, left=3),
                f"## One {WORLD_SIZE} px diffusion inpaint (diffusion_faces, box 25%)",
                markdown_table(t_headers, t_rows, left=3)]
    if args.write_card and not (args.quick or args.smoke):
        from core.evaluation.evaluate import write_metrics
        from core.weights import find_model

        for world, figures in w_figures.items():
            info = find_model(f"diffusion_{world}", ("diffusion",))
            extra = {"inpaint_seconds_64px": t_figures} if world == "faces" else {}
            write_metrics(info.path, {"inpaint_bench": figures, **extra})
            print(f"wrote the figures into {info.path.with_suffix('.json')}")
    if args.worlds_only:
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(args.out, ("\n\n".join([header, *world_md]) + "\n").encode("utf-8"))
            print(f"\nwrote {args.out}")
        return 0
    q_headers, q_rows = quality(args.quick, args.smoke)
    s_headers, s_rows = scaling(args.quick, args.smoke)

    notes = ("PSNR over hole pixels; SSIM = mean of skimage's SSIM map (7x7 window) over hole "
             "pixels.\nA photo's hole has no single right answer: these scores reward smooth, "
             "mean-colour fills (where\nthe diffusion methods win), while PatchMatch copies sharp "
             "content that can be the wrong content.\nWall-clock seconds on a shared machine: "
             "compare rows of one run, not runs.")
    print("\n## Quality and time per image\n")
    print(text_table(q_headers, q_rows, left=3))
    print("\n" + notes)
    print("\n## PatchMatch scaling (astronaut, centred box of 6% of the pixels)\n")
    print(text_table(s_headers, s_rows, left=3))
    g_headers, g_rows = gui_responsiveness(args.smoke)
    print(f"\n## GUI responsiveness while a {size}x{size} PatchMatch job runs (5 ms QTimer "
          "probe)\n")
    print(text_table(g_headers, g_rows, left=3))
    if args.out:
        md = "\n\n".join([header, *world_md,
                          "## Quality and time per image",
                          markdown_table(q_headers, q_rows, left=3),
                          notes, "## PatchMatch scaling (astronaut, centred box of 6%)",
                          markdown_table(s_headers, s_rows, left=3),
                          "## GUI responsiveness (5 ms QTimer probe)",
                          markdown_table(g_headers, g_rows, left=3)]) + "\n"
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(args.out, md.encode("utf-8"))
        print(f"\nwrote {args.out}")
    return 0


def smile_only(args: argparse.Namespace, header: str) -> int:
    title = (f"## Asking diffusion_faces for a smile ({SMILE_FACES} neutral held-out faces, "
             f"mouth masked, {SMILE_VARIATIONS} fills each, 20 steps, RePaint 5x3)")
    headers, rows, figures = asking_for_a_smile(args.reader)
    print(f"\n{title}\n")
    print(text_table(headers, rows, left=3))
    if args.write_card:
        from core.evaluation.evaluate import write_metrics
        from core.weights import find_model

        info = find_model("diffusion_faces", ("diffusion",))
        write_metrics(info.path, {"smile_bench": figures})
        print(f"wrote the figures into {info.path.with_suffix('.json')}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        md = "\n\n".join([header, title, markdown_table(headers, rows, left=3)]) + "\n"
        atomic_write(args.out, md.encode("utf-8"))
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
