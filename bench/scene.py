"""Scene benchmark: prompt faithfulness, compositional generalisation, quality and speed.

- Prompt faithfulness, read twice from the same pictures: by the GenEval-style checker over
  the learned judge (core/evaluation/geneval.py) and by the analytic reader
  (bench/scene_reader.py: palette, connected components, box centres, outline geometry; no
  learned part), exact matches without and with shape. 100 held-out prompts per category and
  100 held-out world captions that name a background, best-of-N with N = 1 (the first sample)
  and N = 8 (the reranker's pick). Ceiling: true renders of the same prompts' layouts; floor:
  the same prior sampling without the text (guidance 0, the unconditional model). Also: how
  often asked-for stars are drawn as stars, and the README's example prompt over 8 samples.
- Compositional generalisation: prompts that ask for the colour/shape pairs held out of
  training (green triangle, purple star), against the same templates with pairs it saw.
- Quality: FJD of samples for held-out captions against held-out renders (real vs real as the
  floor, the VQ-VAE's own reconstructions as the best any prior over its codes can reach);
  VQ reconstruction PSNR and codebook perplexity.
- Speed on this machine, through the real job (core.jobs.run_job, warm model cache): one 64 px
  candidate; eight candidates reranked and upscaled to 256 px; and, as the peer of the
  key/value cache, one candidate sampled by re-running the whole sequence for every code. Beside
  the warm eight, the cold ``easel scene`` (a new process per run, imports and loading included).

``--model`` takes a caption prior or a layout prior (the prompt -> the layout stage -> codes).
A prompt the model refuses to draw (for a layout prior: the layout stage finds it outside the
world's grammar) is drawn as nothing and counts as a failure in every figure, floors included;
a line says how many of the prompts drawn were refused.

Run: python bench/scene.py [--smoke] [--quick] [--out FILE.md] [--model NAME] [--write-card]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import scene_reader as reader
import torch
from report import (
    Sample,
    add_smoke,
    emit,
    interleaved,
    load_average,
    load_range,
    machine_line,
    seconds_cell,
)

import core.pipelines.scene as scene_pipeline
from core.data.captions import GENEVAL_CATEGORIES, parse_pairs, parse_prompt, render_layout
from core.device import cpu_threads
from core.evaluation import scene as ev
from core.evaluation.common import FJD_REAL_OFFSET, held_out_renders
from core.evaluation.evaluate import evaluate, write_metrics
from core.evaluation.geneval import (
    PromptCase,
    checked_judge,
    checker_accuracy,
    prompts,
    score_readings,
)
from core.evaluation.metrics import fjd_from_features
from core.jobs import Context, run_job
from core.judges import features, read_scenes
from core.nets.prior import LayoutPrior
from core.pipelines.scene import (
    DEFAULT_PRIOR,
    PRIOR_FAMILIES,
    SceneModels,
    SceneSpec,
    conditions,
    draw_batch,
)
from core.sampling.prior import filter_logits
from core.weights import ModelCache, resolve_weights


def job(spec: SceneSpec, cache: ModelCache) -> Callable[[int], None]:
    """A peer for report.interleaved: the real job, warm model cache, seed = repeat + 1."""
    def once(r: int) -> None:
        s = spec.replace(seed=r + 1)
        run_job(s, Context.for_spec(s, device="cpu", models=cache))

    return once


def cold_cli(prompt: str, model: str, runs: int) -> list[Sample]:
    """``easel scene PROMPT`` as an artist runs it (8 candidates, reranked, x4 to 256 px), each
    run a new process: imports, model loading and the drawing, wall and the child's CPU."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(runs):
            cmd = [sys.executable, "-m", "core", "scene", prompt, "--model", model,
                   "--seed", str(r + 1), "-o", os.path.join(tmp, f"{r}.png"), "--overwrite"]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            wall = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if proc.returncode:
                sys.exit(f"bench/scene.py: {' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
            out.append(Sample(wall, (after.ru_utime - before.ru_utime)
                              + (after.ru_stime - before.ru_stime), load_average()))
    return out


def no_cache(models: SceneModels) -> Callable[[int], None]:
    """A peer: one candidate drawn by running the whole sequence again for every code."""
    prior = models.prior
    cond = conditions(prior, "a red star", "", 0, 1)[1]  # its words, or its layout's tokens

    @torch.inference_mode()
    def once(r: int) -> None:
        g = torch.Generator().manual_seed(r + 1)
        codes = torch.zeros(1, prior.config.image_len, dtype=torch.long)
        for i in range(prior.config.image_len):
            logits = prior(cond, codes)[:, i]
            probs = filter_logits(logits).softmax(-1)
            codes[0, i] = torch.multinomial(probs, 1, generator=g)[0, 0]

    return once


def pct(v: float) -> str:
    return f"{100 * v:.1f}%"


README_PROMPT = "a red star to the left of two blue circles on a black background"
# The example changed one thing at a time: relation, colours, count, shape, size, background.
README_VARIANTS = (
    "a red star to the right of two blue circles on a black background",
    "a red star above two blue circles on a black background",
    "a yellow star to the left of two green circles on a black background",
    "a red star to the left of a blue circle on a black background",
    "a red heart to the left of two blue squares on a black background",
    "a big red star to the left of two small blue circles on a black background",
    "a red star to the left of two blue circles on a white background",
)
NOTHING = reader.Reading((), None)  # what a prompt the model refused to draw shows
Draws = dict[tuple[str, ...], dict[str, Any]]  # draw_batch's output by the prompts drawn


@contextlib.contextmanager
def recorded_draws() -> Iterator[Draws]:
    """Keep what every draw_batch call draws, by its prompts: evaluate() draws the pictures its
    judge scores, and the analytic reader reads those very pictures instead of new ones."""
    drawn: Draws = {}
    original = scene_pipeline.draw_batch

    def draw(models: SceneModels, texts: list[str], n: int, generator: torch.Generator,
             **options: Any) -> dict[str, Any]:
        out = original(models, texts, n, generator, **options)
        drawn[tuple(texts)] = out
        return out

    scene_pipeline.draw_batch = draw
    try:
        yield drawn
    finally:
        scene_pipeline.draw_batch = original


def draw(drawn: Draws, models: SceneModels, texts: list[str], n: int,
         generator: torch.Generator) -> dict[str, Any]:
    """draw_batch for the benchmark's own prompts, kept beside evaluate()'s draws (a prompt the
    model refuses is drawn as nothing, and counted by :func:`refused_line`)."""
    out = draw_batch(models, texts, n, generator, keep_going=True)
    drawn[tuple(texts)] = out
    return out


def drawn_for(drawn: Draws, texts: list[str]) -> dict[str, Any]:
    if tuple(texts) not in drawn:
        raise RuntimeError("evaluate() no longer draws the prompts this benchmark reads; "
                           "bench/scene.py must draw them itself")
    return drawn[tuple(texts)]


def read_drawn(d: dict[str, Any], key: str) -> list[reader.Reading]:
    """The analytic reader's reading of each prompt's ``d[key]`` picture (draw_batch's output);
    a prompt the model refused shows nothing, so it counts as a failure."""
    return [NOTHING if i in d["refused"] else reader.read_scene(im)
            for i, im in enumerate(d[key])]


def both(v: tuple[float, float]) -> str:
    """An (exact without shape, exact with shape) pair as a cell."""
    return f"{v[0]:.3f} / {v[1]:.3f}"


def faithfulness_table(models: SceneModels, judge: Any, report: dict[str, Any], drawn: Draws,
                       per_cat: int, uncond: dict[str, Any]) -> list[str]:
    """The judge's and the reader's readings of the same pictures per category, with their
    ceilings (true renders) and floors (no text); then stars and the colour/shape pairs."""
    cases = prompts(per_cat)
    bg = [PromptCase("background", layout.caption or "", seed, layout)
          for seed, layout in reader.background_scenes(per_cat)]
    d = drawn_for(drawn, [c.caption for c in cases])
    d_bg = draw(drawn, models, [c.caption for c in bg], ev.BEST_OF,
                torch.Generator().manual_seed(0))
    truth = np.stack([render_layout(c.layout, 64, c.seed).image for c in cases + bg])
    n8 = f"geneval_n{ev.BEST_OF}"
    judged = {c: (report["geneval_n1"][c], report[n8][c]) for c in [*GENEVAL_CATEGORIES,
                                                                     "overall"]}
    judged["background"] = tuple(score_readings(bg, ev.judged(judge, d_bg, k))["background"]
                                 for k in ("first", "best"))
    judge_ceiling = checker_accuracy(judge, per_cat)
    judge_ceiling["background"] = score_readings(
        bg, read_scenes(judge, truth[len(cases):]))["background"]
    judge_floor = score_readings(cases, ev.judged(judge, uncond, "first"))
    asked = [(c.category, c.caption) for c in cases + bg]
    first, best = (reader.score(asked, read_drawn(d, k) + read_drawn(d_bg, k))
                   for k in ("first", "best"))
    ceiling = reader.score(asked, [reader.read_scene(im) for im in truth])
    floor = reader.score(asked[:len(cases)], read_drawn(uncond, "first"))
    lines = ["| prompts | judge N = 1 | judge N = 8 | reader N = 1 | reader N = 8 | true renders: "
             "judge; reader | no text: judge; reader |", "|---|---|---|---|---|---|---|"]
    for cat in [*GENEVAL_CATEGORIES, "overall", "background"]:
        low = f"{judge_floor[cat]:.3f}; {both(floor[cat])}" if cat in floor else ""
        lines.append(f"| {cat} | {judged[cat][0]:.3f} | {judged[cat][1]:.3f} "
                     f"| {both(first[cat])} | {both(best[cat])} "
                     f"| {judge_ceiling[cat]:.3f}; {both(ceiling[cat])} | {low} |")
    lines.append(f"| stars drawn as stars (prompts asking for a star) | | | {first['stars']:.3f} "
                 f"| {best['stars']:.3f} | {ceiling['stars']:.3f} | {floor['stars']:.3f} |")
    for name in ("held_out", "control"):
        comp = report.get(f"compositional_{name}")
        if not comp:
            continue
        texts = ev.compositional_prompts(sorted(parse_pairs(comp["pairs"])),
                                         ev.COMPOSITIONAL_PROMPTS)
        r1, r8 = (reader.score([("pairs", t) for t in texts],
                               read_drawn(drawn_for(drawn, texts), k))["pairs"]
                  for k in ("first", "best"))
        lines.append(f"| {name.replace('_', '-')} pairs ({', '.join(comp['pairs'])}) "
                     f"| {comp['n1']:.3f} | {comp[f'n{ev.BEST_OF}']:.3f} | {both(r1)} "
                     f"| {both(r8)} | | |")
    return lines


def readme_line(models: SceneModels, drawn: Draws) -> str:
    """The README's example prompt read by the reader in 8 samples (the first candidate of 8
    draws) and in the reranker's pick of 8."""
    gen = torch.Generator().manual_seed(0)
    samples = draw(drawn, models, [README_PROMPT] * 8, 1, gen)
    pick = draw(drawn, models, [README_PROMPT], ev.BEST_OF, gen)
    prompt = parse_prompt(README_PROMPT)

    def counts(readings: list[reader.Reading]) -> str:
        stars = sum(bool(reader.stars_drawn(prompt, r)) for r in readings)
        exact = [sum(reader.matches(prompt, r, shape=k) for r in readings) for k in (0, 1)]
        return (f"a red star in {stars} of {len(readings)}, exact without / with shape "
                f"{exact[0]} / {exact[1]}")

    first = read_drawn(draw(drawn, models, list(README_VARIANTS), 1, gen), "first")
    exact = [sum(reader.matches(parse_prompt(text), r, shape=k)
                 for text, r in zip(README_VARIANTS, first, strict=True)) for k in (0, 1)]
    missed = [text for text, r in zip(README_VARIANTS, first, strict=True)
              if not reader.matches(parse_prompt(text), r, shape=1)]
    return (f"The README's example \"{README_PROMPT}\" (reader): 8 samples: "
            f"{counts(read_drawn(samples, 'first'))}; the reranker's pick of 8: "
            f"{counts(read_drawn(pick, 'best'))}. Its {len(README_VARIANTS)} variants (one "
            f"thing changed each), first candidate: exact without / with shape {exact[0]} / "
            f"{exact[1]}" + (f" (missed with shape: {'; '.join(missed)})." if missed else "."))


# Prompts outside the world's grammar: what a layout prior's layout stage says about each.
OUTSIDE = (
    "a cat sitting on a sofa",
    "a red star to the left of four blue circles",
    "a red star to the left of itself",
    "a red star to the left of a blue circle and to the right of it",
    "a crimson star next to a teal circle",
)


def outside_line(models: SceneModels) -> str:
    """What happens to prompts the world's grammar does not cover (drawn one candidate each):
    refused with the layout stage's message, or drawn as what it was read as."""
    found = draw_batch(models, list(OUTSIDE), 1, torch.Generator().manual_seed(0),
                       keep_going=True)
    said = [f"\"{text}\": " + (f"refused ({found['refused'][i]})" if i in found["refused"]
                                 else "drawn")
            for i, text in enumerate(OUTSIDE)]
    return "Prompts outside the world's grammar: " + "; ".join(said) + "."


def refused_line(models: SceneModels, drawn: Draws) -> str:
    """How many of the prompts drawn for the figures above the model refused to draw (each
    counted there as a failure), with the first reasons."""
    stage = ("the layout stage (prompts outside the world's grammar)"
             if isinstance(models.prior, LayoutPrior) else "the prompt reader (no known word)")
    refused = [(texts[i], why) for texts, d in drawn.items() for i, why in d["refused"].items()]
    examples = "; ".join(f"\"{text}\": {why}" for text, why in refused[:3])
    return (f"Prompts refused by {stage}, each counted as a failure: {len(refused)} of "
            f"{sum(len(texts) for texts in drawn)} drawn"
            + (f" (e.g. {examples})." if examples else "."))


def validation_line(per_cat: int) -> str:
    check = reader.validation(per_cat)
    rejected = ", ".join(f"{kind} {v[1]:.3f}" for kind, v in check["reject"].items())
    accepted = min(v[1] for v in check["accept"].values())
    return (f"The reader on other held-out true renders ({per_cat} prompts per category): "
            f"accepts at least {accepted:.3f} in every category (with shape); rejects renders "
            f"of a prompt changed in one thing, read against the unchanged prompt: {rejected}.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small counts, a few minutes")
    add_smoke(ap)
    ap.add_argument("--out", default=None, help="also write the table as markdown here")
    ap.add_argument("--model", default=DEFAULT_PRIOR)
    ap.add_argument("--write-card", action="store_true",
                    help="also store the prior's metrics in its model card (as easel eval does)")
    args = ap.parse_args()
    per_cat, fjd_n, repeats = ((1, 8, 1) if args.smoke else (10, 200, 5) if args.quick
                               else (100, 2000, 10))
    torch.set_num_threads(cpu_threads())  # as the app starts a job (core.device.cpu_threads)

    ev.GENEVAL_PER_CATEGORY = per_cat
    ev.COMPOSITIONAL_PROMPTS = per_cat
    path = resolve_weights(args.model, PRIOR_FAMILIES, "scene model")
    with recorded_draws() as drawn:
        report = evaluate(path, n=fjd_n)["metrics"]
    if args.write_card:
        write_metrics(path, report)
    models = ev.scene_models(path, torch.device("cpu"))
    vq = evaluate(resolve_weights(models.prior.config.vqvae, ("vqvae",), "VQ-VAE"),
                  n=fjd_n)["metrics"]
    judge = checked_judge("scenes")
    cases = prompts(per_cat)
    # The floor: guidance 0 samples from the unconditional input alone (all padding, or for a
    # layout prior all <none>), one picture per prompt.
    uncond = draw_batch(models, [c.caption for c in cases], 1, torch.Generator().manual_seed(0),
                        keep_going=True, guidance=0.0)
    faithful = faithfulness_table(models, judge, report, drawn, per_cat, uncond)

    rows = []
    real = features(judge, np.stack([s.image for s in held_out_renders("scenes", fjd_n, 64,
                                                                 FJD_REAL_OFFSET)]))
    real_floor = fjd_from_features(
        features(judge, np.stack([s.image for s in held_out_renders("scenes", fjd_n, 64)])), real)
    rows.append([f"FJD, {fjd_n} samples for held-out captions (lower is better)",
                 f"{report['fjd']:.2f}", "",
                 f"real vs real {real_floor:.2f}; VQ reconstructions {vq['recon_fjd']:.2f}"])
    rows.append(["VQ-VAE reconstruction PSNR / SSIM", f"{vq['recon_psnr']:.2f} dB",
                 f"{vq['recon_ssim']:.3f}", ""])
    rows.append(["VQ codebook perplexity / share used",
                 f"{vq['codebook_perplexity']:.1f}", pct(vq["codebook_used"]),
                 f"of {models.vq.config.codebook_size} codes"])
    rows.append(["prior bits per code, held-out scenes", f"{report['bits_per_code']:.3f}", "",
                 f"uniform {np.log2(models.vq.config.codebook_size):.1f}"])

    # The three timed runs interleaved and repeated (report.interleaved), warm model cache.
    cache = ModelCache()
    times = interleaved({
        "one": job(SceneSpec(prompt="a red star", n=1, rerank=False, upscale=False,
                             model=args.model), cache),
        "no cache": no_cache(models),
        "eight": job(SceneSpec(prompt="a red star to the left of a blue circle", n=8,
                               model=args.model), cache),
    }, repeats if args.smoke else max(repeats, 5))
    rows.append(["one 64 px candidate, median s (target < 0.5)", seconds_cell(times["one"]), "",
                 f"without the KV cache {seconds_cell(times['no cache'])}"])
    cold = cold_cli("a red star to the left of a blue circle", args.model,
                    1 if args.smoke else 3)
    rows.append(["8 candidates reranked + x4 to 256 px, median s (target <= 2 s, 4 CPU-s "
                 "warm)", seconds_cell(times["eight"]), "",
                 f"cold `easel scene`, a new process each run: {seconds_cell(cold)}"])

    mode = " (smoke: figures mean nothing)" if args.smoke else " (quick)" if args.quick else ""
    head = (f"Scene benchmark{mode}: {machine_line()}; load average over the timed runs "
            f"{load_range([s for v in [*times.values(), cold] for s in v])}; model {args.model}, "
            f"{per_cat} prompts per category; seconds are wall (CPU: this process, all "
            f"threads)")
    lines = [head, "", f"| figure | N = 1 | N = {ev.BEST_OF} | peers / bounds |",
             "|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += ["", "Prompt faithfulness: the share of prompts whose picture matches exactly, read "
              "by the learned judge (GenEval-style checker) and by the analytic reader "
              "(bench/scene_reader.py) from the same pictures; reader cells are without shape / "
              "with shape (colour, size, count, relation and background either way). Targets: "
              "without shape >= 0.90 per category at N = 1, with shape >= 0.80 overall, stars "
              ">= 0.85, held-out pairs >= 0.75 with shape.", "", *faithful, "",
              readme_line(models, drawn), "", refused_line(models, drawn), "",
              outside_line(models), "",
              validation_line(per_cat)]
    lines += ["", ("Published GenEval for context (other domain, same categories): SDXL position "
              "0.15, colour attribution 0.23; DALL-E 3 0.43 and 0.45.")]
    emit("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
