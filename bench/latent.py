"""Latent benchmark: the faces VAE and DCGAN against pixel arithmetic, in one table.

- Arithmetic accuracy: 500 triples per attribute, A - B + C with slots the mean of 3 latents,
  judged by the faces judge (core/evaluation/latent.py); peer: the same sums on the rendered
  images' pixels. The same pictures again, read by the second reader (bench/faces_reader.py,
  a classifier of another architecture trained on other seeds, which never trains, selects or
  steers anything): the result read as A's class, and C's other attributes kept (the result
  read like the C slot alone; mean and worst over the other attributes).
- Direction edits: flipped share and the worst kept share of the other attributes, for
  difference-of-means and classifier-normal directions, at amount 1 (one class gap, where the
  targets are) and 2 class gaps (the end of the panel's sliders).
- Sample quality: FJD of 2000 samples against 2000 held-out renders; floor: FJD between two
  disjoint sets of 2000 held-out renders. Precision and recall (k = 3, Kynkaanniemi et al.
  2019) of 5000 samples against 5000 held-out renders in the second reader's penultimate
  features; world against world (two disjoint sets of held-out renders) beside them; and
  again with the truncation trick at PSI 0.7 (precision should rise and recall fall).
- Latency on this machine: a slider change (compose + 2 directions + decode + x4 upscale to
  256 px) and a grid of 16 samples, median of repeated warm runs through core.jobs.run_job.

Run: python bench/latent.py [--smoke] [--quick] [--out FILE.md] [--vae NAME] [--dcgan NAME]
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

import faces_reader
import numpy as np
import torch
from report import Sample, add_smoke, emit, interleaved, load_range, machine_line, seconds_cell

from core.evaluation import latent as ev
from core.evaluation.common import FJD_REAL_OFFSET, held_out_renders
from core.evaluation.metrics import fjd_from_features, precision_recall
from core.jobs import Context, run_job
from core.judges import features, load_judge, read_faces
from core.pipelines.latent import (
    LatentEditSpec,
    LatentSampleSpec,
    attribute_directions,
    model_directions,
    open_model,
    resolve,
    truncate,
)
from core.weights import ModelCache

DECODE = 500  # samples decoded at once (memory)
TRUNCATION = 0.7  # the truncation trick's PSI whose precision and recall are shown beside 1


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
    # triples/edits per attribute, FJD samples, precision/recall samples, timing repeats,
    # labelled pool (None: the evaluation's own defaults)
    n, fjd_n, pr_n, repeats, pool = ((4, 16, 16, 1, 120) if args.smoke else
                                     (60, 200, 200, 5, None) if args.quick else
                                     (500, 2000, 5000, 50, None))
    pool_kw = {} if pool is None else {"pool": pool}

    models = {"VAE": open_model(resolve(args.vae)), "DCGAN": open_model(resolve(args.dcgan))}
    judge, reader = load_judge("faces"), faces_reader.load_reader()
    rows: list[list[str]] = []
    columns = ("VAE", "DCGAN", "pixels (peer)")
    # (models.get: None for the pixel peer)
    sums = {label: ev.arithmetic_sums(models.get(label), n, **pool_kw) for label in columns}
    arith = {k: ev.arithmetic_scores(s, lambda im: read_faces(judge, im)) for k, s in sums.items()}
    second = {k: ev.arithmetic_scores(s, lambda im: faces_reader.read(reader, im))
              for k, s in sums.items()}
    for attr in ev.ARITHMETIC:
        rows.append([f"arithmetic: {attr} (target >= 90%)",
                     *(fmt(arith[k][attr]["target"]) for k in columns)])
    for attr in ev.ARITHMETIC:
        rows.append([f"arithmetic, second reader: {attr}; C's others kept, mean / worst "
                     "(>= 90%; >= 90%)",
                     *(f"{fmt(r['target'])}; kept {fmt(r['kept_mean'])} / "
                       f"{fmt(r['kept_min'])} {r['kept_worst']}".rstrip()
                       for r in (second[k][attr] for k in columns))])
    # Computed once per model (both kinds of direction come from the same labelled latents).
    found = {label: attribute_directions(m, pool) for label, m in models.items()}
    for amount in (1.0, ev.EDIT_AMOUNT):  # the targets are for amount 1 (one class gap)
        for method in ("mean", "classifier"):
            edits = {label: ev.direction_edits(m, n, amount=amount, method=method,
                                               found=found[label])
                     for label, m in models.items()}
            goal = " (>= 90% / >= 95%)" if amount == 1.0 else ""
            for attr in ev.ARITHMETIC:
                cells = [f"{fmt(e[attr]['flipped'])} flipped, {fmt(e[attr]['kept_min'])} kept"
                         for e in (edits["VAE"], edits["DCGAN"])]
                rows.append([f"edit ({method}, amount {amount:g}): {attr}{goal}", *cells, ""])

    count = max(fjd_n, pr_n)
    real, world = (np.stack([s.image for s in held_out_renders("faces", count, 64, offset)])
                   for offset in (FJD_REAL_OFFSET, 0))
    real_f = features(judge, real[:fjd_n])
    floor = fjd_from_features(features(judge, world[:fjd_n]), real_f)
    real_r = faces_reader.features(reader, real[:pr_n])
    pr = {"world": precision_recall(real_r, faces_reader.features(reader, world[:pr_n]))}
    fjd = {}
    for label, m in models.items():  # the grid's samples (a VAE's fitted Gaussian)
        z = torch.randn(count, m.dim, generator=torch.Generator().manual_seed(0)).double()
        fitted = model_directions(m, compute=True)
        z = fitted.sample_fit(z.numpy()) if fitted.fit_mean is not None else z.numpy()
        for psi in (1.0, TRUNCATION):  # the panel's variety <-> fidelity, off and at 0.7
            pulled = truncate(m, z, psi, Context.for_spec(LatentSampleSpec(model=m.name)))
            samples = np.concatenate([m.decode(pulled[i:i + DECODE])
                                      for i in range(0, count, DECODE)])
            key = label if psi == 1.0 else (label, psi)
            if psi == 1.0:
                fjd[label] = fjd_from_features(features(judge, samples[:fjd_n]), real_f)
            pr[key] = precision_recall(real_r, faces_reader.features(reader, samples[:pr_n]))
    rows.append([f"sample FJD, {fjd_n} grid samples vs held-out renders (lower is better)",
                 f"{fjd['VAE']:.2f}", f"{fjd['DCGAN']:.2f}", f"real vs real {floor:.2f}"])
    rows.append([f"precision / recall, k = 3, second reader, {pr_n} grid samples vs "
                 f"{pr_n} held-out renders (>= 0.80 / >= 0.60)",
                 *(f"{pr[k]['precision']:.2f} / {pr[k]['recall']:.2f}" for k in models),
                 f"world vs world {pr['world']['precision']:.2f} / "
                 f"{pr['world']['recall']:.2f}"])
    rows.append([f"the same at truncation {TRUNCATION:g} (precision up, recall down)",
                 *(f"{pr[(k, TRUNCATION)]['precision']:.2f} / "
                   f"{pr[(k, TRUNCATION)]['recall']:.2f}" for k in models), ""])
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
