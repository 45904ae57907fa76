"""Scene pipeline: a text prompt -> ranked candidate pictures (DALL-E v1 at laptop size).

1. The prompt is read with the prior's own word list: unknown words are left out with a notice
   (and close matches), a prompt with no known word is refused, words past the model's text
   length are cut with a notice, and the scenes checker's reading of the prompt is reported,
   so a contradictory prompt is generated anyway and the user sees what it was taken to mean.
2. The transformer prior (core/nets/prior.py) samples ``n`` code grids one code at a time with
   a key/value cache (temperature, top-k, top-p, optional classifier-free guidance:
   core/sampling/prior.py), yielding progress per code and honouring cancel between codes.
3. The VQ-VAE decodes the grids; the contrastive reranker (core/nets/reranker.py) orders them
   by their fit to the prompt; the scenes super-resolution model upscales them x4.

A layout prior (a model whose card's architecture is ``layout_prior``) draws in two stages:
the layout stage (core/data/layouts.py: the rule-based parser and the world's layout sampler,
not a learned model) turns the prompt into one explicit layout per candidate (background, and
each object's shape, colour, size and box), refusing a prompt it cannot draw faithfully; or the
spec's ``layout`` is drawn as given ("Redraw from layout", ``easel scene --layout``). The prior
then samples the image codes conditioned on the layout tokens; every pixel comes from those
codes through the VQ-VAE decoder. The result's info carries each candidate's layout.

Region editing (``scene_edit``): the codes of a picture (from its metadata, or by encoding it)
are kept except those under a rectangle, which are resampled for a new prompt in raster order,
conditioned on every kept code before them. Codes after the rectangle cannot be seen by a
causal model while sampling, so each candidate is then scored by how likely the prior finds the
kept codes that follow it (the fit to the rest of the picture), the better half is reranked by
the prompt, and the new region is pasted into the untouched picture with a feathered seam.
"""

from __future__ import annotations

import difflib
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageFilter

from core.jobs import (
    Context,
    JobError,
    Progress,
    Result,
    input_image,
    job_judge,
    job_model,
    job_weights,
    pipeline,
)
from core.nets.prior import CodePrior, LayoutPrior
from core.nets.reranker import Reranker
from core.nets.text import Tokenizer, words
from core.nets.vqvae import VQVAE
from core.sampling.prior import code_logprobs, sample_codes, sample_steps
from core.specs.scene import (  # noqa: F401  (the panels' names, importable here too)
    DEFAULT_PRIOR,
    DEFAULT_RERANKER,
    DEFAULT_UPSCALER,
    MAX_CANDIDATES,
    MAX_PROMPT_CHARS,
    PRIOR_FAMILIES,
    SceneEditSpec,
    SceneSpec,
)
from core.tensors import to_tensor, to_uint8

FEATHER = 0.25  # seam of a region edit, as a share of one code cell


# --------------------------------------------------------------------------- models


@dataclass
class SceneModels:
    prior: CodePrior  # a ScenePrior (caption words) or a LayoutPrior (layout tokens)
    vq: VQVAE
    reranker: Reranker | None
    upscaler: Any  # core.nets.upscale.Upscaler or None
    hashes: dict[str, str]
    notes: list[str]
    judge: Any = None  # the scenes judge that reads each candidate back (None: not installed)


def load_models(spec: SceneSpec, ctx: Context) -> SceneModels:
    """The spec's prior, the VQ-VAE it was trained on (hash-checked), the reranker and the
    upscaler when they are installed (missing ones become notes)."""
    prior_path = job_weights(spec.model, PRIOR_FAMILIES, "scene model")
    prior, prior_sha = job_model(prior_path, ctx, CodePrior, "scene prior")
    cfg = prior.config
    if isinstance(prior, LayoutPrior):
        from core.data.layouts import token_format

        ours = token_format()
        if {k: getattr(cfg, k) for k in ours} != ours:
            raise JobError(f"The scene model {prior_path.stem} reads layouts of "
                           f"{cfg.layout_len} tokens from {cfg.layout_vocab}; this Easel writes "
                           f"{ours['layout_len']} from {ours['layout_vocab']} in another "
                           "format. Retrain it with this version.")
    vq_path = job_weights(cfg.vqvae, "vqvae", "VQ-VAE")
    vq, vq_sha = job_model(vq_path, ctx, VQVAE, "VQ-VAE")
    if cfg.vqvae_sha256 and vq_sha != cfg.vqvae_sha256:
        raise JobError(f"The scene model {prior_path.stem} was trained on the codes of another "
                       f"{cfg.vqvae} (sha256 {cfg.vqvae_sha256[:12]}); the installed one is "
                       f"{vq_sha[:12]}. Retrain the prior or restore that VQ-VAE.")
    hashes = {prior_path.stem: prior_sha, vq_path.stem: vq_sha}
    notes: list[str] = []
    reranker = upscaler = None
    if spec.rerank:
        try:
            rr_path = job_weights(DEFAULT_RERANKER, "reranker", "reranker")
            reranker, hashes[rr_path.stem] = job_model(rr_path, ctx, Reranker, "reranker")
        except JobError as exc:
            notes.append(f"Not reranked: {exc}")
    if spec.upscale:
        from core.nets.upscale import Upscaler
        from core.pipelines.upscale import resolve_model

        try:
            upscaler, hashes[DEFAULT_UPSCALER] = job_model(resolve_model(DEFAULT_UPSCALER), ctx,
                                                       Upscaler, "upscale model")
        except JobError as exc:
            notes.append(f"Not upscaled: {exc}")
    return SceneModels(prior, vq, reranker, upscaler, hashes, notes, _scenes_judge(ctx))


def _scenes_judge(ctx: Context) -> Any:
    """The installed scenes judge through the model cache, or None (its verdicts are extra)."""
    try:
        found = job_judge("scenes", ctx)
    except JobError:
        return None
    return found[0] if found is not None else None
    return None


# --------------------------------------------------------------------------- prompt


@dataclass(frozen=True)
class PromptReading:
    text: str  # what the model reads: the known words, cut to its text length
    unknown: tuple[str, ...]  # words left out
    suggestions: dict[str, list[str]]  # unknown word -> close known words
    dropped: tuple[str, ...]  # known words past the model's text length
    reading: str  # the scenes checker's reading of the prompt
    notices: tuple[str, ...]


def read_prompt(prompt: str, tokenizer: Tokenizer, length: int) -> PromptReading:
    """What the model will read from ``prompt`` (see the module docstring); JobError when
    nothing usable is left."""
    from core.data.captions import parse_prompt

    if not isinstance(prompt, str) or not prompt.strip():
        raise JobError("Type a prompt, e.g. \"a red star to the left of a blue circle\".")
    ws = words(prompt[:MAX_PROMPT_CHARS])
    unknown = tuple(dict.fromkeys(w for w in ws if w not in tokenizer))
    known = [w for w in ws if w in tokenizer]
    if not known:
        raise JobError(f"None of the words of the prompt are known to this model "
                       f"({', '.join(unknown[:8])}). It knows words like: "
                       f"{', '.join(tokenizer.vocab[:12])}.")
    kept, dropped = known[:length], tuple(known[length:])
    suggestions = {w: difflib.get_close_matches(w, tokenizer.vocab, n=3, cutoff=0.6)
                   for w in unknown}
    notices = []
    if unknown:
        hints = [f"{w} (did you mean {' or '.join(s)}?)" if s else w
                 for w, s in suggestions.items()]
        notices.append(f"Ignored words the model does not know: {', '.join(hints)}.")
    if dropped or len(prompt) > MAX_PROMPT_CHARS:
        notices.append(f"The prompt is longer than the model reads ({length} words); it "
                       f"stops at \"{' '.join(kept[-3:])}\".")
    text = " ".join(kept)
    reading = parse_prompt(text).describe()
    return PromptReading(text, unknown, suggestions, dropped, reading, tuple(notices))


def read_layouts(prompt: str, layout: str, seed: int, n: int
                 ) -> tuple[PromptReading, list[Any]]:
    """The layout stage for ``n`` candidates: the given ``layout`` (JSON text) for every one,
    else one layout per candidate planned from ``prompt`` (core.data.layouts.plan_layout), and
    the reading the reranker and the checker use. JobError naming what cannot be drawn."""
    from core.data.captions import parse_prompt
    from core.data.layouts import LayoutError, describe_layout, parse_layout_json, plan_layout

    try:
        if layout:
            given = parse_layout_json(layout)
            text = describe_layout(given)
            return PromptReading(text, (), {}, (), f"the layout: {text}", ()), [given] * n
        if not prompt.strip():
            raise JobError("Type a prompt, e.g. \"a red star to the left of a blue circle\".")
        layouts = [plan_layout(prompt[:MAX_PROMPT_CHARS], seed, i) for i in range(n)]
    except LayoutError as exc:
        message = str(exc)
        raise JobError(message if message.startswith("Cannot") else
                       f"The layout cannot be drawn: {message}.") from None
    text = " ".join(words(prompt[:MAX_PROMPT_CHARS]))
    return PromptReading(text, (), {}, (), parse_prompt(text).describe(), ()), layouts


def conditions(prior: CodePrior, prompt: str, layout: str, seed: int, n: int
               ) -> tuple[PromptReading, torch.Tensor, list[Any] | None]:
    """What ``prior`` draws ``n`` candidates from: (the prompt's reading, (n, cond_len) ids on
    the CPU, each candidate's Layout or None). A caption prior reads the prompt's words; a
    layout prior the layout stage's layouts (:func:`read_layouts`)."""
    if isinstance(prior, LayoutPrior):
        from core.data.layouts import layout_tokens

        reading, layouts = read_layouts(prompt, layout, seed, n)
        return reading, torch.tensor([layout_tokens(lay) for lay in layouts]), layouts
    if layout:
        raise JobError("This scene model draws from prompts only; choose a layout model to "
                       "draw from a layout.")
    tokenizer, length = prior.tokenizer, prior.config.text_len  # type: ignore[union-attr]
    reading = read_prompt(prompt, tokenizer, length)
    return reading, tokenizer.batch([reading.text] * n, length), None


# --------------------------------------------------------------------------- sampling


def sampling_options(spec: SceneSpec | None = None) -> dict[str, Any]:
    """The sampling settings of ``spec`` (default: the app's defaults) for sample_steps."""
    spec = spec or SceneSpec()
    return {"temperature": spec.temperature, "top_k": spec.top_k, "top_p": spec.top_p,
            "guidance": spec.guidance}


def _decode(models: SceneModels, codes: torch.Tensor) -> torch.Tensor:
    g = models.prior.config.grid
    return models.vq.decode(codes.view(-1, g, g)).float().clamp(-1, 1)


def _finish(models: SceneModels, images: torch.Tensor, reading: PromptReading,
            info: dict[str, Any], rank: bool) -> tuple[list[int], list[float | None]]:
    """Rerank (when asked and possible) and judge the candidates; returns (order, scores)."""
    scores: list[float | None] = [None] * len(images)
    order = list(range(len(images)))
    if models.reranker is not None:
        s = models.reranker.score(images, reading.text).cpu()
        scores = [round(float(v), 4) for v in s]
        if rank:
            order = sorted(order, key=lambda i: -s[i].item())
    info["checks"] = _checks(models.judge, images[order], reading.text)
    return order, scores


def _checks(judge: Any, images: torch.Tensor, prompt: str) -> list[str] | None:
    """The scenes checker's verdict on each picture (the judge's reading against the prompt),
    or None when no scenes judge is installed."""
    from core.data.captions import explain, parse_prompt
    from core.judges import read_scenes

    if judge is None:
        return None
    parsed = parse_prompt(prompt)
    return [explain(parsed, objs, bg) for objs, bg in read_scenes(judge, to_uint8(images))]


# --------------------------------------------------------------------------- pipelines


def _sample(spec: SceneSpec, prior: CodePrior, cond: torch.Tensor, ctx: Context,
            known: torch.Tensor | None, verb: str) -> Generator[Progress, None, torch.Tensor]:
    """:func:`sample_steps` with the spec's options, one Progress per code (two more steps
    follow: decoding and ranking), cancellable between codes."""
    total = prior.config.image_len
    gen = sample_steps(prior, cond, ctx.generator, known=known, **sampling_options(spec))
    while True:
        ctx.check()
        try:
            done, _ = next(gen)
        except StopIteration as stop:
            ctx.check()
            return stop.value
        yield Progress(done, total + 2, f"{verb} code {done} of {total}")


def _info(reading: PromptReading, models: SceneModels) -> dict[str, Any]:
    """What every scene result reports about its prompt and models."""
    return {"reading": reading.reading, "read_as": reading.text,
            "unknown": list(reading.unknown), "suggestions": reading.suggestions,
            "notices": list(reading.notices) + models.notes, "models": models.hashes}


def _layout_info(layouts: list[Any] | None, order: list[int]) -> dict[str, Any]:
    """Each candidate's layout in the JSON form, best first, and the first one's as
    ``layout`` (none for a caption prior)."""
    if layouts is None:
        return {}
    from core.data.layouts import layout_to_dict

    ranked = [layout_to_dict(layouts[i]) for i in order]
    return {"layout": ranked[0], "layouts": ranked}


@pipeline("scene")
def run_scene(spec: SceneSpec, ctx: Context) -> Generator[Progress, None, Result]:
    yield Progress(0, 1, "Loading the scene models")
    models = load_models(spec, ctx)
    prior = models.prior
    reading, cond, layouts = conditions(prior, spec.prompt, spec.layout, spec.seed, spec.n)
    total = prior.config.image_len
    info = _info(reading, models)
    with torch.no_grad():
        codes = yield from _sample(spec, prior, cond.to(ctx.device), ctx, None, "Drawing")
        images = _decode(models, codes)
        yield Progress(total + 1, total + 2, "Ranking the candidates")
        order, scores = _finish(models, images, reading, info, spec.rerank)
        ctx.check()
        out = images[order]
        if models.upscaler is not None:
            from core.pipelines.upscale import upscale_tensor

            out = upscale_tensor(models.upscaler, out)
    info.update(scores=[scores[i] for i in order], order=order,
                codes=[codes[i].tolist() for i in order], grid=prior.config.grid,
                upscaled=models.upscaler is not None, **_layout_info(layouts, order))
    return Result(images=list(to_uint8(out)), spec=spec, info=info)


def region_cells(box: tuple[float, ...], grid: int) -> np.ndarray:
    """(grid, grid) bool: the code cells a rectangle (fractions of the picture) covers by at
    least a quarter of the cell in each direction; at least the cell of its centre."""
    x0, y0, x1, y1 = box
    edges = np.arange(grid + 1) / grid

    def span(a: float, b: float) -> np.ndarray:
        overlap = np.clip(np.minimum(edges[1:], b) - np.maximum(edges[:-1], a), 0, None)
        return overlap * grid >= 0.25

    cells = span(y0, y1)[:, None] & span(x0, x1)[None, :]
    if not cells.any():
        cells[min(grid - 1, int((y0 + y1) / 2 * grid)), min(grid - 1, int((x0 + x1) / 2 * grid))] \
            = True
    return cells


def _feathered(cells: np.ndarray, height: int, width: int) -> np.ndarray:
    """The cells as a (height, width) float mask with a soft edge of FEATHER of a cell."""
    mask = Image.fromarray((cells * 255).astype(np.uint8), "L").resize((width, height),
                                                                         Image.Resampling.NEAREST)
    radius = max(1.0, FEATHER * height / cells.shape[0])
    return np.asarray(mask.filter(ImageFilter.GaussianBlur(radius)), np.float32) / 255.0


@pipeline("scene_edit")
def run_edit(spec: SceneEditSpec, ctx: Context) -> Generator[Progress, None, Result]:
    original = input_image(spec.image, "No scene to edit: open or generate a scene first.")
    original = np.ascontiguousarray(original[..., :3])
    yield Progress(0, 1, "Loading the scene models")
    models = load_models(spec, ctx)
    prior = models.prior
    g, size = prior.config.grid, models.vq.config.image_size
    reading, cond, layouts = conditions(prior, spec.prompt, spec.layout, spec.seed, spec.n)
    total = prior.config.image_len
    info = _info(reading, models)
    cells = region_cells(spec.box, g)
    with torch.no_grad():
        if spec.codes:
            if len(spec.codes) != total or max(spec.codes) >= prior.config.codebook_size \
                    or min(spec.codes) < 0:
                raise JobError(f"The scene's codes do not fit this model ({len(spec.codes)} "
                               f"codes for a {g}x{g} grid).")
            base = torch.tensor(spec.codes, dtype=torch.long, device=ctx.device)
        else:
            small = np.asarray(Image.fromarray(original).resize((size, size),
                                                                 Image.Resampling.LANCZOS))
            base = models.vq.encode(to_tensor(small).to(ctx.device)).flatten()
        flat_cells = torch.from_numpy(cells.flatten()).to(ctx.device)
        known = torch.where(flat_cells, torch.full_like(base, -1), base)[None].repeat(spec.n, 1)
        cond = cond.to(ctx.device)
        codes = yield from _sample(spec, prior, cond, ctx, known, "Redrawing")
        yield Progress(total + 1, total + 2, "Fitting the new region to the rest")
        # How well the kept codes after the region follow from each candidate.
        last = int(np.flatnonzero(cells.flatten()).max())
        after = ~flat_cells.clone()
        after[: last + 1] = False
        logp = code_logprobs(prior, cond, codes)
        fit = (logp * after).sum(1) / after.sum().clamp(min=1)
        images = _decode(models, codes)
        keep = sorted(range(spec.n), key=lambda i: -fit[i].item())[: max(1, (spec.n + 1) // 2)]
        order_kept, scores = _finish(models, images[keep], reading, info, spec.rerank)
        order = [keep[i] for i in order_kept]
        out = images[order]
        if models.upscaler is not None:
            from core.pipelines.upscale import upscale_tensor

            out = upscale_tensor(models.upscaler, out)
    h, w = original.shape[:2]
    mask = _feathered(cells, h, w)[..., None]
    results = []
    for img in to_uint8(out):
        fitted = np.asarray(Image.fromarray(img).resize((w, h), Image.Resampling.LANCZOS))
        blend = original * (1 - mask) + fitted * mask
        results.append(np.where(mask > 0, np.clip(blend + 0.5, 0, 255), original).astype(
            np.uint8))
    info.update(scores=[scores[i] for i in order_kept],
                fit=[round(float(fit[i]), 4) for i in order], order=order,
                codes=[codes[i].tolist() for i in order], grid=g, cells=cells.tolist(),
                upscaled=models.upscaler is not None, **_layout_info(layouts, order))
    return Result(images=results, spec=spec, info=info)


# --------------------------------------------------------------------------- batches


@torch.no_grad()
def draw_batch(models: SceneModels, prompts: list[str], n: int, generator: torch.Generator,
               batch: int = 256, layout_seed: int = 0, keep_going: bool = False,
               **options: Any) -> dict[str, Any]:
    """Draw ``n`` candidates for each prompt, many prompts per forward pass (evaluation and
    benchmarks; the GUI and CLI go through the jobs above). Returns ``first`` (the first
    candidate of each prompt, i.e. best of 1), ``best`` (the reranker's pick of the n, or the
    first without a reranker), both (P, S, S, 3) uint8 at the VQ-VAE's size, ``scores``
    (P, n) reranker similarities (None without a reranker), ``refused`` (below), and for a
    layout prior ``layouts``: each prompt's n layouts (planned with ``layout_seed``). Sampling
    settings not given in ``options`` are the app's defaults (:func:`sampling_options`).

    A prompt the model cannot draw (the layout stage refuses it, or a caption prior knows none
    of its words) raises the JobError the job would, or with ``keep_going`` is not drawn: its
    pictures stay black, its scores NaN, its layouts None, and ``refused`` maps its index to
    the reason, so that a caller counts it as a failure ({} when every prompt was drawn)."""
    options = {**sampling_options(), **options}
    prior = models.prior
    device = next(prior.parameters()).device
    rows: list[str] = []
    conds, layouts, refused = [], [], {}
    for k, p in enumerate(prompts):
        try:
            reading, cond, planned = conditions(prior, p, "", layout_seed, n)
        except JobError as exc:
            if not keep_going:
                raise
            refused[k], planned = str(exc), None
        else:
            rows += [reading.text] * n
            conds.append(cond)
        layouts.append(planned)
    drawn = [k for k in range(len(prompts)) if k not in refused]
    size = models.vq.config.image_size
    all_images = np.zeros((len(prompts), n, size, size, 3), np.uint8)
    all_cond = torch.cat(conds) if conds else None
    images, scores = [], []
    for i in range(0, len(rows), batch):
        chunk = rows[i:i + batch]
        codes = sample_codes(prior, all_cond[i:i + batch].to(device), generator, **options)
        x = _decode(models, codes)
        if models.reranker is not None:
            emb = models.reranker.encode_image(x)
            t = models.reranker.encode_text(models.reranker.texts(chunk, device))
            scores.append((emb * t).sum(1).cpu())
        images.append(to_uint8(x))
    if images:
        all_images[drawn] = np.concatenate(images).reshape(len(drawn), n, size, size, 3)
    first = all_images[:, 0]
    out: dict[str, Any] = {"first": first, "best": first, "scores": None, "refused": refused}
    if isinstance(prior, LayoutPrior):
        out["layouts"] = layouts
    if models.reranker is not None:
        s = np.full((len(prompts), n), np.nan, np.float32)
        if scores:
            s[drawn] = torch.cat(scores).view(len(drawn), n).numpy()
        pick = np.nan_to_num(s, nan=-np.inf).argmax(1)
        out.update(best=all_images[np.arange(len(prompts)), pick], scores=s)
    return out
