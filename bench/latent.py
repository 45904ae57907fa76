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

Run: python bench/latent.py [--smoke] [--quick] [--out FILE.md] [--vae NAME] [--dcgan NAME]
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from report import Sample, add_smoke, emit, interleaved, load_range, machine_line, seconds_cell

from core.evaluation import latent as ev
from core.evaluation.common import FJD_REAL_OFFSET, held_out_renders
from core.evaluation.metrics import fjd_from_features
from core.jobs import Context, run_job
from core.judges import features, load_judge
from core.pipelines.latent import (
    LatentEditSpec,
    LatentSampleSpec,
    attribute_directions,
    model_directions,
    open_model,
    resolve,
)
from core.weights import ModelCache


def latency_peers(name: str) -> dict[str, Callable[[int], None]]:
    """A slider change and a 16-sample grid of model ``name`` as report.interleaved peers,
    through the real job with a warm model cache."""
    cache = ModelCache()
    model = open_model(resolve(name), "cpu", cache)
    z = torch.randn(3, model.dim, generator=torch.Generator().manual_seed(0)).double().tolist()
    one, two = model_directions(model, compute=True).names()[:2]
    edit = LatentEditSpec(model=name, a=(z[0],), b=(z[1],), c=(z[2],), upscale=True)
    grid = LatentSampleSpec(model=name, count=16)

    def run(spec: Any) -> None:
        run_job(spec, Context.for_spec(spec, device="cpu", models=cache))

    return {"slider": lambda r: run(edit.replace(directions=((one, 0.05 * r), (two, 0.5)))),
            "grid": lambda r: run(grid.replace(seed=r + 1))}


def fmt(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{100 * v:.1f}%"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small counts, a few minutes")
    add_smoke(ap)
    ap.add_argument("--out", default=None, help="also write the table as markdown here")
    ap.add_argument("--vae", default="vae_faces")
    ap.add_argument("--dcgan", default="dcgan_faces")
    args = ap.parse_args()
    # triples/edits per attribute, FJD samples, timing repeats, labelled pool (None: the
    # evaluation's own defaults)
    n, fjd_n, repeats, pool = ((4, 16, 1, 120) if args.smoke else (60, 200, 5, None)
                               if args.quick else (500, 2000, 50, None))
    pool_kw = {} if pool is None else {"pool": pool}

    models = {"VAE": open_model(resolve(args.vae)), "DCGAN": open_model(resolve(args.dcgan))}
    rows: list[list[str]] = []
    arith = {label: ev.arithmetic_accuracy(m, n, **pool_kw) for label, m in models.items()}
    arith["pixels (peer)"] = ev.arithmetic_accuracy(None, n, **pool_kw)
    for attr in ev.ARITHMETIC:
        rows.append([f"arithmetic: {attr} (target >= 90%)",
                     *(fmt(arith[k][attr]) for k in ("VAE", "DCGAN", "pixels (peer)"))])
    # Computed once per model (both kinds of direction come from the same labelled latents).
    found = {label: attribute_directions(m, pool) for label, m in models.items()}
    for method in ("mean", "classifier"):
        edits = {label: ev.direction_edits(m, n, method=method, found=found[label])
                 for label, m in models.items()}
        for attr in ev.ARITHMETIC:
            cells = [f"{fmt(e[attr]['flipped'])} flipped, {fmt(e[attr]['kept_min'])} kept"
                     for e in (edits["VAE"], edits["DCGAN"])]
            rows.append([f"edit ({method}): {attr} (>= 90% / >= 95%)", *cells, ""])

    judge = load_judge("faces")
    real = features(judge, np.stack([s.image for s in held_out_renders("faces", fjd_n, 64,
                                                                 FJD_REAL_OFFSET)]))
    floor = fjd_from_features(
        features(judge, np.stack([s.image for s in held_out_renders("faces", fjd_n, 64)])), real)
    fjd = {}
    for label, m in models.items():  # the grid's samples (a VAE's fitted Gaussian)
        z = torch.randn(fjd_n, m.dim, generator=torch.Generator().manual_seed(0)).double()
        fitted = model_directions(m, compute=True)
        z = fitted.sample_fit(z.numpy()) if fitted.fit_mean is not None else z.numpy()
        fjd[label] = fjd_from_features(features(judge, m.decode(z)), real)
    rows.append([f"sample FJD, {fjd_n} grid samples vs held-out renders (lower is better)",
                 f"{fjd['VAE']:.2f}", f"{fjd['DCGAN']:.2f}", f"real vs real {floor:.2f}"])
    # Both models' slider changes and grids interleaved and repeated (report.interleaved).
    peers = {(label, kind): fn for label, m in models.items()
             for kind, fn in latency_peers(m.name).items()}
    lat: dict[tuple[str, str], list[Sample]] = interleaved(peers, repeats)  # type: ignore[arg-type]
    rows.append(["slider change -> 256 px image, median ms (target < 40)",
                 seconds_cell(lat[("VAE", "slider")], 1000, 1),
                 seconds_cell(lat[("DCGAN", "slider")], 1000, 1), ""])
    rows.append(["grid of 16 samples, median ms (target < 150)",
                 seconds_cell(lat[("VAE", "grid")], 1000, 1),
                 seconds_cell(lat[("DCGAN", "grid")], 1000, 1), ""])

    mode = " (smoke: figures mean nothing)" if args.smoke else " (quick)" if args.quick else ""
    head = (f"Latent benchmark{mode}: {machine_line()}; load average over the timed runs "
            f"{load_range([s for v in lat.values() for s in v])}; models {args.vae}, "
            f"{args.dcgan}; times are wall (CPU: this process, all threads)")
    lines = [head, "", "| figure | VAE | DCGAN | peer / floor |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    text = "\n".join(lines)
    emit(text, args.out)


if __name__ == "__main__":
    main()
