"""``easel eval`` for the scene models: VQ-VAE, scene prior and reranker.

- VQ-VAE: reconstruction PSNR/SSIM and codebook usage on held-out renders, and the FJD of the
  reconstructions (the best FJD any prior over these codes can reach).
- Prior (caption or layout prior): GenEval-style prompt faithfulness per category
  (core.evaluation.geneval) with the first sample (N = 1) and the reranker's pick of N = 8;
  compositional generalisation on prompts that ask for the colour/shape pairs the recipe held
  out of training (and, as the control, the same templates with pairs it saw); FJD of samples
  for held-out captions; and bits per code of held-out scenes under the prior (given their
  captions, or for a layout prior the layouts they were drawn from).
- Reranker: on held-out scenes, how often the true caption beats each of 3 one-word-wrong
  captions, and top-1 retrieval of the true caption among 100 (image -> text).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.data.captions import (
    COLOUR_NAMES,
    RELATIONS,
    SHAPES,
    parse_prompt,
    sample_scene,
    satisfies,
)
from core.data.worlds import split_seeds
from core.evaluation import metrics
from core.evaluation.common import BATCH, evaluator, held_out_of, held_out_renders, world_fjd
from core.judges import read_scenes
from core.tensors import to_tensor, to_uint8
from core.weights import ModelCard, load_model

GENEVAL_PER_CATEGORY = 100
BEST_OF = 8
COMPOSITIONAL_PROMPTS = 100
# The pairs the shipped recipes hold out, and a control of the same words recombined.
CONTROL_PAIRS = [("green", "star"), ("purple", "triangle")]
SAY_RELATION = {"left_of": "to the left of", "right_of": "to the right of", "above": "above",
                "below": "below"}
CAPTION_OFFSET = 20_000_000  # held-out seeds whose captions drive samples for FJD


@evaluator("vqvae")
@torch.no_grad()
def evaluate_vqvae(path: Path, card: ModelCard, n: int, device: torch.device) -> dict[str, Any]:
    held = held_out_of(card)
    vq = load_model(path, device)
    real = held.images(n, vq.config.image_size)
    n = len(real)
    recons, codes = [], []
    for i in range(0, n, BATCH):
        c = vq.encode(to_tensor(real[i:i + BATCH]).to(device))
        codes.append(c.cpu())
        recons.append(to_uint8(vq.decode(c).clamp(-1, 1)))
    recon = np.concatenate(recons)
    usage = metrics.codebook_usage(torch.cat(codes), vq.config.codebook_size)
    out = {"recon_psnr": metrics.psnr(real, recon), "recon_ssim": metrics.ssim(real, recon),
           "codebook_perplexity": usage["perplexity"], "codebook_used": usage["used_share"],
           "grid": vq.config.grid, "images": n}
    fjd = held.fjd(recon, None if held.is_world else real, device)
    if fjd:
        out["recon_fjd"] = fjd["fjd"]
    return out


def compositional_prompts(pairs: list[tuple[str, str]], n: int, seed: int = 0) -> list[str]:
    """``n`` prompts that each ask for one of ``pairs`` (colour, shape): alone, with a size,
    beside a second object of other colours, or in a relation to it."""
    rng = random.Random(f"compositional:{seed}")
    out = []
    for k in range(n):
        colour, shape = pairs[k % len(pairs)]
        other_shape = rng.choice([s for s in SHAPES if s != shape])
        other_colour = rng.choice([c for c in COLOUR_NAMES if c != colour])
        form = (k // len(pairs)) % 4
        if form == 0:
            out.append(f"a {colour} {shape}")
        elif form == 1:
            out.append(f"a {rng.choice(('small', 'big'))} {colour} {shape}")
        elif form == 2:
            out.append(f"a {colour} {shape} and a {other_colour} {other_shape}")
        else:
            rel = SAY_RELATION[rng.choice(RELATIONS)]
            out.append(f"a {colour} {shape} {rel} a {other_colour} {other_shape}")
    return out


def faithfulness(prompts: list[str], readings: list[Any]) -> float:
    """Share of pictures whose judge reading satisfies their prompt (the GenEval check)."""
    return float(np.mean([satisfies(parse_prompt(p), objs, bg)
                          for p, (objs, bg) in zip(prompts, readings, strict=True)]))


def judged(judge: Any, drawn: dict[str, Any], key: str) -> list[Any]:
    """The judge's reading of each prompt's ``drawn[key]`` picture (draw_batch's output); a
    prompt the model refused to draw reads as an empty picture, so it counts as a failure."""
    readings = read_scenes(judge, drawn[key])
    return [([], None) if i in drawn["refused"] else r for i, r in enumerate(readings)]


def scene_models(path: Path, device: torch.device) -> Any:
    """The prior at ``path`` with its VQ-VAE and the installed reranker (no upscaler)."""
    from core.jobs import Context
    from core.pipelines.scene import SceneSpec, load_models

    spec = SceneSpec(prompt="", model=str(path), upscale=False)
    return load_models(spec, Context.for_spec(spec, device=device))


@evaluator("prior")
@evaluator("layout_prior")
@torch.no_grad()
def evaluate_prior(path: Path, card: ModelCard, n: int, device: torch.device,
                   ) -> dict[str, Any]:
    from core.evaluation.geneval import checked_judge, prompts, score_readings
    from core.pipelines.scene import draw_batch
    from core.sampling.prior import code_logprobs

    models = scene_models(path, device)
    judge = checked_judge("scenes", device)
    gen = torch.Generator().manual_seed(0)
    out: dict[str, Any] = {"best_of": BEST_OF, "models": models.hashes}

    # A prompt the model refuses (a layout prior's layout stage: outside the world's grammar)
    # is drawn as nothing and counts as a failure; "refused_prompts" counts them.
    cases = prompts(GENEVAL_PER_CATEGORY)
    drawn = draw_batch(models, [c.caption for c in cases], BEST_OF, gen, keep_going=True)
    refused = len(drawn["refused"])
    for key, name in (("first", "geneval_n1"), ("best", f"geneval_n{BEST_OF}")):
        out[name] = score_readings(cases, judged(judge, drawn, key))

    recipe = card.extra.get("recipe_resolved", {})
    held = recipe.get("task", {}).get("hold_out", []) if isinstance(recipe, dict) else []
    if held:
        from core.data.captions import parse_pairs

        for name, pairs in (("held_out", sorted(parse_pairs(held))), ("control", CONTROL_PAIRS)):
            texts = compositional_prompts(pairs, COMPOSITIONAL_PROMPTS)
            d = draw_batch(models, texts, BEST_OF, gen, keep_going=True)
            refused += len(d["refused"])
            out[f"compositional_{name}"] = {
                "pairs": [" ".join(p) for p in pairs],
                "n1": faithfulness(texts, judged(judge, d, "first")),
                f"n{BEST_OF}": faithfulness(texts, judged(judge, d, "best"))}

    seeds = split_seeds("held_out", n, CAPTION_OFFSET)
    captions = [sample_scene(s).caption or "" for s in seeds]
    samples = draw_batch(models, captions, 1, gen, keep_going=True)
    refused += len(samples["refused"])
    out["refused_prompts"] = refused
    out["fjd"] = world_fjd("scenes", samples["first"], n, device)["fjd"]

    size = models.vq.config.image_size
    held_out = held_out_renders("scenes", n, size)
    real = np.stack([s.image for s in held_out])
    prior = models.prior
    nll, count = 0.0, 0
    for i in range(0, n, BATCH):
        codes = models.vq.encode(to_tensor(real[i:i + BATCH]).to(device)).flatten(1)
        cond = _true_conditions(prior, held_out[i:i + BATCH]).to(device)
        nll -= float(code_logprobs(prior, cond, codes).sum())
        count += codes.numel()
    out["bits_per_code"] = float(nll / count / np.log(2))
    return out


def _true_conditions(prior: Any, samples: list[Any]) -> torch.Tensor:
    """What the prior is conditioned on for rendered scenes: their captions, or (a layout
    prior) the layouts the renderer drew."""
    from core.nets.prior import LayoutPrior

    if isinstance(prior, LayoutPrior):
        from core.data.layouts import label_layout, layout_tokens

        return torch.tensor([layout_tokens(label_layout(s.labels)) for s in samples])
    return prior.tokenizer.batch([s.caption or "" for s in samples], prior.config.text_len)


@evaluator("reranker")
@torch.no_grad()
def evaluate_reranker(path: Path, card: ModelCard, n: int, device: torch.device
                      ) -> dict[str, Any]:
    from core.training.families.reranker import wrong_captions

    net = load_model(path, device)
    samples = held_out_renders("scenes", n, net.config.image_size)
    rng = random.Random(0)
    beats, top1 = [], []
    for i in range(0, n, 100):
        part = samples[i:i + 100]
        captions = [s.caption or "" for s in part]
        img = net.encode_image(to_tensor(np.stack([s.image for s in part])).to(device))
        txt = net.encode_text(net.texts(captions, device))
        sims = img @ txt.t()
        top1 += (sims.argmax(1) == torch.arange(len(part), device=device)).tolist()
        for k, cap in enumerate(captions):
            wrong = [w for w in wrong_captions(cap, 3, rng) if w]
            if wrong:
                w = net.encode_text(net.texts(wrong, device))
                beats += (sims[k, k] > img[k] @ w.t()).tolist()
    return {"beats_wrong_caption": float(np.mean(beats)), "top1_of_100": float(np.mean(top1))}
