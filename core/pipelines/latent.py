"""Latent pipelines: sample, encode (or invert), compose A - B + C with sliders, walk, and
user-defined directions, for any VAE or DCGAN (shipped or user-trained).

Latents travel inside the specs as plain tuples of floats, so a saved PNG's metadata holds the
exact latents and slider amounts that made it, and dropping it back restores them.

Jobs (all with ``panel = "latent"``):

- ``latent_info``: the latent models installed, and for one model its size, encoder, and
  direction names (attribute directions are computed on first use for models of the faces
  world, then saved beside the model's user files);
- ``latent_sample``: a seeded grid of prior samples, with their latents;
- ``latent_encode``: one image -> latent, by the VAE encoder or by GAN inversion (latent
  optimisation, Zhu et al. 2016, "Generative Visual Manipulation on the Natural Image
  Manifold", section 3.1) with progress;
- ``latent_edit``: mean(A) - mean(B) + mean(C) (Radford et al. 2016), moved along directions,
  decoded and upscaled x4;
- ``latent_walk``: N frames between two latents, linear or spherical;
- ``latent_direction``: a named direction from two sets of latents the user picked.

Sample, edit and walk apply the truncation trick (:func:`truncate`) to the latents they decode.
The latents they return ("latent", "latents") are the ones before it, so a latent always
stands for the same face and the truncation is only how it is drawn (it is affine, so
arithmetic on those latents then truncation equals arithmetic on the truncated ones); the
latents decoded are in "decoded".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core import paths
from core.algorithms import directions as dirs
from core.catalog import card_world, latent_models
from core.jobs import Context, JobError, Progress, Result, input_image, pipeline
from core.specs.latent import (  # noqa: F401  (the panels' names, importable here too)
    DEFAULT_MODEL,
    DEFAULT_UPSCALER,
    FAMILIES,
    MAX_AMOUNT,
    MAX_COUNT,
    MAX_FRAMES,
    MAX_INVERSION_STEPS,
    MAX_SLOT,
    NO_TRUNCATION,
    LatentDirectionSpec,
    LatentEditSpec,
    LatentEncodeSpec,
    LatentInfoSpec,
    Latents,
    LatentSampleSpec,
    LatentSpec,
    LatentWalkSpec,
)
from core.tensors import to_tensor, to_uint8

log = logging.getLogger(__name__)

DIRECTION_SAMPLES = 2000  # labelled latents per attribute-direction computation


@dataclass
class LatentModel:
    """One VAE or DCGAN behind a common interface: latents (N, D) float64 <-> images."""

    name: str
    family: str  # "vae" | "dcgan"
    path: Path
    sha256: str
    world: str  # training data ("faces", "scenes" or a folder)
    net: torch.nn.Module
    device: torch.device

    @property
    def dim(self) -> int:
        cfg = self.net.config
        return int(cfg.latent_dim if self.family == "vae" else cfg.z_dim)

    @property
    def size(self) -> int:
        return int(self.net.config.image_size)

    @property
    def has_encoder(self) -> bool:
        return self.family == "vae"

    def decode_tensor(self, z: torch.Tensor) -> torch.Tensor:
        z = z.to(self.device, torch.float32)
        return self.net.decode(z) if self.family == "vae" else self.net(z)

    @torch.no_grad()
    def decode(self, z: np.ndarray) -> np.ndarray:
        return to_uint8(self.decode_tensor(torch.as_tensor(np.asarray(z, np.float32))))

    @torch.no_grad()
    def encode(self, images: np.ndarray) -> np.ndarray:
        """Posterior means of uint8 (N, S, S, 3) images (VAE only)."""
        if not self.has_encoder:
            raise JobError(f"{self.name} is a GAN: it has no encoder (use inversion).")
        mu, _ = self.net.encode(to_tensor(images).to(self.device))
        return mu.detach().cpu().double().numpy()  # float64 on the host: MPS has none

    def check_latents(self, latents: Latents | tuple[float, ...], what: str) -> None:
        if not latents:
            return
        rows = latents if isinstance(latents[0], tuple) else [latents]
        for z in rows:
            if len(z) != self.dim:
                raise JobError(f"{what} has latents of {len(z)} numbers but {self.name} uses "
                               f"{self.dim}: they come from another model.")


def resolve(model: str) -> Path:
    """The weights file of an installed model's name (core.weights.find_model) or a path."""
    from core.weights import WeightsError, resolve_weights

    try:
        return resolve_weights(model, FAMILIES, "latent model")
    except WeightsError as exc:
        raise JobError(str(exc)) from None


def load(model: str, ctx: Context) -> LatentModel:
    """The model a spec names, through the job's model cache."""
    return open_model(resolve(model), ctx.device, ctx.models)


def open_model(path: str | Path, device: Any = "cpu", models: Any = None) -> LatentModel:
    """A VAE or DCGAN weights file as a LatentModel (``models``: a ModelCache, optional)."""
    from core.weights import load_model, read_card

    card = read_card(path)
    if card.family not in FAMILIES:
        raise JobError(f"{card.name} is a {card.family} model, not a VAE or a DCGAN.")
    net = models.get(path, device) if models is not None else load_model(path, device)
    return LatentModel(card.name, card.family, Path(path), card.sha256, card_world(card),
                       net.eval(), torch.device(device))


# --------------------------------------------------------------------------- directions

_DIRECTION_CACHE: dict[tuple[str, int], dirs.DirectionSet] = {}
_DIRECTION_LOCK = threading.Lock()


def user_directions_path(model: LatentModel) -> Path:
    """Where new directions of ``model`` are saved: beside a user model, or in the user models
    folder for a shipped one (the install folder may be read-only)."""
    return paths.models_dir() / model.family / f"{model.name}.directions.json"


def _read(path: Path, model: LatentModel) -> dirs.DirectionSet | None:
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return None
    with _DIRECTION_LOCK:
        cached = _DIRECTION_CACHE.get((str(path), stamp))
    if cached is None:
        try:
            cached = dirs.load_directions(path)
        except dirs.DirectionError as exc:
            log.warning("ignoring %s: %s", path, exc)
            return None
        with _DIRECTION_LOCK:
            _DIRECTION_CACHE[(str(path), stamp)] = cached
    if cached.model_sha256 != model.sha256:
        log.warning("ignoring %s: made for other weights of %s", path, model.name)
        return None
    return cached


def model_directions(model: LatentModel, compute: bool = False,
                     check: Any = None) -> dirs.DirectionSet:
    """The directions saved for ``model`` (shipped file, then the user's on top). With
    ``compute``, attribute directions missing for a faces-world model are computed and saved."""
    merged = dirs.DirectionSet(model.name, model.sha256)
    found = [f for f in (_read(p, model) for p in dict.fromkeys(
        [dirs.directions_path(model.path), user_directions_path(model)])) if f]
    for f in found:
        for by in f.directions.values():
            for d in by.values():
                merged.add(d)
        if f.fit_mean is not None and f.fit_mean.shape == (model.dim,):
            merged.fit_mean, merged.fit_chol = f.fit_mean, f.fit_chol
    merged.attributes_done = any(f.attributes_done for f in found)
    if compute and not merged.attributes_done and model.world == "faces":
        computed = attribute_directions(model, check=check)
        path = user_directions_path(model)
        saved = _read(path, model) or dirs.DirectionSet(model.name, model.sha256)
        for by in computed.directions.values():
            for d in by.values():
                saved.add(d)
                merged.add(d)
        saved.fit_mean = merged.fit_mean = computed.fit_mean
        saved.fit_chol = merged.fit_chol = computed.fit_chol
        saved.attributes_done = merged.attributes_done = True
        dirs.save_directions(path, saved)
    return merged


def direction_names() -> list[str]:
    """Attribute direction names for the faces world: a binary attribute is named by itself
    (towards its second class), a multi-class one as ``attribute:class`` (class vs the rest)."""
    from core.data.faces import ATTRIBUTES

    names = []
    for attr, classes in ATTRIBUTES.items():
        names += [attr] if len(classes) == 2 else [f"{attr}:{c}" for c in classes]
    return names


def labelled_latents(model: LatentModel, n: int | None = None, seed: int = 0,
                     check: Any = None, split: str = "validation"
                     ) -> tuple[np.ndarray, list[dict[str, str]]]:
    """``n`` latents with faces labels: renders of ``split`` encoded by a VAE, or DCGAN prior
    samples (from ``seed``) read by the faces judge."""
    from core.data.worlds import get_world, split_seeds

    n = n or DIRECTION_SAMPLES
    lat, labels = [], []
    world = get_world("faces")
    gen = torch.Generator().manual_seed(seed)
    judge = None
    for start in range(0, n, 250):
        if check is not None:
            check()
        k = min(250, n - start)
        if model.has_encoder:
            samples = [world.render(s, size=model.size)
                       for s in split_seeds(split, k, offset=seed * n + start)]
            lat.append(model.encode(np.stack([s.image for s in samples])))
            labels += [dict(s.labels) for s in samples]
        else:
            from core.judges import load_judge, read_faces

            judge = judge or load_judge("faces", model.device)
            z = torch.randn(k, model.dim, generator=gen, dtype=torch.float64)
            lat.append(z.numpy())
            labels += read_faces(judge, model.decode(z.numpy()))
    return np.concatenate(lat), labels


def attribute_directions(model: LatentModel, n: int | None = None,
                         check: Any = None) -> dirs.DirectionSet:
    """Both kinds of direction for every faces attribute (see direction_names)."""
    from core.data.faces import ATTRIBUTES

    z, labels = labelled_latents(model, n, check=check)
    out = dirs.DirectionSet(model.name, model.sha256, attributes_done=True)
    if model.has_encoder:
        out.fit(z)
    for name in direction_names():
        attr, _, cls = name.partition(":")
        cls = cls or ATTRIBUTES[attr][1]
        pos = np.array([lab[attr] == cls for lab in labels])
        if pos.sum() < dirs.MIN_SET or (~pos).sum() < dirs.MIN_SET:
            log.info("%s: too few samples of %s to compute a direction", model.name, name)
            continue
        for method in dirs.METHODS:
            out.add(dirs.direction(z[pos], z[~pos], name, method))
    return out


# --------------------------------------------------------------------------- truncation


def truncate(model: LatentModel, z: np.ndarray, psi: float, ctx: Context) -> np.ndarray:
    """The truncation trick: latents ``z`` (D,) or (N, D) pulled toward the mean latent,
    z' = mean + psi (z - mean). psi = 1 leaves them as they are, psi = 0 makes every one the
    mean; in between trades variety for fidelity (more typical faces, fewer odd ones).

    The mean is the centre of the prior the grid samples from (run_sample). For a DCGAN that is
    0, the mean of its N(0, I) noise, so this is the "pull toward the mean" form of BigGAN's
    truncation trick (Brock et al. 2019, section 3.1, which resamples large noise values
    instead; StyleGAN, Karras et al. 2019, appendix B, scales as here). For a VAE it is 0 for
    its N(0, I) prior, or the mean of the Gaussian fitted to its encoded faces when the grid
    samples from that fit: either way prior draws become draws with their spread scaled by psi
    (a lower sampling temperature, as in Glow, Kingma & Dhariwal 2018).
    """
    if psi >= NO_TRUNCATION:
        return z
    mean = np.zeros(model.dim)
    if model.has_encoder:  # the same fit, computed on first use, as run_sample draws from
        fit = model_directions(model, compute=True, check=ctx.check).fit_mean
        if fit is not None:
            mean = fit
    return mean + psi * (np.asarray(z, dtype=np.float64) - mean)


# --------------------------------------------------------------------------- upscaling


def upscaled(images: torch.Tensor, ctx: Context, info: dict[str, Any]) -> torch.Tensor:
    """x4 with the shipped super-resolution model, or the input with a note if there is none."""
    from core.pipelines.upscale import load_upscaler, upscale_tensor

    try:
        net = load_upscaler(DEFAULT_UPSCALER, ctx)
    except JobError as exc:
        info["note"] = f"Not upscaled: {exc}"
        return images
    info["upscaled"] = True
    with torch.no_grad():
        return upscale_tensor(net, images)


def _decode(model: LatentModel, z: np.ndarray, ctx: Context, upscale: bool,
            info: dict[str, Any]) -> list[np.ndarray]:
    with torch.no_grad():
        x = model.decode_tensor(torch.as_tensor(np.asarray(z, np.float32)))
        if upscale:
            x = upscaled(x, ctx, info)
    return list(to_uint8(x))


# --------------------------------------------------------------------------- pipelines


@pipeline("latent_info")
def run_info(spec: LatentInfoSpec, ctx: Context) -> Generator[Progress, None, Result]:
    models = latent_models()
    yield Progress(0, 2, "Loading the model")
    model = load(spec.model, ctx)
    yield Progress(1, 2, "Reading its directions")
    dset = model_directions(model, compute=True, check=ctx.check)
    info = {"models": models, "model": model.name, "family": model.family, "dim": model.dim,
            "size": model.size, "has_encoder": model.has_encoder, "world": model.world,
            "directions": dset.names(),
            "user_directions": sorted({d.name for by in dset.directions.values()
                                       for d in by.values() if d.source == "user"})}
    return Result(images=[], spec=spec, info=info)


@pipeline("latent_sample")
def run_sample(spec: LatentSampleSpec, ctx: Context) -> Generator[Progress, None, Result]:
    model = load(spec.model, ctx)
    yield Progress(0, 1, "Sampling")
    eps = torch.randn(spec.count, model.dim, generator=ctx.generator, dtype=torch.float64)
    z, prior = eps.numpy(), "N(0, I)"
    if model.has_encoder:
        dset = model_directions(model, compute=True, check=ctx.check)
        if dset.fit_mean is not None:
            z, prior = dset.sample_fit(z), "Gaussian fitted to encoded faces"
    decoded = truncate(model, z, spec.truncation, ctx)
    images = _decode(model, decoded, ctx, False, {})
    # "latents": the draws, before the truncation trick (an edit of one with the same
    # truncation redraws its picture); "decoded": what the pictures were decoded from
    return Result(images=images, spec=spec, info={"latents": z.tolist(),
                                                  "decoded": decoded.tolist(),
                                                  "model": model.name, "size": model.size,
                                                  "prior": prior})


@pipeline("latent_edit")
def run_edit(spec: LatentEditSpec, ctx: Context) -> Generator[Progress, None, Result]:
    if not spec.a:
        raise JobError("Slot A is empty: pick a face from the grid or drop an image on it.")
    if bool(spec.b) != bool(spec.c):
        raise JobError("Fill both B and C for A - B + C, or leave both empty to edit A alone.")
    model = load(spec.model, ctx)
    for slot in ("a", "b", "c"):
        model.check_latents(getattr(spec, slot), f"Slot {slot.upper()}")
    yield Progress(0, 1, "Composing")
    z = dirs.slot_mean(np.array(spec.a))
    if spec.b:
        z = z - dirs.slot_mean(np.array(spec.b)) + dirs.slot_mean(np.array(spec.c))
    if spec.directions:
        known = model_directions(model, compute=True, check=ctx.check)
        chosen = {**known.get("mean"), **known.get(spec.method)}
        try:
            z = dirs.apply(z, chosen, dict(spec.directions))
        except dirs.DirectionError as exc:
            raise JobError(str(exc)) from None
    decoded = truncate(model, z, spec.truncation, ctx)
    info: dict[str, Any] = {"latent": [float(v) for v in z],
                            "decoded": [float(v) for v in decoded], "upscaled": False}
    images = _decode(model, decoded[None], ctx, spec.upscale, info)
    return Result(images=images, spec=spec, info=info)


@pipeline("latent_walk")
def run_walk(spec: LatentWalkSpec, ctx: Context) -> Generator[Progress, None, Result]:
    if not spec.start or not spec.end:
        raise JobError("A walk needs two picks: its start and its end.")
    model = load(spec.model, ctx)
    model.check_latents(spec.start, "The walk's start")
    model.check_latents(spec.end, "The walk's end")
    yield Progress(0, 1, f"Walking {spec.frames} frames")
    z = dirs.walk(np.array(spec.start), np.array(spec.end), spec.frames, spec.mode)
    decoded = truncate(model, z, spec.truncation, ctx)
    info: dict[str, Any] = {"latents": z.tolist(), "decoded": decoded.tolist(),
                            "upscaled": False}
    images = _decode(model, decoded, ctx, spec.upscale, info)
    return Result(images=images, spec=spec, info=info)


@pipeline("latent_direction")
def run_direction(spec: LatentDirectionSpec, ctx: Context) -> Generator[Progress, None, Result]:
    model = load(spec.model, ctx)
    model.check_latents(spec.these, "The 'these' set")
    model.check_latents(spec.those, "The 'those' set")
    if spec.name in direction_names():
        raise JobError(f"{spec.name!r} is an attribute direction; choose another name.")
    yield Progress(0, 1, "Computing the direction")
    try:
        d = dirs.direction(np.array(spec.these), np.array(spec.those), spec.name, spec.method,
                           source="user")
    except dirs.DirectionError as exc:
        raise JobError(str(exc)) from None
    path = user_directions_path(model)
    saved = _read(path, model) or dirs.DirectionSet(model.name, model.sha256)
    for method in dirs.METHODS:  # one user direction serves both slider methods
        saved.add(dirs.Direction(d.name, d.vector, d.scale, method, d.n_pos, d.n_neg, "user"))
    dirs.save_directions(path, saved)
    return Result(images=[], spec=spec, info={"direction": d.name, "scale": d.scale,
                                              "path": str(path)})


@pipeline("latent_encode")
def run_encode(spec: LatentEncodeSpec, ctx: Context) -> Generator[Progress, None, Result]:
    rgb = input_image(spec.image, "Drop an image to encode.")[..., :3]
    model = load(spec.model, ctx)
    method = spec.method
    if method == "auto":
        method = "encoder" if model.has_encoder else "inversion"
    if method == "encoder" and not model.has_encoder:
        raise JobError(f"{model.name} is a GAN and has no encoder: choose inversion, which "
                       "searches for the latent that redraws the image.")
    box = crop_box(rgb.shape[1], rgb.shape[0], spec.crop)
    target = fit_to_frame(rgb, box, model.size)
    info: dict[str, Any] = {"method": method, "crop": list(box)}
    if method == "encoder":
        yield Progress(0, 1, "Encoding")
        z = model.encode(target[None])[0]
    else:
        z = yield from invert(model, target, spec.steps, ctx)
    recon = model.decode(z[None])[0]
    err = np.mean((recon.astype(np.float64) - target) ** 2)
    info.update({"latent": [float(v) for v in z],
                 "psnr": float(10 * np.log10(255.0 ** 2 / max(err, 1e-10)))})
    info.update(world_check(model, target, ctx))
    return Result(images=[recon], spec=spec, info=info)


def world_check(model: LatentModel, picture: np.ndarray, ctx: Context) -> dict[str, Any]:
    """``world_score`` (core.judges.world_scores: above 1 is outside the world) of a picture
    given to a model of a procedural world, by that world's judge, and a ``note`` when it
    lies far outside; nothing for a model of a folder or without an installed judge."""
    from core.data.worlds import world_names
    from core.judges import FAR, JudgeError, load_judge, world_scores
    from core.weights import WeightsError

    if model.world not in world_names():
        return {}
    try:
        judge = load_judge(model.world, model.device, ctx.models)
    except (JudgeError, WeightsError):
        return {}
    ctx.check()
    scores = world_scores(judge, picture[None])
    if scores is None:
        return {}
    score = float(scores[0])
    out: dict[str, Any] = {"world_score": score}
    if score > FAR:
        out["note"] = (f"This picture looks far from the {model.world} world {model.name} "
                       f"learned (the {model.world} judge's out-of-world score is {score:.1f}; "
                       f"the world's own pictures stay below 1). It is encoded anyway: expect "
                       f"the nearest {model.world} picture the model can draw.")
    return out


def crop_box(width: int, height: int, crop: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The square region of the image a model sees: the given box clipped to the image, or
    the centred square. Models are square, so a non-square box is squared about its centre."""
    if crop:
        left, top, right, bottom = crop
        left, top = max(0, left), max(0, top)
        right, bottom = min(width, right), min(height, bottom)
        if right - left < 4 or bottom - top < 4:
            raise JobError(f"The crop {tuple(crop)} leaves less than 4x4 pixels of the "
                           f"{width}x{height} image.")
    else:
        left, top, right, bottom = 0, 0, width, height
    side = min(right - left, bottom - top)
    x0 = left + (right - left - side) // 2
    y0 = top + (bottom - top - side) // 2
    return x0, y0, x0 + side, y0 + side


def fit_to_frame(rgb: np.ndarray, box: tuple[int, int, int, int], size: int) -> np.ndarray:
    """The box of ``rgb`` resized to size x size (Lanczos; area-like when shrinking)."""
    from PIL import Image

    x0, y0, x1, y1 = box
    im = Image.fromarray(np.ascontiguousarray(rgb[y0:y1, x0:x1]))
    return np.asarray(im.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0))


def invert(model: LatentModel, target: np.ndarray, steps: int, ctx: Context
           ) -> Generator[Progress, None, np.ndarray]:
    """GAN inversion by latent optimisation (Zhu et al. 2016, section 3.1): start from the
    best of a few prior samples (or the encoder's answer), then Adam on the pixel error with a
    soft pull of |z|^2 towards its typical value D so the latent stays on the prior's shell."""
    x = to_tensor(target).to(model.device)
    with torch.no_grad():
        if model.has_encoder:
            z0 = torch.as_tensor(model.encode(target[None]), dtype=torch.float32)
        else:
            cand = torch.randn(64, model.dim, generator=ctx.generator)
            err = (model.decode_tensor(cand) - x).pow(2).flatten(1).mean(1)
            z0 = cand[int(err.argmin())][None]
    z = z0.to(model.device).clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=0.05)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for p in model.net.parameters():
        p.requires_grad_(False)
    try:
        for step in range(steps):
            ctx.check()
            img = model.decode_tensor(z)
            loss = F.mse_loss(img, x) + 1e-3 * (z.pow(2).mean() - 1).pow(2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if step % 10 == 0 or step == steps - 1:
                yield Progress(step + 1, steps, f"Inverting: error {loss.item():.4f}",
                               to_uint8(img)[0])
    finally:
        for p in model.net.parameters():
            p.requires_grad_(True)
    return z.detach().cpu().double().numpy()[0]
