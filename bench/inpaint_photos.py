"""Object removal on real photos: Easel's PatchMatch fill against the smooth classical fills and
against the PatchMatch fill as it was (commit BEFORE), measured in one run.

Photos (512x512, centre-cropped square, bicubic resize; nothing is downloaded): those bundled
inside the scikit-image wheel and the two in scikit-learn's (``load_sample_image``). Grey
photos are stacked to RGB. Two sets, kept apart in every table:

- tuning set (TUNING): the only photos the fill's settings were chosen on;
- report set (REPORT): everything else, run once the settings were fixed.

Masks: MASKS_PER_PHOTO per photo, seeded by the photo's name: boxes (random place and aspect)
and brush strokes (bench/inpaint.stroke_mask), each covering 5-15% of the picture.

Scores, inside the hole only: PSNR and SSIM (bench/inpaint.hole_psnr/hole_ssim); the gradient
magnitude histogram distance and the gradient orientation histogram distance (half the L1
distance between the normalised histograms of the fill and of the original over the hole's
pixels: 0 = the same statistics, 1 = disjoint). A smooth fill scores well on PSNR/SSIM and badly
on the gradient statistics; a fill that copies texture does the opposite.

Structure (--structure): pictures with a known straight boundary crossing a box hole (two
textures meeting along a line at several angles, a thin line over a texture, and two photo
textures meeting along a line). Edge continuation = Canny edges (skimage, sigma 2) found within
2 px of the true line inside the hole, as a fraction of those the original has there.

Speed (--speed): a 10% centred box at 512, 2048 and 4096 px, each fill in a fresh subprocess
at the app's thread count (core.device.cpu_threads): wall and CPU seconds, and peak RSS
(getrusage) next to the RSS before the fill started.

Gallery (--gallery): crops around the hole, every method side by side, as a PNG
(default bench/out/inpaint_gallery.png).

Run: python bench/inpaint_photos.py [--set tuning|report|all] [--structure] [--speed]
     [--gallery [FILE.png]] [--out FILE.md] [--smoke]
(needs the dev extras: opencv-python-headless, scikit-image, scikit-learn; and git, which
supplies the earlier PatchMatch).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
from inpaint import METHODS, hole_psnr, hole_ssim, stroke_mask
from report import add_smoke, load_average, machine_line, markdown_table, text_table, timed

from core.algorithms import patchmatch
from core.device import cpu_threads, torch_threads
from core.imageio import atomic_write

SIZE = 512
SMOKE_SIZE = 128
BEFORE = "66131f2"  # the commit whose PatchMatch fill is measured as a peer
TUNING = ("astronaut", "coffee", "chelsea")
REPORT = ("rocket", "motorcycle", "china", "flower", "camera", "coins",
          "immunohistochemistry", "hubble_deep_field", "grass", "gravel", "brick")
MASKS_PER_PHOTO = 4  # two boxes, two stroke masks
SMOOTH = ("cv2 telea r5", "cv2 ns r5", "skimage biharmonic")
EASEL = "patchmatch (easel)"
EASEL_BEFORE = f"patchmatch (before, {BEFORE})"
MAG_BINS = np.array([0, 1, 2, 4, 6, 9, 13, 18, 25, 35, 50, 70, 100, 140, 200, np.inf])
ORI_BINS = 16
REPO = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- photos


def photo(name: str, n: int) -> np.ndarray:
    """A bundled photo as an n x n RGB uint8 square (centre crop, bicubic)."""
    from PIL import Image

    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        img = load_sample_image(f"{name}.jpg")
    elif name == "motorcycle":  # the left view of the stereo pair
        import skimage.data

        img = skimage.data.stereo_motorcycle()[0]
    else:
        import skimage.data

        img = getattr(skimage.data, name)()
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3]
    h, w = img.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    square = Image.fromarray(np.ascontiguousarray(img[y0:y0 + s, x0:x0 + s]))
    return np.asarray(square.resize((n, n), Image.Resampling.BICUBIC))


def _seed(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("/".join(parts).encode()).digest()[:4], "little")


def box_at(n: int, fraction: float, aspect: float, rng: np.random.Generator) -> np.ndarray:
    h = min(n - 2, round(n * (fraction * aspect) ** 0.5))
    w = min(n - 2, round(n * n * fraction / h))
    y0, x0 = rng.integers(1, n - h), rng.integers(1, n - w)
    m = np.zeros((n, n), bool)
    m[y0:y0 + h, x0:x0 + w] = True
    return m


def photo_masks(name: str, n: int) -> dict[str, np.ndarray]:
    """MASKS_PER_PHOTO masks for ``name``, each covering 5-15%: the same for every method."""
    rng = np.random.default_rng(_seed("masks", name))
    out = {}
    for k in range(MASKS_PER_PHOTO):
        frac = float(rng.uniform(0.05, 0.15))
        if k % 2 == 0:
            m = box_at(n, frac, float(rng.uniform(0.6, 1.6)), rng)
            kind = "box"
        else:
            m = stroke_mask(n, frac, seed=_seed("strokes", name, str(k)))
            kind = "strokes"
        out[f"{kind} {100 * m.mean():.0f}% #{k // 2 + 1}"] = m
    return out


# --------------------------------------------------------------------------- methods


def _before_module() -> types.ModuleType:
    """core/algorithms/patchmatch.py as it was at commit BEFORE, imported from git."""
    src = subprocess.run(["git", "show", f"{BEFORE}:core/algorithms/patchmatch.py"], cwd=REPO,
                         check=True, capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader("patchmatch_before", loader=None)
    assert spec is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    exec(compile(src, f"{BEFORE}:core/algorithms/patchmatch.py", "exec"), mod.__dict__)
    return mod


def drain(gen: object) -> np.ndarray:
    while True:
        try:
            next(gen)  # type: ignore[call-overload]
        except StopIteration as done:
            return done.value


def fill_with(module: types.ModuleType) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    def run(img: np.ndarray, hole: np.ndarray) -> np.ndarray:
        with torch_threads(cpu_threads()):
            return drain(module.fill(img, hole, rng=np.random.default_rng(0)))

    return run


def methods() -> dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    out = {EASEL: fill_with(patchmatch)}
    try:
        out[EASEL_BEFORE] = fill_with(_before_module())
    except (OSError, subprocess.CalledProcessError) as exc:  # no git, or a shallow clone
        print(f"note: the PatchMatch of {BEFORE} is not measured ({exc})", flush=True)
    return {**out, **{k: v for k, v in METHODS.items() if k in SMOOTH}}


# --------------------------------------------------------------------------- scores


def grey(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def gradients(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel gradient magnitude and orientation (mod pi) of the grey image."""
    g = np.pad(grey(img), 1, mode="edge")
    gx = (g[:-2, 2:] + 2 * g[1:-1, 2:] + g[2:, 2:] - g[:-2, :-2] - 2 * g[1:-1, :-2]
          - g[2:, :-2]) / 8
    gy = (g[2:, :-2] + 2 * g[2:, 1:-1] + g[2:, 2:] - g[:-2, :-2] - 2 * g[:-2, 1:-1]
          - g[:-2, 2:]) / 8
    return np.hypot(gx, gy), np.mod(np.arctan2(gy, gx), np.pi)


def _hist_distance(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a / max(a.sum(), 1e-12), b / max(b.sum(), 1e-12)
    return 0.5 * float(np.abs(a - b).sum())


def gradient_distances(truth: np.ndarray, out: np.ndarray, hole: np.ndarray
                       ) -> tuple[float, float]:
    """(magnitude, orientation) histogram distances over the hole. Orientation histograms are
    weighted by magnitude (flat pixels have no orientation)."""
    mt, ot = gradients(truth)
    mo, oo = gradients(out)
    mag = _hist_distance(np.histogram(mt[hole], MAG_BINS)[0].astype(float),
                         np.histogram(mo[hole], MAG_BINS)[0].astype(float))
    rng = (0.0, np.pi)
    ori = _hist_distance(np.histogram(ot[hole], ORI_BINS, rng, weights=mt[hole])[0],
                         np.histogram(oo[hole], ORI_BINS, rng, weights=mo[hole])[0])
    return mag, ori


def scores(truth: np.ndarray, out: np.ndarray, hole: np.ndarray) -> dict[str, float]:
    mag, ori = gradient_distances(truth, out, hole)
    return {"psnr": hole_psnr(truth, out, hole), "ssim": hole_ssim(truth, out, hole),
            "grad_mag": mag, "grad_ori": ori}


# --------------------------------------------------------------------------- quality


def quality(names: tuple[str, ...], size: int, meths: dict, cache: Path | None
            ) -> dict[tuple[str, str, str], dict[str, float]]:
    """Every method on every photo and mask of ``names``: scores with wall and CPU seconds.
    Smooth peers' outputs are deterministic and cached in ``cache`` (keyed by the inputs)."""
    res: dict[tuple[str, str, str], dict[str, float]] = {}
    for name in names:
        img = photo(name, size)
        for mname, hole in photo_masks(name, size).items():
            for method, run in meths.items():
                key = hashlib.sha256(img.tobytes() + hole.tobytes() + method.encode()
                                     ).hexdigest()[:20]
                path = cache / f"{key}.npz" if cache and method in SMOOTH else None
                if path is not None and path.exists():
                    z = np.load(path)
                    out, wall, cpu = z["out"], float(z["wall"]), float(z["cpu"])
                else:
                    out, sample = timed(lambda run=run, img=img, hole=hole: run(img, hole))
                    wall, cpu = sample.wall, sample.cpu
                    if path is not None:
                        path.parent.mkdir(parents=True, exist_ok=True)
                        np.savez(path, out=out, wall=wall, cpu=cpu)
                if method.startswith("patchmatch") and not np.array_equal(out[~hole],
                                                                         img[~hole]):
                    raise RuntimeError(f"{method} changed pixels outside the hole on {name}")
                s = scores(img, out, hole)
                s.update(wall=wall, cpu=cpu)
                res[(name, mname, method)] = s
                OUTPUTS[(name, mname, method)] = out
                print(f"  {name:22s} {mname:18s} {method:34s} " + "  ".join(
                    f"{k} {v:.3f}" for k, v in s.items()), flush=True)
    return res


OUTPUTS: dict[tuple[str, str, str], np.ndarray] = {}


def summary_rows(res: dict, label: str, meths: list[str]) -> list[list[str]]:
    """Means over a photo set, per method, plus the targets' verdict for the new fill."""
    rows = []
    means = {}
    for m in meths:
        vals = [v for (_, _, mm), v in res.items() if mm == m]
        means[m] = {k: float(np.mean([v[k] for v in vals])) for k in vals[0]}
        mm = means[m]
        rows.append([label, m, str(len(vals)), f"{mm['psnr']:.2f}", f"{mm['ssim']:.3f}",
                     f"{mm['grad_mag']:.3f}", f"{mm['grad_ori']:.3f}", f"{mm['wall']:.2f}",
                     f"{mm['cpu']:.2f}"])
    best_psnr = max(means[m]["psnr"] for m in SMOOTH)
    best_ssim = max(means[m]["ssim"] for m in SMOOTH)
    e, b = means[EASEL], means.get(EASEL_BEFORE, {"grad_mag": np.nan, "grad_ori": np.nan})
    verdict = [f"PSNR {e['psnr']:.2f} vs {best_psnr - 0.5:.2f} needed: "
               f"{'met' if e['psnr'] >= best_psnr - 0.5 else 'NOT met'}",
               f"SSIM {e['ssim']:.3f} vs {best_ssim - 0.02:.3f}: "
               f"{'met' if e['ssim'] >= best_ssim - 0.02 else 'NOT met'}",
               f"grad mag {e['grad_mag']:.3f} vs before {b['grad_mag']:.3f}: "
               f"{'met' if e['grad_mag'] <= b['grad_mag'] else 'NOT met'}",
               f"grad ori {e['grad_ori']:.3f} vs before {b['grad_ori']:.3f}: "
               f"{'met' if e['grad_ori'] <= b['grad_ori'] else 'NOT met'}"]
    rows.append([label, "targets (easel)", "", *verdict, "", ""])
    return rows


# --------------------------------------------------------------------------- structure


def _line_case(n: int, angle: float, kind: str, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(image, hole, band, t): a straight boundary through the centre at ``angle``; ``band``
    marks the hole's pixels within 2 px of it (of either side of a thin line), ``t`` is each
    pixel's position along it."""
    y, x = np.mgrid[:n, :n].astype(np.float32)
    c = (n - 1) / 2
    nx, ny = -np.sin(angle), np.cos(angle)  # unit normal of the line
    d = (x - c) * nx + (y - c) * ny  # signed distance to the line
    noise = rng.normal(0, 1, (n, n, 3)).astype(np.float32)
    if kind == "two textures":
        a = np.array([70.0, 110, 60]) + 14 * noise
        stripes = 30 * np.sin((x * 0.9 + y * 0.3) * 0.6)[..., None]
        b = np.array([190.0, 170, 140]) + stripes + 10 * noise
        img = np.where((d > 0)[..., None], a, b)
    elif kind == "thin line":
        base = np.array([150.0, 140, 120]) + 25 * np.sin(x * 0.35)[..., None] * np.cos(
            y * 0.21)[..., None] + 10 * noise
        img = np.where((np.abs(d) < LINE_HALF)[..., None], np.array([25.0, 25, 30]), base)
    else:  # two photo textures
        g1, g2 = photo("grass", n).astype(np.float32), photo("brick", n).astype(np.float32)
        img = np.where((d > 0)[..., None], g1 * [0.7, 1.0, 0.6], g2 * [1.0, 0.75, 0.6])
    img = np.clip(img, 0, 255).astype(np.uint8)
    hole = np.zeros((n, n), bool)
    side = n // 4
    hole[n // 2 - side // 2:n // 2 + side // 2, n // 2 - side // 2:n // 2 + side // 2] = True
    half = LINE_HALF + 2.0 if kind == "thin line" else 2.0
    band = (np.abs(d) <= half) & hole
    t = (x - c) * ny - (y - c) * nx
    return img, hole, band, t, angle


LINE_HALF = 2.5  # the thin line's half width, px


def edge_continuation(truth: np.ndarray, out: np.ndarray, band: np.ndarray,
                      t: np.ndarray, angle: float) -> float:
    """How much of the line's length inside the hole has a Canny edge in the band beside it
    that runs along the line (its gradient within 22.5 degrees of the line's normal), as a
    fraction of the original's. Stray edges elsewhere or across the line do not count, and
    several edge pixels at one place along the line count once."""
    from skimage.feature import canny

    normal = np.mod(angle + np.pi / 2, np.pi)

    def covered(img: np.ndarray) -> int:
        _, ori = gradients(img)
        off = np.abs(np.mod(ori - normal + np.pi / 2, np.pi) - np.pi / 2)
        edges = canny(grey(img), sigma=2.0) & band & (off < np.pi / 8)
        return len(np.unique(np.floor(t[edges])))

    return covered(out) / max(1, covered(truth))


def structure(size: int, meths: dict) -> tuple[list[str], list[list[str]]]:
    headers = ["case", *meths]
    rows = []
    per: dict[str, list[float]] = {m: [] for m in meths}
    for kind in ("two textures", "thin line", "photo textures"):
        for deg in (0, 30, 60, 100):
            img, hole, band, t, angle = _line_case(size, np.deg2rad(deg), kind,
                                                   np.random.default_rng(deg))
            row = [f"{kind} {deg} deg"]
            for m, run in meths.items():
                out = run(img, hole)
                s = edge_continuation(img, out, band, t, angle)
                per[m].append(s)
                OUTPUTS[(f"{kind} {deg}", "line", m)] = out
                STRUCT_IMAGES[f"{kind} {deg}"] = (img, hole)
                row.append(f"{s:.2f}")
            rows.append(row)
            print("  " + "  ".join(row), flush=True)
    rows.append(["MEAN", *[f"{np.mean(v):.2f}" for v in per.values()]])
    rows.append(["MIN", *[f"{np.min(v):.2f}" for v in per.values()]])
    return headers, rows


STRUCT_IMAGES: dict[str, tuple[np.ndarray, np.ndarray]] = {}


# --------------------------------------------------------------------------- speed

_SPEED_CHILD = r"""
import json, resource, sys, time
import numpy as np
from PIL import Image
sys.path.insert(0, "bench")
from inpaint_photos import photo, drain
from core.algorithms import patchmatch
from core.device import cpu_threads
import torch
n = int(sys.argv[1])
threads = cpu_threads()
torch.set_num_threads(threads)
img = np.asarray(Image.fromarray(photo("astronaut", 512)).resize((n, n), Image.Resampling.BICUBIC))
hole = np.zeros((n, n), bool)
side = round(n * 0.1 ** 0.5)
hole[(n - side) // 2:(n - side) // 2 + side, (n - side) // 2:(n - side) // 2 + side] = True
before = resource.getrusage(resource.RUSAGE_SELF)
rss0 = before.ru_maxrss
import os
with open("/proc/self/status") as f:
    cur = [l for l in f if l.startswith("VmRSS")][0].split()[1]
t0 = time.perf_counter()
out = drain(patchmatch.fill(img, hole, rng=np.random.default_rng(0)))
wall = time.perf_counter() - t0
after = resource.getrusage(resource.RUSAGE_SELF)
cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
print(json.dumps({"n": n, "wall": wall, "cpu": cpu, "threads": threads,
                  "rss_before_mb": int(cur) / 1024, "peak_rss_mb": after.ru_maxrss / 1024,
                  "load": os.getloadavg()[0]}))
"""


def speed(sizes: tuple[int, ...]) -> tuple[list[str], list[list[str]]]:
    headers = ["size", "hole px", "threads", "seconds", "CPU s", "RSS before MB",
               "peak RSS MB", "load avg", "target"]
    targets = {512: "<= 1 s", 2048: "<= 5 s", 4096: "<= 20 s, <= 1024 MB"}
    rows = []
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for n in sizes:
        p = subprocess.run([sys.executable, "-c", _SPEED_CHILD, str(n)], cwd=REPO, env=env,
                           capture_output=True, text=True, check=True)
        r = json.loads(p.stdout.strip().splitlines()[-1])
        side = round(n * 0.1 ** 0.5)
        rows.append([f"{n}x{n}", str(side * side), str(r["threads"]), f"{r['wall']:.2f}",
                     f"{r['cpu']:.2f}", f"{r['rss_before_mb']:.0f}", f"{r['peak_rss_mb']:.0f}",
                     f"{r['load']:.2f}", targets.get(n, "")])
        print("  " + "  ".join(rows[-1]), flush=True)
    return headers, rows


# --------------------------------------------------------------------------- gallery


def _crop_box(hole: np.ndarray, pad: int = 24) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(hole)
    h, w = hole.shape
    y0, y1 = max(0, ys.min() - pad), min(h, ys.max() + pad + 1)
    x0, x1 = max(0, xs.min() - pad), min(w, xs.max() + pad + 1)
    return y0, y1, x0, x1


def gallery(cases: list[tuple[str, str, np.ndarray, np.ndarray]], meths: list[str],
            side: int = 200) -> bytes:
    """One row per case: the original with its hole outlined, then every method's fill,
    cropped around the hole and scaled to ``side`` px."""
    import io

    from PIL import Image, ImageDraw

    cap = 14
    cols = ["original (hole outlined)", *meths]
    sheet = Image.new("RGB", (len(cols) * (side + 4), cap + len(cases) * (side + cap + 4)),
                      "white")
    draw = ImageDraw.Draw(sheet)
    for j, c in enumerate(cols):
        draw.text((j * (side + 4) + 2, 1), c[:34], fill="black")
    for i, (name, mname, img, hole) in enumerate(cases):
        y0, y1, x0, x1 = _crop_box(hole)
        top = cap + i * (side + cap + 4)
        draw.text((2, top), f"{name}, {mname}", fill="black")
        edge = hole ^ (np.pad(hole, 1)[2:, 1:-1] & np.pad(hole, 1)[:-2, 1:-1]
                       & np.pad(hole, 1)[1:-1, 2:] & np.pad(hole, 1)[1:-1, :-2])
        marked = img.copy()
        marked[edge] = (255, 0, 255)
        for j, m in enumerate(cols):
            src = marked if j == 0 else OUTPUTS[(name, mname, m)]
            tile = Image.fromarray(np.ascontiguousarray(src[y0:y1, x0:x1]))
            scale = side / max(tile.size)
            tile = tile.resize((max(1, round(tile.size[0] * scale)),
                                max(1, round(tile.size[1] * scale))),
                               Image.Resampling.LANCZOS if scale < 1 else
                               Image.Resampling.NEAREST)
            sheet.paste(tile, (j * (side + 4), top + cap))
    buf = io.BytesIO()
    sheet.save(buf, "PNG")
    return buf.getvalue()


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", choices=("tuning", "report", "all", "none"), default="all")
    ap.add_argument("--structure", action="store_true", help="the straight-boundary cases")
    ap.add_argument("--speed", action="store_true", help="10%% box at 512, 2048, 4096 px")
    ap.add_argument("--gallery", nargs="?", type=Path, const=REPO / "bench" / "out" /
                    "inpaint_gallery.png", default=None)
    ap.add_argument("--cache", type=Path, default=REPO / "bench" / "out" / "inpaint_cache",
                    help="where the smooth peers' fills are kept between runs")
    ap.add_argument("--out", type=Path, help="also write the tables as markdown to this file")
    add_smoke(ap)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(cpu_threads())
    size = SMOKE_SIZE if args.smoke else SIZE
    header = (f"# Object removal on photos ({size}x{size})\n{machine_line()} at start; "
              "seconds are wall, CPU seconds this process's (all threads)")
    print(header, flush=True)
    md = [header]
    meths = methods()
    sets = {"tuning": TUNING, "report": REPORT}
    chosen = {"tuning": ("tuning",), "report": ("report",), "all": ("tuning", "report"),
              "none": ()}[args.set]
    if args.smoke:
        sets = {"tuning": TUNING[:1], "report": REPORT[:1]}
    q_headers = ["set", "method", "fills", "hole PSNR dB", "hole SSIM", "grad mag dist",
                 "grad ori dist", "seconds", "CPU s"]
    q_rows: list[list[str]] = []
    t0 = load_average()
    per_photo: list[list[str]] = []
    for label in chosen:
        res = quality(sets[label], size, meths, None if args.smoke else args.cache)
        q_rows += summary_rows(res, f"{label} ({', '.join(sets[label])})"
                               if label == "tuning" else f"{label} ({len(sets[label])} photos)",
                               list(meths))
        for name in sets[label]:
            for m in meths:
                vals = [v for (p, _, mm), v in res.items() if p == name and mm == m]
                per_photo.append([label, name, m, f"{np.mean([v['psnr'] for v in vals]):.2f}",
                                  f"{np.mean([v['ssim'] for v in vals]):.3f}",
                                  f"{np.mean([v['grad_mag'] for v in vals]):.3f}",
                                  f"{np.mean([v['grad_ori'] for v in vals]):.3f}"])
    if q_rows:
        q_rows.append(["load average", f"{t0:.2f} at start, {load_average():.2f} at end",
                       "", "", "", "", "", "", ""])
        print("\n## Photos: means over every mask\n")
        print(text_table(q_headers, q_rows, left=2))
        p_headers = ["set", "photo", "method", "PSNR", "SSIM", "grad mag", "grad ori"]
        md += ["## Photos: means over every mask", markdown_table(q_headers, q_rows, left=2),
               "## Per photo", markdown_table(p_headers, per_photo, left=3)]
    if args.structure:
        print("\n## Structure: edge continuation (1 = as many edge pixels on the line as the "
              "original)\n")
        s_headers, s_rows = structure(SMOKE_SIZE if args.smoke else 256, meths)
        print(text_table(s_headers, s_rows))
        md += ["## Structure: edge continuation", markdown_table(s_headers, s_rows)]
    if args.speed:
        print("\n## Speed: 10% centred box, fresh process, the app's thread count\n")
        sp_headers, sp_rows = speed((SMOKE_SIZE,) if args.smoke else (512, 2048, 4096))
        print(text_table(sp_headers, sp_rows))
        md += ["## Speed: 10% centred box", markdown_table(sp_headers, sp_rows),
               "Wall seconds on a machine shared with trainings: see the load average."]
    if args.gallery:
        cases = []
        for label in chosen:
            for name in sets[label][:3] if label == "tuning" else sets[label][:5]:
                masks = photo_masks(name, size)
                for mname in list(masks)[:2]:
                    cases.append((name, mname, photo(name, size), masks[mname]))
        if args.structure:
            for key, (img, hole) in list(STRUCT_IMAGES.items())[::3]:
                cases.append((key, "line", img, hole))
        png = gallery(cases, list(meths))
        args.gallery.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(args.gallery, png)
        print(f"\nwrote {args.gallery}")
        md.append(f"Gallery: {args.gallery}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(args.out, ("\n\n".join(md) + "\n").encode("utf-8"))
        print(f"wrote {args.out}")
    _ = time
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
