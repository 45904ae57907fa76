"""Inpainting benchmark: Easel's fills against their peers, measured in one run.

Peers: OpenCV ``cv2.inpaint`` (Telea 2004 fast marching and the Navier-Stokes method of
Bertalmio et al. 2001, radius 5) and scikit-image ``inpaint_biharmonic`` (Damelin & Hoang
2018); on photos also Easel's PatchMatch as it was (inpaint_photos.BEFORE, read from git).
Sections (--only, all by default):

- worlds: WORLD_IMAGES held-out renders per world at 64 px, each with three masks (a centred
  box of 25%, brush strokes of 15%, a random 50% of the pixels; the strokes and pixels seeded
  by the image, the same for every method). Methods: the diffusion engine with the world's
  shipped model (20 DDIM steps with RePaint resampling, jump 5 x 3, the app's default; through
  the inpaint pipeline), PatchMatch (the pipeline) and the three classical peers. Scores: hole
  PSNR of the squared error pooled over all images' holes, hole SSIM, and FJD (the Frechet
  distance in the world judge's feature space) between the filled pictures and the originals.
  A second table times one 64 px diffusion inpaint at 20 and 50 steps and with RePaint
  resampling, on one torch thread as the app runs it (--smoke: 4 and 10 steps, jump 2 x 2).
- textures: procedural periodic textures (brick, weave, stripes, dots; numpy, seeded) at
  512x512 with a centred box of 6% and brush strokes of 12%. A texture has one right answer up
  to a shift, so high scores are expected.
- photos: object removal on the photos scikit-image and scikit-learn ship, 4 seeded masks each
  (boxes and brush strokes, 5-15%), the tuning set (the only photos settings were chosen on)
  and the report set in separate rows (--set): hole PSNR, SSIM and the gradient-magnitude and
  -orientation histogram distances to the original, and whether the targets are met
  (bench/inpaint_photos.py says how each is measured).
- structure: edge continuation across a box hole of straight boundaries (two textures, a thin
  line, two photo textures; 4 angles each).
- speed: a 10% centred box at 512, 2048 and 4096 px, each fill in a fresh process at the
  app's thread count (or --speed-threads): wall and CPU seconds, the child's own peak RSS, the
  load average.
- gui: the longest stall of the Qt event loop while the real InferenceService fills a hole.

With photos or structure, a gallery of the fills side by side is written (--gallery, default
bench/out/inpaint_gallery.png).

Scores are measured against the original pixels, inside the hole only: PSNR over the hole's
pixels and channels, and SSIM as the mean of skimage's SSIM map (7x7 window, per channel) over
the hole's pixels. A photo's hole has no single right answer, so PSNR and SSIM favour smooth
fills; the gradient statistics say whether the texture was kept.

Asking for a smile (--smile): SMILE_FACES held-out faces rendered neutral, the mouth masked (the
box the acceptance screenshot uses), SMILE_VARIATIONS fills each through the pipeline's default
settings, without and with ``attribute="smiling=smiling"`` at several guidance strengths. A
fill counts as smiling when a judge gives it P(smiling) > 0.5: the shipped faces judge (which
also steers, so it can be fooled) and, with --reader, a second faces judge that never steers
(train it with `easel train judge_faces --seed 1 --name judge_faces_seed1`). The true
smiling render of each face gives a hole PSNR for scale.

Run: python bench/inpaint.py [--smoke] [--quick] [--out FILE.md] [--only SECTIONS]
         [--set tuning|report|all] [--speed-threads 0,1,2] [--gallery FILE.png] [--write-card]
     python bench/inpaint.py --smile [--reader JUDGE.safetensors] [--write-card] [--out FILE.md]
(needs the dev extras: opencv-python-headless, scikit-image and scikit-learn; git for the
earlier PatchMatch).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import inpaint_photos as photos
import numpy as np
from inpaint_photos import (
    EASEL,
    REPO,
    SMOOTH_PEERS,
    box_mask,
    fill_with,
    hole_psnr,
    hole_ssim,
    photo,
    stroke_mask,
)
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

from core.algorithms import patchmatch
from core.device import cpu_threads
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


TEXTURES: dict[str, Callable[[int, np.random.Generator], np.ndarray]] = {
    "brick": brick, "weave": weave, "stripes": stripes, "dots": dots,
}


# --------------------------------------------------------------------------- masks


def world_masks(n: int, index: int) -> dict[str, np.ndarray]:
    """The three mask kinds for the ``index``-th picture (the same for every method)."""
    strokes = stroke_mask(n, 0.15, index, length=(0.1 * n, 0.3 * n), width=(1, 3),
                          segments=(2, 5), unit=1.0)  # 1-2 px radius: a brush on 64 px
    return {"box 25%": box_mask(n, 0.25), "strokes 15%": strokes,
            "random 50%": np.random.default_rng(index).random((n, n)) < 0.5}


# --------------------------------------------------------------------------- methods


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
    EASEL: fill_with(patchmatch), **SMOOTH_PEERS}


# --------------------------------------------------------------------------- main


def textures(quick: bool, smoke: bool = False) -> tuple[list[str], list[list[str]]]:
    """Every method on every texture with a centred box and brush strokes. The methods run
    interleaved; a method whose run is short is repeated (report.interleaved) and its median
    wall and CPU seconds shown."""
    size = SMOKE_SIZE if smoke else SIZE
    rng = np.random.default_rng(0)
    images = {name: make(size, rng) for name, make in TEXTURES.items()}
    if quick or smoke:
        images = {k: images[k] for k in (("brick",) if smoke else ("brick", "stripes"))}
    holes = {"box 6%": box_mask(size), "strokes 12%": stroke_mask(size)}
    headers = ["image", "mask", "method", "seconds", "CPU s", "hole PSNR dB", "hole SSIM"]
    rows: list[list[str]] = []
    scores: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
    loads = []
    for name, img in images.items():
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
                if method == EASEL and not np.array_equal(out[~hole], img[~hole]):
                    raise RuntimeError(f"PatchMatch changed pixels outside the hole on {name}")
                sec, cpu = median_wall(samples), median_cpu(samples)
                psnr, ssim = hole_psnr(img, out, hole), hole_ssim(img, out, hole)
                rows.append([name, mask_name, method, f"{sec:.3f}", f"{cpu:.3f}", f"{psnr:.2f}",
                             f"{ssim:.3f}"])
                scores.setdefault((mask_name, method), []).append((sec, cpu, psnr, ssim))
    for (mask_name, method), vals in scores.items():
        sec, cpu, psnr, ssim = np.mean(vals, axis=0)
        rows.append(["MEAN", mask_name, method, f"{sec:.3f}", f"{cpu:.3f}",
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


SECTIONS = ("worlds", "textures", "photos", "structure", "speed", "gui")


class Report:
    """Tables printed as they are made and kept as markdown for --out."""

    def __init__(self, header: str) -> None:
        self.md = [header]
        print(header, flush=True)

    def table(self, title: str, headers: list[str], rows: list[list[str]], left: int = 1,
              note: str = "") -> None:
        print(f"\n## {title}\n\n{text_table(headers, rows, left=left)}", flush=True)
        self.md += [f"## {title}", markdown_table(headers, rows, left=left)]
        if note:
            print(f"\n{note}", flush=True)
            self.md.append(note)

    def write(self, out: Path | None) -> None:
        if out:
            out.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(out, ("\n\n".join(self.md) + "\n").encode("utf-8"))
            print(f"\nwrote {out}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="fewer world renders and textures; speed at 512 and 2048 px only")
    add_smoke(ap)
    ap.add_argument("--out", type=Path, help="also write the tables as markdown to this file")
    ap.add_argument("--only", default=",".join(SECTIONS),
                    help=f"comma-separated sections to run, of {', '.join(SECTIONS)} (all)")
    ap.add_argument("--worlds-only", action="store_true", help="the same as --only worlds")
    ap.add_argument("--set", choices=("tuning", "report", "all"), default="all",
                    help="photos: the tuning set, the report set or both (all)")
    ap.add_argument("--speed-threads", default="0",
                    help="speed: comma-separated torch thread counts, 0 = the app's (0)")
    ap.add_argument("--gallery", type=Path, default=REPO / "bench" / "out" /
                    "inpaint_gallery.png", help="where the photo and structure fills' gallery "
                    "is written (not with --smoke unless given)")
    ap.add_argument("--cache", type=Path, default=REPO / "bench" / "out" / "inpaint_cache",
                    help="where the smooth peers' photo fills are kept between runs")
    ap.add_argument("--write-card", action="store_true",
                    help="write the world figures into the diffusion models' cards")
    ap.add_argument("--smile", action="store_true",
                    help="only asking diffusion_faces for a smile (smile rates of mouth fills)")
    ap.add_argument("--reader", help="a second faces judge (.safetensors) that reads the smiles "
                    "without steering")
    args = ap.parse_args(argv)
    only = {"worlds"} if args.worlds_only else set(args.only.split(","))
    if only - set(SECTIONS):
        ap.error(f"--only: unknown sections {', '.join(sorted(only - set(SECTIONS)))}")
    gallery_given = "--gallery" in (argv if argv is not None else sys.argv)

    import torch

    size = SMOKE_SIZE if args.smoke else SIZE
    what = (f"{WORLD_SIZE} px world renders" if only == {"worlds"} or args.smile
            else f"{size}x{size}")
    mode = ", smoke: figures mean nothing" if args.smoke else ", quick" if args.quick else ""
    header = (f"# Inpainting benchmark ({what}{mode})\n"
              f"{platform.platform()}, Python {platform.python_version()}, {machine_line()} "
              "at start; seconds are wall, CPU seconds this process's (all threads)")
    torch.set_num_threads(cpu_threads())  # as the app starts a job (core.device.cpu_threads)
    if args.smile:
        print(header, flush=True)
        return smile_only(args, header)
    report = Report(header)
    if "worlds" in only:
        worlds(args, report)
    if "textures" in only:
        report.table("Textures: quality and time per image", *textures(args.quick, args.smoke),
                     left=3, note=("PSNR over hole pixels; SSIM = mean of skimage's SSIM map "
                                   "(7x7 window) over hole pixels. Wall-clock seconds on a "
                                   "shared machine: compare rows of one run, not runs."))
    meths = photos.methods() if only & {"photos", "structure"} else {}
    sets = {"tuning": photos.TUNING, "report": photos.REPORT}
    sets = {k: v[:1] if args.smoke else v for k, v in sets.items()
            if args.set in (k, "all")}
    if "photos" in only:
        q_headers, q_rows, p_headers, p_rows = photos.photo_quality(
            sets, size, meths, None if args.smoke else args.cache)
        report.table("Photos: means over every mask", q_headers, q_rows, left=2,
                     note="A photo's hole has no single right answer: PSNR and SSIM reward "
                          "smooth fills, the gradient distances fills that keep the texture.")
        report.table("Photos: per photo", p_headers, p_rows, left=3)
    if "structure" in only:
        seeds = 1 if args.smoke else photos.STRUCTURE_SEEDS
        report.table("Structure: edge continuation (1 = as many edge pixels on the line as the "
                     f"original; PatchMatch: the mean over {seeds} seeds)",
                     *photos.structure(SMOKE_SIZE if args.smoke else 256, meths,
                                       angles=(30,) if args.smoke else None, seeds=seeds))
    if meths and (gallery_given or not args.smoke):
        png = photos.gallery(photos.gallery_cases(sets if "photos" in only else {}, size),
                             list(meths))
        args.gallery.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(args.gallery, png)
        print(f"\nwrote {args.gallery}")
        report.md.append(f"Gallery: {args.gallery}")
    if "speed" in only:
        sizes = (SMOKE_SIZE,) if args.smoke else (512, 2048) if args.quick else (512, 2048, 4096)
        threads = tuple(int(t) for t in args.speed_threads.split(","))
        report.table("PatchMatch speed: 10% centred box on astronaut, fresh process",
                     *photos.speed(sizes, threads),
                     note="Wall seconds on a shared machine: read them with the CPU seconds "
                          "and the load average.")
    if "gui" in only:
        report.table(f"GUI responsiveness while a {size}x{size} PatchMatch job runs (5 ms "
                     "QTimer probe)", *gui_responsiveness(args.smoke), left=3)
    report.write(args.out)
    return 0


def worlds(args: argparse.Namespace, report: Report) -> None:
    """The diffusion engine against PatchMatch and its peers on world renders, and its time;
    with --write-card, the figures go into the diffusion models' cards."""
    w_headers, w_rows, w_figures = world_inpainting(args.quick, args.smoke)
    report.table(f"Diffusion and its peers on held-out world renders ({WORLD_SIZE} px, "
                 f"{SMOKE_WORLD_IMAGES if args.smoke else 20 if args.quick else WORLD_IMAGES} "
                 "per world)", w_headers, w_rows, left=3)
    t_headers, t_rows, t_figures = diffusion_times(smoke=args.smoke)
    report.table(f"One {WORLD_SIZE} px diffusion inpaint (diffusion_faces, box 25%)",
                 t_headers, t_rows, left=3)
    if args.write_card and not (args.quick or args.smoke):
        from core.evaluation.evaluate import write_metrics
        from core.weights import find_model

        for world, figures in w_figures.items():
            info = find_model(f"diffusion_{world}", ("diffusion",))
            extra = {"inpaint_seconds_64px": t_figures} if world == "faces" else {}
            write_metrics(info.path, {"inpaint_bench": figures, **extra})
            print(f"wrote the figures into {info.path.with_suffix('.json')}")


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
