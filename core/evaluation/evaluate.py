"""``evaluate(model_path, n)``: the measured figures of one saved model, by its family.

``EVALUATORS`` (core/evaluation/common.py) maps a model card's ``family`` to a function
``(path, card, n, device) -> dict`` of metrics: the judge, DCGAN, VAE and upscale families'
are here, the others' in the modules beside this one (imported below, so they register).
All images come from held-out seeds (core.data.worlds.HELD_OUT), so nothing evaluated was
trained on. ``write_metrics`` stores the figures in the model card (``easel eval
--write-card``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

# The other families' evaluators register on import.
from core.evaluation import diffusion as _diffusion  # noqa: F401
from core.evaluation import metrics
from core.evaluation import scene as _scene  # noqa: F401
from core.evaluation import style as _style  # noqa: F401
from core.evaluation.common import (
    BATCH,
    EVALUATORS,
    EvaluationError,
    HeldOut,
    evaluator,
    held_out_of,
    held_out_renders,
    world_fjd,
    world_of,
)
from core.imageio import atomic_write
from core.judges import load_judge, read_faces, read_scenes
from core.tensors import to_tensor, to_uint8
from core.weights import (
    SUFFIX,
    ModelCard,
    WeightsError,
    card_path,
    find_model,
    list_models,
    load_model,
)

# --------------------------------------------------------------------------- finding models


def resolve_model(model: str) -> Path:
    """A .safetensors path, or the name (``name`` or ``family/name``) of an installed model."""
    path = Path(model).expanduser()
    if path.suffix == SUFFIX or path.suffix == ".json":
        if not path.with_suffix(SUFFIX).is_file():
            raise EvaluationError(f"{path.with_suffix(SUFFIX)}: no such model file.")
        return path.with_suffix(SUFFIX).resolve()
    family, _, name = model.rpartition("/")
    found = find_model(name, (family,) if family else None)
    if found is None:
        known = ", ".join(f"{m.family}/{m.name}" for m in list_models()) or "none installed"
        raise EvaluationError(f"no model {model!r} (a .safetensors path or one of: {known}).")
    return found.path


# --------------------------------------------------------------------------- entry points


def evaluate(model_path: str | os.PathLike, n: int = 2000,
             device: str | torch.device = "cpu", judge: str | None = None) -> dict[str, Any]:
    """Measure the model at ``model_path`` on ``n`` held-out images. Returns
    ``{"model", "family", "path", "n", "metrics": {...}, "seconds"}``. ``judge`` (a world)
    computes FJD for a model trained on a folder of pictures like that world's."""
    if n < 2:
        raise EvaluationError("evaluation needs n >= 2 images")
    path = Path(model_path).with_suffix(SUFFIX)
    from core.weights import read_card

    card = read_card(path)
    if judge is not None:
        if judge not in ("faces", "scenes"):
            raise EvaluationError(f"no judge for {judge!r}; the judges know faces and scenes.")
        card.extra["judge"] = judge
    fn = EVALUATORS.get(card.family)
    if fn is None:
        raise EvaluationError(f"no evaluation for the {card.family!r} family yet (known: "
                              f"{', '.join(sorted(EVALUATORS))}).")
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):  # evaluation never disturbs the caller's RNG
        torch.manual_seed(0)
        result = fn(path, card, n, torch.device(device))
    # An evaluator that measures fewer images than asked (fast styles) says how many it used.
    return {"model": card.name, "family": card.family, "path": str(path),
            "n": int(result.get("images", n)), "metrics": result,
            "seconds": round(time.perf_counter() - t0, 2)}


def write_metrics(model_path: str | os.PathLike, new: dict[str, Any]) -> Path:
    """Merge ``new`` into the card's ``metrics`` (atomically). The card's sha256 stays that of
    the weights file: the weights are re-hashed first, and a mismatch refuses the write."""
    path = Path(model_path).with_suffix(SUFFIX)
    from core.weights import read_card

    card = read_card(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != card.sha256.lower():
        raise WeightsError(f"{path} does not match its model card's sha256; not writing "
                           "metrics into a card that describes other weights.")
    card = dataclasses.replace(card, metrics={**card.metrics, **json_safe(new)})
    out = card_path(path)
    atomic_write(out, (json.dumps(card.to_dict(), indent=2, allow_nan=False) + "\n")
                 .encode("utf-8"))
    return out


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by None: JSON has no such numbers (a
    metric with nothing to measure, e.g. relation accuracy without relations, is null)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def format_report(result: dict[str, Any]) -> str:
    """Human-readable lines for ``easel eval``."""
    head = (f"{result['family']}/{result['model']}: {result['n']} held-out images, "
            f"{result['seconds']:.1f} s")
    lines = [head]

    def walk(name: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{name}.{k}", v)
        elif isinstance(value, float):
            lines.append(f"  {name:36} {value:.4f}")
        else:
            lines.append(f"  {name:36} {value}")

    for key, value in result["metrics"].items():
        walk(key, value)
    return "\n".join(lines)


# --------------------------------------------------------------------------- judges


def scenes_accuracy(truth: list[dict[str, Any]],
                    readings: list[tuple[list[dict[str, Any]], str]]) -> dict[str, float]:
    """Per-part accuracy of scene readings against the true labels.

    count: the number of objects; background; shape/colour/size: per true object, matched to
    the reading left to right (a missed object counts as wrong); relation: for every ordered
    pair of true objects and every relation that holds clearly in the truth (as a captioned
    relation does), whether the read boxes satisfy it by the checker's rule; centre_error_px:
    mean distance of matched centres at 64 px.
    """
    from core.data.scenes import RELATION_MIN, RELATION_RATIO, RELATIONS, relation_holds

    count = background = 0
    parts = {"shape": 0, "colour": 0, "size": 0}
    n_objects = relations = rel_ok = 0
    centre_err: list[float] = []
    for lab, (objs, bg) in zip(truth, readings, strict=True):
        true_objs = sorted(lab["objects"], key=lambda o: o["bbox"][0] + o["bbox"][2])
        count += len(objs) == len(true_objs)
        background += bg == lab["background"]
        n_objects += len(true_objs)
        for t, r in zip(true_objs, objs, strict=False):
            for k in parts:
                parts[k] += t[k] == r[k]
            (tx0, ty0, tx1, ty1), (rx0, ry0, rx1, ry1) = t["bbox"], r["bbox"]
            centre_err.append(64 * math.hypot((tx0 + tx1 - rx0 - rx1) / 2,
                                              (ty0 + ty1 - ry0 - ry1) / 2))
        for i, a in enumerate(true_objs):
            for j, b in enumerate(true_objs):
                for rel in RELATIONS if i != j else ():
                    if relation_holds(a["bbox"], rel, b["bbox"], RELATION_MIN, RELATION_RATIO):
                        relations += 1
                        rel_ok += (len(objs) == len(true_objs)
                                   and relation_holds(objs[i]["bbox"], rel, objs[j]["bbox"]))
    n = len(truth)
    out = {"count": count / n, "background": background / n}
    out.update({k: v / max(n_objects, 1) for k, v in parts.items()})
    out["relation"] = rel_ok / relations if relations else float("nan")
    out["centre_error_px"] = float(np.mean(centre_err)) if centre_err else float("nan")
    return out


@evaluator("judge")
def evaluate_judge(path: Path, card: ModelCard, n: int, device: torch.device) -> dict[str, Any]:
    """Held-out accuracy per label; for the scenes judge also the GenEval checker's accuracy on
    real renders with their true captions (must be >= 0.97 to score models)."""
    judge = load_judge(str(path), device)
    cfg = judge.config
    samples = held_out_renders(cfg.world, n, cfg.size)
    images = np.stack([s.image for s in samples])
    out: dict[str, Any] = {}
    if cfg.slots:
        acc = scenes_accuracy([s.labels for s in samples], read_scenes(judge, images))
        out["held_out_accuracy"] = acc
        from core.evaluation.geneval import checker_accuracy

        out["checker_accuracy"] = checker_accuracy(judge, max(1, n // 6))
    else:
        reads = read_faces(judge, images)
        truth = [{k: s.labels[k] for k in cfg.heads} for s in samples]
        acc = metrics.agreement(reads, truth, list(cfg.heads))
        acc.pop("mean")
        out["held_out_accuracy"] = acc
    scored = [v for k, v in out["held_out_accuracy"].items()
              if k != "centre_error_px" and not math.isnan(v)]
    out["min_accuracy"] = min(scored)
    out["held_out_n"] = n
    return out


# --------------------------------------------------------------------------- image generators


@evaluator("dcgan")
@torch.no_grad()
def evaluate_dcgan(path: Path, card: ModelCard, n: int, device: torch.device
                   ) -> dict[str, Any]:
    """FJD of n samples (fixed noise) against n held-out renders of its world (or held-out
    files of its folder, when a judge is named)."""
    held = held_out_of(card)
    if held.judge is None:
        raise EvaluationError(f"{card.name} learned from a folder: a GAN has no reconstruction "
                              "or likelihood to measure, and FJD needs a judge (--judge faces "
                              "or scenes, when the pictures are like that world's).")
    g = load_model(path, device)
    real = None if held.is_world else held.images(n, g.config.image_size)
    n = n if real is None else len(real)
    gen = torch.Generator().manual_seed(0)
    parts = []
    for i in range(0, n, BATCH):
        z = torch.randn(min(BATCH, n - i), g.config.z_dim, generator=gen).to(device)
        parts.append(to_uint8(g(z)))
    out = held.fjd(np.concatenate(parts), real, device)
    return {**out, **_latent_figures(path, held.source, device)}


@evaluator("vae")
@torch.no_grad()
def evaluate_vae(path: Path, card: ModelCard, n: int, device: torch.device) -> dict[str, Any]:
    """FJD of n prior samples (when a judge applies); reconstruction PSNR/SSIM (posterior
    means) and bits per dimension from the negative ELBO (one posterior sample per image; an
    upper bound on the NLL in expectation) on n held-out renders or files."""
    held = held_out_of(card)
    vae = load_model(path, device)
    gen = torch.Generator().manual_seed(0)
    real = held.images(n, vae.config.image_size)
    n = len(real)
    out = vae_figures(vae, real, held, device, gen)
    if held.source == "faces":  # what the Latent panel's grid draws: the fitted Gaussian
        from core.pipelines.latent import attribute_directions, open_model

        fitted = attribute_directions(open_model(path, device))
        eps = torch.randn(n, vae.config.latent_dim, generator=gen, dtype=torch.float64)
        z = torch.from_numpy(fitted.sample_fit(eps.numpy())).float()
        drawn = np.concatenate([to_uint8(vae.decode(z[i:i + BATCH].to(device)))
                                for i in range(0, n, BATCH)])
        out["fjd_fitted_prior"] = world_fjd("faces", drawn, n, device)["fjd"]
    return {**out, **_latent_figures(path, held.source, device)}


@torch.no_grad()
def vae_figures(vae: Any, real: np.ndarray, held: HeldOut, device: torch.device,
                gen: torch.Generator) -> dict[str, Any]:
    """A VAE's reconstruction PSNR/SSIM and bits/dim on the pictures ``real``, and the FJD of
    as many prior samples (when ``held`` has a judge); ``gen`` draws samples and noise."""
    from core.nets.vae import kl_divergence

    n = len(real)
    samples, recons, nelbo = [], [], 0.0
    for i in range(0, n, BATCH):
        samples.append(to_uint8(vae.sample(min(BATCH, n - i), gen)))
        x = to_tensor(real[i:i + BATCH]).to(device)
        recon, mu, logvar = vae(x)
        recons.append(to_uint8(recon))
        noisy, _, _ = vae(x, torch.randn(mu.shape, generator=gen).to(device))
        nelbo += float((vae.nll(x, noisy) + kl_divergence(mu, logvar)).sum())
    dims = real[0].size
    # The decoder is a density over [-1, 1]: + dims*log(127.5) nats makes it one over 8-bit
    # values (uniform dequantisation), so bits/dim is comparable with other likelihood models.
    bpd = metrics.bits_per_dim(nelbo / n + dims * math.log(127.5), dims)
    recon_all = np.concatenate(recons)
    out = held.fjd(np.concatenate(samples), None if held.is_world else real, device)
    out.update({"recon_psnr": metrics.psnr(real, recon_all),
                "recon_ssim": metrics.ssim(real, recon_all), "bits_per_dim_elbo": bpd,
                "images": n})
    return out


def _latent_figures(path: Path, world: str, device: torch.device) -> dict[str, Any]:
    """Arithmetic and direction-edit accuracy (core.evaluation.latent) for faces models."""
    if world != "faces":
        return {}
    from core.evaluation.latent import latent_metrics
    from core.pipelines.latent import open_model

    return latent_metrics(open_model(path, device))


@evaluator("upscale")
@torch.no_grad()
def evaluate_upscale(path: Path, card: ModelCard, n: int, device: torch.device
                     ) -> dict[str, Any]:
    """PSNR/SSIM of the model's upscale of n held-out renders at the low resolution against
    the same seeds rendered at the high one, with PIL's bicubic upscale as the peer; and the
    median time to upscale one image (64 px for the x4 faces model) on ``device`` with the
    caller's torch threads, over 50 runs."""
    from PIL import Image

    from core.pipelines.upscale import upscale_tensor

    try:
        world = world_of(card)
    except EvaluationError:
        raise EvaluationError(f"{card.name} was not trained on a procedural world (faces or "
                              "scenes), so there are no held-out pairs to measure it on.") from None
    net = load_model(path, device)
    s = net.config.scale
    recipe = card.extra.get("recipe_resolved", {})
    high_size = int(recipe.get("data", {}).get("size", 256)) if isinstance(recipe, dict) else 256
    low_size = high_size // s
    high = np.stack([x.image for x in held_out_renders(world, n, high_size)])
    low = np.stack([x.image for x in held_out_renders(world, n, low_size)])
    outs = [to_uint8(upscale_tensor(net, to_tensor(low[i:i + BATCH]).to(device)))
            for i in range(0, n, BATCH)]
    out = np.concatenate(outs)
    bicubic = np.stack([np.asarray(Image.fromarray(im).resize((high_size, high_size),
                                                               Image.Resampling.BICUBIC))
                        for im in low])
    one = to_tensor(low[:1]).to(device)
    times = []
    for i in range(55):  # the first 5 warm up (allocator, oneDNN kernel choice)
        t0 = time.perf_counter()
        y = net(one)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= 5:
            times.append((time.perf_counter() - t0) * 1000)
    del y
    return {"psnr": metrics.psnr(high, out), "ssim": metrics.ssim(high, out),
            "bicubic_psnr": metrics.psnr(high, bicubic),
            "bicubic_ssim": metrics.ssim(high, bicubic),
            "ms_per_image": float(np.median(times)), "ms_threads": torch.get_num_threads(),
            "low_size": low_size, "high_size": high_size}
