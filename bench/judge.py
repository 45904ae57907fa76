"""What the judge sees, measured: adversarial examples, feature inversion and dreams on the
shipped faces judge, through the same jobs the panel and `easel judge` run.

- Fool: on held-out faces (100 in the full run), each binary attribute (smiling, glasses,
  beard, hat) is attacked, untargeted, within L-infinity 8/255 by PGD (40 steps) and FGSM: the
  share whose reading flips (target >= 90% for PGD), the L-infinity actually needed and the
  PSNR. Transfer: the same adversarial pictures read by the second faces reader
  (bench/faces_reader.py: another architecture, trained on seeds no split of the world uses,
  never used to train, select or steer anything); the share of the judge's flips that the
  reader also reads flipped (target <= 30%). PGD's flips by what the judge read first, and the
  misses tried again within 16/255. Control: random-sign noise of the same L-infinity
  as each adversarial perturbation, read by the judge (the direction is what fools it, not the
  size).
- Inversion: per layer, PSNR of the picture rebuilt from the layer's features (200 steps, from
  noise) against the picture as the judge reads it (it should fall with depth); the share of
  attributes the judge reads alike on the original and the inverted picture, and the same
  share for the second reader (what the judge keeps is read by the judge; another reader sees
  how much of the picture itself came back).
- Dream: per class amplified (glasses, hat, beard, smiling), on faces that do not have it,
  the judge's probability of the class before and after (20 steps x 3 octaves at 64 px), the
  change's size (L-infinity, mean, PSNR), and the second reader's reading of the class before
  and after; from grey too.
- Time: wall and CPU seconds per job (median), with the load average.

Run: python bench/judge.py [--smoke] [--quick] [--n N] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

import faces_reader
import numpy as np
from report import Sample, add_smoke, emit, load_range, machine_line, markdown_table, timed

from core.evaluation.common import held_out_renders
from core.jobs import Context, ImageRef, Result, run_job
from core.pipelines.judge import JudgeDreamSpec, JudgeFoolSpec, JudgeInvertSpec
from core.weights import ModelCache

BINARY = ("smiling", "glasses", "beard", "hat")
DREAM = {"glasses": "glasses", "hat": "hat", "beard": "beard", "smiling": "smiling"}
LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "conv6", "conv7", "conv8", "conv9",
          "pooled")
OFFSET = 7000  # held-out seeds from here: apart from the evaluations' first ones
BUDGET = 8.0  # L-infinity, in 1/255


class Runner:
    """Jobs through core.jobs.run_job with one warm model cache; times each one."""

    def __init__(self) -> None:
        self.cache = ModelCache()
        self.times: dict[str, list[Sample]] = {}

    def __call__(self, spec: Any) -> Result:
        result, sample = timed(lambda: run_job(spec, Context.for_spec(spec, device="cpu",
                                                                       models=self.cache)))
        self.times.setdefault(spec.kind.removeprefix("judge_"), []).append(sample)
        return result


def pct(v: float) -> str:
    return "n/a" if np.isnan(v) else f"{100 * v:.1f}%"


def mean(values: list[Any]) -> float:
    return float(np.mean(values)) if values else float("nan")


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def fool(run: Runner, reader: Any, faces: list[Any], steps: int) -> list[list[str]]:
    rows = []
    rng = np.random.default_rng(0)
    before = faces_reader.read(reader, np.stack([f.image for f in faces]))
    for method in ("pgd", "fgsm"):
        flips, linf, psnr, transfer, noise = [], [], [], [], []
        by_way: dict[str, list[bool]] = {}  # "hat -> none": flipped or not
        missed = []
        for attr in BINARY:
            for i, face in enumerate(faces):
                spec = JudgeFoolSpec(image=ImageRef.of(face.image), attribute=attr,
                                     budget=BUDGET, method=method, steps=steps)
                result = run(spec)
                info, adv = result.info, result.images[0]
                flips.append(info["flipped"])
                way = f"{attr}: {info['read_before']} -> other"
                by_way.setdefault(way, []).append(info["flipped"])
                if not info["flipped"]:
                    missed.append(spec)
                    continue
                linf.append(info["linf_255"])
                psnr.append(info["psnr"])
                transfer.append(faces_reader.read(reader, adv[None])[0][attr] != before[i][attr])
                d = info["linf_255"] * rng.choice([-1, 1], size=face.image.shape)
                shaken = np.clip(face.image.astype(int) + d, 0, 255).astype(np.uint8)
                noise.append(read_judge(run, shaken, attr) != info["read_before"])
        name = method.upper()
        rows.append([f"fool, {name}: flipped within {BUDGET:g}/255"
                     + (" (target >= 90%)" if method == "pgd" else ""),
                     f"{pct(mean(flips))} of {len(flips)}",
                     f"random-sign noise of the same L-inf flips {pct(mean(noise))}"])
        rows.append([f"fool, {name}: L-inf needed, median (max) /255; PSNR median",
                     f"{median(linf):g} ({max(linf, default=float('nan')):g}); "
                     f"{median(psnr):.1f} dB", ""])
        rows.append([f"fool, {name}: transfer to the second reader"
                     + (" (target <= 30%)" if method == "pgd" else ""),
                     f"{pct(mean(transfer))} of {len(transfer)} flips", ""])
        if method == "pgd":
            rows.append([f"fool, {name}: flipped within {BUDGET:g}/255 by what the judge read",
                         "; ".join(f"{w} {pct(mean(v))} of {len(v)}"
                                   for w, v in sorted(by_way.items())), ""])
            again = [run(spec.replace(budget=2 * BUDGET)).info["flipped"] for spec in missed]
            rows.append([f"fool, {name}: of those not flipped within {BUDGET:g}/255, flipped "
                         f"within {2 * BUDGET:g}/255", f"{sum(again)} of {len(again)}", ""])
    return rows


def read_judge(run: Runner, image: np.ndarray, attr: str) -> str:
    from core.judges import load_judge, read_faces

    judge = load_judge("faces", "cpu", run.cache)
    return read_faces(judge, image[None])[0][attr]


def invert(run: Runner, reader: Any, faces: list[Any], layers: tuple[str, ...], steps: int
           ) -> list[list[str]]:
    rows = []
    for layer in layers:
        psnr, judge_agree, reader_agree = [], [], []
        for face in faces:
            result = run(JudgeInvertSpec(image=ImageRef.of(face.image), layer=layer,
                                         steps=steps))
            out, seen = result.images
            psnr.append(result.info["psnr"])
            judge_agree.append(result.info["agreement"])
            a, b = faces_reader.read(reader, np.stack([seen, out]))
            reader_agree.append(mean([a[k] == b[k] for k in a]))
        rows.append([f"invert {layer}: PSNR dB (mean); attributes read alike, judge / "
                     "second reader", f"{mean(psnr):.1f}",
                     f"{pct(mean(judge_agree))} / {pct(mean(reader_agree))}"])
    return rows


def dream(run: Runner, reader: Any, faces: list[Any], classes: dict[str, str], steps: int
          ) -> list[list[str]]:
    rows = []
    for start in ("picture", "grey"):
        for attr, cls in classes.items():
            p0, p1, linf, change, psnr, r0, r1 = [], [], [], [], [], [], []
            # pictures the world labels otherwise: the class is to be drawn in, not there already
            without = [f for f in faces if f.labels[attr] != cls]
            for face in without[:1 if start == "grey" else max(1, len(faces) // 4)]:
                result = run(JudgeDreamSpec(image=ImageRef.of(face.image),
                                            attribute=f"{attr}={cls}", steps=steps,
                                            start=start))
                info = result.info
                p0.append(info["probability_before"])
                p1.append(info["probability_after"])
                linf.append(info["linf_255"])
                change.append(info["mean_change_255"])
                psnr.append(info["psnr"])
                grey = np.full_like(face.image, 128)
                a, b = faces_reader.read(reader, np.stack(
                    [face.image if start == "picture" else grey, result.images[0]]))
                r0.append(a[attr] == cls)
                r1.append(b[attr] == cls)
            rows.append([f"dream {attr}={cls} from {start}: judge P before -> after; change "
                         "L-inf / mean /255, PSNR",
                         f"{mean(p0):.3f} -> {mean(p1):.3f}; {mean(linf):.0f} / "
                         f"{mean(change):.1f}, {mean(psnr):.1f} dB",
                         f"second reader reads {cls}: {pct(mean(r0))} -> {pct(mean(r1))}"])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20 faces, fewer layers")
    add_smoke(ap)
    ap.add_argument("--n", type=int, default=None, help="held-out faces attacked")
    ap.add_argument("--out", default=None, help="also write the table as markdown here")
    args = ap.parse_args()
    # faces attacked, faces inverted, faces dreamed, layers, inversion steps, dream steps
    n, n_inv, n_dream, layers, inv_steps, dream_steps, pgd_steps = (
        (2, 1, 1, ("conv1", "conv9"), 10, 3, 10) if args.smoke else
        (20, 3, 5, ("conv1", "conv3", "conv5", "conv7", "conv9", "pooled"), 200, 20, 40)
        if args.quick else (100, 10, 20, LAYERS, 200, 20, 40))
    n = args.n or n
    import torch

    torch.set_num_threads(1)
    faces = held_out_renders("faces", max(n, n_inv, 4 * n_dream), 64, OFFSET)
    reader = faces_reader.load_reader()
    run = Runner()
    rows = fool(run, reader, faces[:n], pgd_steps)
    rows += invert(run, reader, faces[:n_inv], layers, inv_steps)
    rows += dream(run, reader, faces[:4 * n_dream], DREAM if not args.smoke else
                  {"glasses": "glasses"}, dream_steps)
    for mode, samples in run.times.items():
        rows.append([f"time per {mode} job, median wall s (CPU s, jobs)",
                     f"{statistics.median(s.wall for s in samples):.2f} (CPU "
                     f"{statistics.median(s.cpu for s in samples):.2f}, {len(samples)})",
                     f"load average {load_range(samples)}"])
    mode = " (smoke: figures mean nothing)" if args.smoke else " (quick)" if args.quick else ""
    head = (f"Judge benchmark{mode}: {machine_line()}; judge_faces, second reader "
            f"bench/readers/faces_reader; {n} held-out faces attacked, {n_inv} inverted per "
            f"layer, {n_dream} dreamed; times are wall (CPU: this process)")
    emit("\n".join([head, "", markdown_table(["figure", "value", "peer / control"], rows)]),
         args.out)


if __name__ == "__main__":
    main()
