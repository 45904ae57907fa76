"""What the judge sees: optimising the input of one of Easel's trained classifiers.

Three jobs on any picture, with any classifier (a judge: the shipped faces and scenes judges,
or one the user trained):

- Feature inversion (Mahendran & Vedaldi 2015, "Understanding deep image representations by
  inverting them"): from noise, Adam finds a picture whose features at a chosen layer match the
  input's, under a total-variation regulariser (their eq. 4, beta = 2) and a range penalty that
  keeps pixels inside [-1, 1] (their bounded-range term). How much of the picture comes back
  says how much the layer keeps.
- DeepDream (Mordvintsev et al. 2015) and class visualisation (Simonyan et al. 2014; Nguyen
  et al. 2015): normalised gradient ascent on what the network reads, the log-probability of a
  class or, without one, the energy of a layer's activations, coarse to fine over octaves with
  a random shift (jitter) each step; from the picture or from grey ("draw the class itself").
- Adversarial examples (Goodfellow et al. 2015, FGSM; Madry et al. 2018, PGD): within an
  L-infinity budget, the perturbation that flips the reading of one attribute, stopped at the
  first step whose 8-bit picture reads flipped and then shrunk to the smallest multiple of
  itself that still flips. It fools this network only: another reader (bench/judge.py measures
  a second, independently trained one) mostly reads the picture as before.

The network always reads a picture as core.judges reads it (``to_tensor``: squashed to its
input size, bilinear with antialiasing); here that resize is differentiable, so what the
optimisation sees is exactly what reading the saved 8-bit result gives.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core.jobs import (
    Context,
    JobError,
    Progress,
    Result,
    input_image,
    job_model,
    job_weights,
    pipeline,
)
from core.nets.judge import Judge
from core.specs.judge import (
    FAMILY,
    MODES,  # noqa: F401  (the CLI builds specs from here: importing it registers the pipelines)
    JudgeDreamSpec,
    JudgeFoolSpec,
    JudgeInvertSpec,
    JudgeSpec,
    layer_names,
    split_attribute,
)
from core.tensors import long_side_size, resize, to_tensor, to_uint8

FOOL_SIZE = 256  # default long side an adversarial example is worked at
PGD_STEP = 2.5  # PGD's step, times budget / steps (Madry et al. 2018: 2.5 eps / steps)
SHRINK_STEPS = 6  # halvings of the search for the smallest multiple that still flips
PREVIEW_EVERY = 5


# --------------------------------------------------------------------------- the classifier


@dataclass
class Classifier:
    """A judge opened for a job: the net, its name and weights' sha256, and its layers."""

    net: Judge
    name: str
    sha256: str

    @property
    def size(self) -> int:
        return int(self.net.config.size)

    def blocks(self) -> list[torch.nn.Module]:
        return [*self.net.trunk, *self.net.top]

    def layers(self) -> list[str]:
        """The layers as the user names them, input to output: conv1..convN, then pooled."""
        return layer_names(len(self.blocks()))

    def describe_layers(self) -> list[str]:
        out, side = [], self.size
        for name, block in zip(self.layers(), self.blocks(), strict=False):
            conv = block[0]
            side = -(-side // int(conv.stride[0]))
            out.append(f"{name} ({side} px, {conv.out_channels} channels)")
        return out + [f"pooled ({self.net.feature_dim} features)"]

    def layer(self, name: str, default: str) -> tuple[str, int]:
        """(name, index) of a layer the user named ("" = ``default``); JobError listing them."""
        name = (name or default).strip().lower()
        names = self.layers()
        if name not in names:
            raise JobError(f"{self.name} has no layer {name!r}; its layers are: "
                           f"{', '.join(self.describe_layers())}.")
        return name, names.index(name)

    def features(self, x: torch.Tensor, index: int) -> torch.Tensor:
        """Activations of layer ``index`` for pictures ``x`` already at the net's view."""
        blocks = self.blocks()
        for i, block in enumerate(blocks):
            x = block(x)
            if i == index:
                return x
        return x.mean(dim=(2, 3))

    def view(self, x: torch.Tensor) -> torch.Tensor:
        """Pictures in [-1, 1] as the net reads them (core.tensors.to_tensor, differentiable)."""
        s = self.size
        if tuple(x.shape[-2:]) == (s, s):
            return x
        return F.interpolate(x, size=(s, s), mode="bilinear", antialias=True,
                             align_corners=False)

    def heads(self, slots: bool) -> dict[str, list[str]]:
        heads = dict(self.net.config.heads)
        if slots:
            heads.update({k: v for k, v in self.net.config.slot_heads.items() if k not in heads})
        return heads

    def attribute(self, text: str, slots: bool) -> tuple[str, int | None]:
        """(head, class index or None) of "NAME" or "NAME=CLASS"; JobError naming the heads
        and classes there are. Object labels (``slots``) are read from the most likely
        object: the dream can draw one, but a flip is asked of picture-level labels."""
        name, cls = split_attribute(text)
        heads = self.heads(slots)
        if name not in heads:
            other = "" if slots or name not in self.net.config.slot_heads else (
                f" ({name!r} is a label of its objects; only picture labels can be flipped)")
            listing = "; ".join(f"{k}: {', '.join(v)}" for k, v in heads.items())
            raise JobError(f"{self.name} reads no attribute {name!r}{other}; it reads "
                           f"{listing}.")
        if not cls:
            return name, None
        if cls not in heads[name]:
            raise JobError(f"{self.name} has no class {cls!r} of {name}; the classes are "
                           f"{', '.join(heads[name])}.")
        return name, heads[name].index(cls)

    def log_probs(self, x: torch.Tensor, head: str) -> torch.Tensor:
        """(N, C) log-probabilities of ``head``'s classes for pictures in [-1, 1] (any size).
        An object label's are those of the most likely object of that class: per class, the
        best cell's log P(object) + log P(class | object)."""
        out = self.net(self.view(x))
        if head in out:
            return F.log_softmax(out[head].float(), -1)
        present = F.logsigmoid(out["grid.present"].float()).flatten(1)[..., None]
        labels = F.log_softmax(out[f"grid.{head}"].float(), -1).flatten(1, 2)
        return (present + labels).amax(1)

    @torch.no_grad()
    def probabilities(self, picture: np.ndarray, head: str) -> np.ndarray:
        """(C,) probabilities of ``head``'s classes for one uint8 picture, as read from it."""
        device = next(self.net.parameters()).device
        x = to_tensor(picture[None]).to(device)
        return self.log_probs(x, head)[0].exp().cpu().double().numpy()


def open_classifier(name: str, ctx: Context) -> Classifier:
    """The classifier called ``name`` (or a .safetensors path) through the job's model cache,
    its sha256 checked; JobError for an unknown model or one that is not a classifier."""
    from core.cards import find_model, list_models

    found = find_model(name)
    if found is not None and found.family != FAMILY:
        judges = ", ".join(m.name for m in list_models(FAMILY) if not m.error) or "none"
        raise JobError(f"{name} is a {found.family} model, not a classifier: what the judge "
                       f"sees is shown for classifiers only (installed: {judges}).")
    path = job_weights(name, FAMILY, "classifier (judge)")
    net, sha = job_model(path, ctx, Judge, "classifier (judge)")
    net.weights_sha256 = sha  # the world fit is kept per weights file (core.judges.world_fit)
    return Classifier(net, path.stem, sha)


# --------------------------------------------------------------------------- shared steps


def _picture(spec: JudgeSpec, long_side: int, notes: list[str]) -> np.ndarray:
    """The job's picture as RGB, its long side brought down to ``long_side`` when longer
    (0: as it is)."""
    image = input_image(spec.image, "No picture: open one first.")
    rgb = np.ascontiguousarray(image[..., :3])
    h, w = rgb.shape[:2]
    if long_side and max(h, w) > long_side:
        nh, nw = long_side_size(h, w, long_side)
        notes.append(f"The picture ({w}x{h}) was worked at {nw}x{nh}.")
        rgb = resize(rgb, nh, nw)
    return rgb


def _world_note(clf: Classifier, picture: np.ndarray, ctx: Context, notes: list[str]
                ) -> float | None:
    """The picture's out-of-world score (core.judges.world_scores) and, when it lies far from
    the world the classifier learned, a note: it is run anyway."""
    from core.judges import FAR, world_scores

    ctx.check()
    scores = world_scores(clf.net, picture[None])  # read at its input size, as judges read
    if scores is None:
        return None
    score = float(scores[0])
    if score > FAR:
        world = clf.net.config.world
        notes.append(f"This picture is far from the {world} world {clf.name} was trained on "
                     f"(out-of-world score {score:.1f}; the world's own pictures stay below "
                     f"1): it was run anyway, but what the network reads here means little.")
    return score


def _tensor(picture: np.ndarray, ctx: Context) -> torch.Tensor:
    return to_tensor(picture[None]).to(ctx.device)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 pictures of one size (capped at 99 for identical ones)."""
    err = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if err == 0 else min(99.0, 10 * float(np.log10(255.0 ** 2 / err)))


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of neighbouring pixels (Mahendran & Vedaldi eq. 4, beta 2)."""
    return ((x[..., 1:, :] - x[..., :-1, :]) ** 2).mean() + \
        ((x[..., :, 1:] - x[..., :, :-1]) ** 2).mean()


def _readings(clf: Classifier, picture: np.ndarray) -> dict[str, str]:
    return {head: classes[int(np.argmax(clf.probabilities(picture, head)))]
            for head, classes in clf.heads(False).items()}


def _info(clf: Classifier, notes: list[str], score: float | None, **more: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"models": {clf.name: clf.sha256}, "classifier": clf.name,
                            "notes": notes, **more}
    if score is not None:
        info["world_score"] = round(score, 3)
    return info


def grad(loss: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """d loss / d x alone: the (shared, cached) net's parameters get no gradients."""
    return torch.autograd.grad(loss, x)[0]


# --------------------------------------------------------------------------- inversion


@pipeline("judge_invert")
def run_invert(spec: JudgeInvertSpec, ctx: Context) -> Generator[Progress, None, Result]:
    yield Progress(0, spec.steps, "Opening the classifier")
    clf = open_classifier(spec.model, ctx)
    layer, index = clf.layer(spec.layer, clf.layers()[len(clf.layers()) // 2 - 1])
    notes: list[str] = []
    if spec.size:
        notes.append(f"Inversion works at the network's own input size ({clf.size} px).")
    picture = _picture(spec, 0, notes)  # read at the network's input size (Classifier.view)
    score = _world_note(clf, picture, ctx, notes)
    seen = to_uint8(clf.view(to_tensor(picture[None])))[0]  # the picture as the net reads it
    x0 = _tensor(seen, ctx)
    with torch.no_grad():
        target = clf.features(x0, index)
        scale = target.pow(2).mean().clamp_min(1e-8)
    noise = torch.randn(x0.shape, generator=ctx.generator) * 0.1
    x = noise.to(ctx.device).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=float(spec.lr))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, spec.steps)
    for step in range(spec.steps):
        ctx.check()
        feat = (clf.features(x, index) - target).pow(2).mean() / scale
        loss = feat + float(spec.tv_weight) * total_variation(x) \
            + float(spec.range_weight) * F.relu(x.abs() - 1).pow(2).mean()
        x.grad = grad(loss, x)
        opt.step()
        sched.step()
        last = step == spec.steps - 1
        yield Progress(step + 1, spec.steps, f"Inverting {layer}: feature error "
                       f"{feat.item():.4f}", preview=to_uint8(x.detach())[0]
                       if (last or step % PREVIEW_EVERY == 0) and ctx.wants_preview() else None)
    out = to_uint8(x.detach())[0]
    with torch.no_grad():
        err = float((clf.features(_tensor(out, ctx), index) - target).pow(2).mean() / scale)
    before, after = _readings(clf, seen), _readings(clf, out)
    agree = [h for h in before if before[h] == after[h]]
    info = _info(clf, notes, score, layer=layer, psnr=round(psnr(out, seen), 3),
                 feature_error=round(err, 5), readings_before=before, readings_after=after,
                 agreement=round(len(agree) / max(1, len(before)), 4))
    return Result(images=[out, seen], spec=spec, info=info)


# --------------------------------------------------------------------------- dream


def _octaves(h: int, w: int, count: int, scale: float) -> list[tuple[int, int]]:
    sizes = [(max(1, round(h / scale ** k)), max(1, round(w / scale ** k)))
             for k in range(count)]
    return sizes[::-1]


@pipeline("judge_dream")
def run_dream(spec: JudgeDreamSpec, ctx: Context) -> Generator[Progress, None, Result]:
    total = spec.steps * spec.octaves
    yield Progress(0, total, "Opening the classifier")
    clf = open_classifier(spec.model, ctx)
    notes: list[str] = []
    head, cls = (clf.attribute(spec.attribute, slots=True) if spec.attribute else (None, None))
    if head is not None and cls is None:
        raise JobError(f"Name the class to amplify: {head}=CLASS (one of "
                       f"{', '.join(clf.heads(True)[head])}).")
    if head is not None and spec.layer:
        raise JobError("A dream amplifies either a class (--attribute NAME=CLASS) or a layer's "
                       "activations (--layer), not both.")
    layer, index = (None, -1) if head is not None else clf.layer(
        spec.layer, clf.layers()[-3])
    picture = _picture(spec, spec.size or clf.size, notes)
    score = _world_note(clf, picture, ctx, notes) if spec.start == "picture" else None
    h, w = picture.shape[:2]
    start = picture if spec.start == "picture" else np.full_like(picture, 128)
    base = _tensor(start, ctx)
    if spec.start == "grey":  # a little noise to break the symmetry of a flat picture
        base = base + (torch.randn(base.shape, generator=ctx.generator) * 0.02).to(ctx.device)

    def objective(x: torch.Tensor) -> torch.Tensor:
        if head is not None:
            return clf.log_probs(x, head)[0, cls]
        return clf.features(clf.view(x), index).pow(2).mean()

    def measure(img: np.ndarray) -> float:
        with torch.no_grad():
            return float(objective(_tensor(img, ctx)))

    x: torch.Tensor | None = None
    done = 0
    for k, (oh, ow) in enumerate(_octaves(h, w, spec.octaves, float(spec.octave_scale))):
        base_k = F.interpolate(base, size=(oh, ow), mode="bilinear", antialias=True,
                               align_corners=False)
        if x is None:
            x = base_k.clone()
        else:  # the detail dreamed so far, carried up onto this octave's picture
            prev = F.interpolate(base, size=x.shape[-2:], mode="bilinear", antialias=True,
                                 align_corners=False)
            x = base_k + F.interpolate(x - prev, size=(oh, ow), mode="bilinear",
                                       align_corners=False)
        for i in range(spec.steps):
            ctx.check()
            dy, dx = (int(v) for v in ctx.rng.integers(-spec.jitter, spec.jitter + 1, 2))
            xs = torch.roll(x, (dy, dx), (2, 3)).detach().requires_grad_(True)
            value = objective(xs)
            loss = value - float(spec.tv_weight) * total_variation(xs)
            g = torch.roll(grad(loss, xs), (-dy, -dx), (2, 3))
            with torch.no_grad():  # DeepDream's step: the gradient normalised by its mean size
                x = (x + float(spec.strength) * g / g.abs().mean().clamp_min(1e-12)).clamp(-1, 1)
            done += 1
            last = done == total
            yield Progress(done, total, f"Octave {k + 1} of {spec.octaves} ({ow}x{oh}): step "
                           f"{i + 1} of {spec.steps}, objective {value.item():.3f}",
                           preview=to_uint8(x)[0] if (last or i % PREVIEW_EVERY == 0)
                           and ctx.wants_preview() else None)
    assert x is not None
    out = to_uint8(F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
                   if tuple(x.shape[-2:]) != (h, w) else x)[0]
    change = np.abs(out.astype(np.int16) - start.astype(np.int16))
    more: dict[str, Any] = {"start": spec.start, "psnr": round(psnr(out, start), 3),
                            "linf_255": int(change.max()),
                            "mean_change_255": round(float(change.mean()), 3)}
    if head is not None:
        assert cls is not None
        before = float(clf.probabilities(start, head)[cls])
        after = float(clf.probabilities(out, head)[cls])
        more.update(attribute=f"{head}={clf.heads(True)[head][cls]}",
                    probability_before=round(before, 5), probability_after=round(after, 5))
    else:
        more.update(layer=layer, activation_before=round(measure(start), 5),
                    activation_after=round(measure(out), 5))
    return Result(images=[out], spec=spec, info=_info(clf, notes, score, **more))


# --------------------------------------------------------------------------- adversarial


def magnified(delta: np.ndarray) -> tuple[np.ndarray, float]:
    """A perturbation (int, -255..255) as a picture: mid grey is no change, its largest value
    at black or white; and the magnification."""
    peak = max(1, int(np.abs(delta).max()))
    gain = 127.0 / peak
    return np.clip(np.round(128 + delta * gain), 0, 255).astype(np.uint8), gain


@pipeline("judge_fool")
def run_fool(spec: JudgeFoolSpec, ctx: Context) -> Generator[Progress, None, Result]:
    yield Progress(0, spec.steps, "Opening the classifier")
    clf = open_classifier(spec.model, ctx)
    head, target = clf.attribute(spec.attribute, slots=False)
    classes = clf.heads(False)[head]
    notes: list[str] = []
    if spec.layer:
        notes.append("An adversarial example works on the network's output: the layer is not "
                     "used.")
    picture = _picture(spec, spec.size or FOOL_SIZE, notes)
    score = _world_note(clf, picture, ctx, notes)
    before = clf.probabilities(picture, head)
    read = int(np.argmax(before))
    if target is not None and target == read:
        raise JobError(f"{clf.name} already reads {head}={classes[read]} here "
                       f"({100 * before[read]:.0f}%): ask for another class "
                       f"({', '.join(c for c in classes if c != classes[read])}) or none.")

    def flipped(img: np.ndarray) -> bool:
        p = int(np.argmax(clf.probabilities(img, head)))
        return p == target if target is not None else p != read

    x0 = torch.from_numpy(picture).permute(2, 0, 1)[None].float().to(ctx.device) / 255
    eps = float(spec.budget) / 255

    def ascent(x: torch.Tensor) -> torch.Tensor:
        """The sign of the gradient that moves the reading towards the flip."""
        x = x.detach().requires_grad_(True)
        lp = clf.log_probs(x * 2 - 1, head)[0]
        loss = lp[target] if target is not None else -lp[read]
        return grad(loss, x).sign()

    def quantised(x: torch.Tensor) -> np.ndarray:
        lo, hi = np.maximum(picture.astype(np.int16) - int(spec.budget), 0), \
            np.minimum(picture.astype(np.int16) + int(spec.budget), 255)
        img = (x[0].permute(1, 2, 0) * 255).round().clamp(0, 255).cpu().numpy()
        return np.clip(img, lo, hi).astype(np.uint8)  # within the budget once rounded

    steps = 1 if spec.method == "fgsm" else spec.steps
    alpha = eps if spec.method == "fgsm" else max(PGD_STEP * eps / spec.steps, 0.5 / 255)
    x, adv, used = x0.clone(), picture, 0
    for step in range(steps):
        ctx.check()
        sign = ascent(x)
        with torch.no_grad():
            x = torch.minimum(torch.maximum(x + alpha * sign, x0 - eps), x0 + eps)
            x = x.clamp(0, 1)
        adv, used = quantised(x), step + 1
        done = flipped(adv)
        yield Progress(step + 1, steps, f"{spec.method.upper()} step {step + 1} of {steps}"
                       + (": flipped" if done else ""),
                       preview=adv if ctx.wants_preview() else None)
        if done:
            break
    success = flipped(adv)
    if success:  # the smallest multiple of the perturbation that still flips (bisection)
        delta = adv.astype(np.int16) - picture.astype(np.int16)
        lo, hi = 0.0, 1.0
        for _ in range(SHRINK_STEPS):
            ctx.check()
            mid = (lo + hi) / 2
            trial = np.clip(picture + np.round(mid * delta), 0, 255).astype(np.uint8)
            if flipped(trial):
                hi, adv = mid, trial
            else:
                lo = mid
    after = clf.probabilities(adv, head)
    delta = adv.astype(np.int16) - picture.astype(np.int16)
    mag, gain = magnified(delta)
    peak = int(np.abs(delta).max())
    reads = classes[int(np.argmax(after))]
    if success:
        caption = (f"{clf.name} now reads {head}={reads} ({100 * float(after.max()):.0f}%; it "
                   f"read {classes[read]} at {100 * float(before[read]):.0f}%) after a change "
                   f"of at most {peak}/255 per pixel. This fools {clf.name} only: another "
                   f"network, or a person, still sees the picture as before.")
    else:
        caption = (f"{spec.method.upper()} did not flip {head} within {spec.budget:g}/255 "
                   f"({clf.name} still reads {reads}); raise the budget or the steps.")
    info = _info(clf, notes, score, attribute=head, flipped=success, steps_used=used,
                 method=spec.method, linf_255=peak, linf=round(peak / 255, 6),
                 psnr=round(psnr(adv, picture), 3), read_before=classes[read],
                 read_after=reads, magnification=round(gain, 3), caption=caption,
                 before={c: round(float(p), 5) for c, p in zip(classes, before, strict=True)},
                 after={c: round(float(p), 5) for c, p in zip(classes, after, strict=True)})
    return Result(images=[adv, mag], spec=spec, info=info)
