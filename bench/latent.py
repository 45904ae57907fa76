"""Latent benchmark: the faces VAE and DCGAN against pixel arithmetic, in one table.

- Arithmetic accuracy: 500 triples per attribute, A - B + C with slots the mean of 3 latents,
  judged by the faces judge (core/evaluation/latent.py); peer: the same sums on the rendered
  images' pixels.
- Direction edits: flipped share and the worst kept share of the other attributes, for
  difference-of-means and classifier-normal directions, amount 2 class gaps (the end of
  the panel's sliders).
- Sample quality: FJD of 2000 samples against 2000 held-out renders; floor: FJD between two
  disjoint sets of 2000 held-out renders.
- Latency on this machine: a slider change (compose + 2 directions + decode + x4 upscale to
  256 px) and a grid of 16 samples, median of repeated warm runs through core.jobs.run_job.

Run: python bench/latent.py [--quick] [--out FILE.md] [--vae NAME] [--dcgan NAME]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from typing import Any

import numpy as np
import torch
from report import emit

from core.evaluation import latent as ev
from core.evaluation.evaluate import FJD_REAL_OFFSET, _render
from core.evaluation.judges import features, load_judge
from core.evaluation.metrics import fjd_from_features
from core.jobs import Context, run_job
from core.pipelines.latent import (
    LatentEditSpec,
    LatentSampleSpec,
    model_directions,
    open_model,
    resolve,
)
from core.weights import ModelCache


def latency(name: str, repeats: int) -> tuple[float, float]:
    """Median ms of a slider change and of a 16-sample grid, warm model cache."""
    cache = ModelCache()
    model = open_model(resolve(name), "cpu", cache)
    z = torch.randn(3, model.dim, generator=torch.Generator().manual_seed(0)).double().tolist()

    def timed(spec: Any) -> float:
        ctx = Context.for_spec(spec, device="cpu", models=cache)
        t0 = time.perf_counter()
        run_job(spec, ctx)
        return (time.perf_counter() - t0) * 1000

    one, two = model_directions(model, compute=True).names()[:2]
    edit = LatentEditSpec(model=name, a=(z[0],), b=(z[1],), c=(z[2],), upscale=True)
    timed(edit.replace(directions=((one, 1.0),)))  # warm: directions, upscaler
    slider = [timed(edit.replace(directions=((one, 0.05 * i), (two, 0.5))))
              for i in range(repeats)]
    grid = LatentSampleSpec(model=name, count=16)
    timed(grid)
    grids = [timed(grid.replace(seed=i)) for i in range(repeats)]
    return statistics.median(slider), statistics.median(grids)


def fmt(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{100 * v:.1f}%"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    ap.add_argument("--out", default=None, help="also write the table as markdown here")
    ap.add_argument("--vae", default="vae_faces")
    ap.add_argument("--dcgan", default="dcgan_faces")
    args = ap.parse_args()
    n, fjd_n, repeats = (60, 200, 5) if args.quick else (500, 2000, 50)

    models = {"VAE": open_model(resolve(args.vae)), "DCGAN": open_model(resolve(args.dcgan))}
    rows: list[list[str]] = []
    arith = {label: ev.arithmetic_accuracy(m, n) for label, m in models.items()}
    arith["pixels (peer)"] = ev.arithmetic_accuracy(None, n)
    for attr in ev.ARITHMETIC:
        rows.append([f"arithmetic: {attr} (target >= 90%)",
                     *(fmt(arith[k][attr]) for k in ("VAE", "DCGAN", "pixels (peer)"))])
    for method in ("mean", "classifier"):
        edits = {label: ev.direction_edits(m, n, method=method) for label, m in models.items()}
        for attr in ev.ARITHMETIC:
            cells = [f"{fmt(e[attr]['flipped'])} flipped, {fmt(e[attr]['kept_min'])} kept"
                     for e in (edits["VAE"], edits["DCGAN"])]
            rows.append([f"edit ({method}): {attr} (>= 90% / >= 95%)", *cells, ""])

    judge = load_judge("faces")
    real = features(judge, np.stack([s.image for s in _render("faces", fjd_n, 64,
                                                                 FJD_REAL_OFFSET)]))
    floor = fjd_from_features(
        features(judge, np.stack([s.image for s in _render("faces", fjd_n, 64)])), real)
    fjd = {}
    for label, m in models.items():  # the grid's samples (a VAE's fitted Gaussian)
        z = torch.randn(fjd_n, m.dim, generator=torch.Generator().manual_seed(0)).double()
        fitted = model_directions(m, compute=True)
        z = fitted.sample_fit(z.numpy()) if fitted.fit_mean is not None else z.numpy()
        fjd[label] = fjd_from_features(features(judge, m.decode(z)), real)
    rows.append([f"sample FJD, {fjd_n} grid samples vs held-out renders (lower is better)",
                 f"{fjd['VAE']:.2f}", f"{fjd['DCGAN']:.2f}", f"real vs real {floor:.2f}"])
    lat = {label: latency(m.name, repeats) for label, m in models.items()}
    rows.append(["slider change -> 256 px image, median ms (target < 40)",
                 f"{lat['VAE'][0]:.1f}", f"{lat['DCGAN'][0]:.1f}", ""])
    rows.append(["grid of 16 samples, median ms (target < 150)",
                 f"{lat['VAE'][1]:.1f}", f"{lat['DCGAN'][1]:.1f}", ""])

    head = (f"Latent benchmark{' (quick)' if args.quick else ''}: {platform.machine()}, "
            f"{os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} "
            f"threads, load average {os.getloadavg()[0]:.2f}; models {args.vae}, {args.dcgan}")
    lines = [head, "", "| figure | VAE | DCGAN | peer / floor |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    text = "\n".join(lines)
    emit(text, args.out)


if __name__ == "__main__":
    main()
