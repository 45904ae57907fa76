"""What-the-judge-sees job specs (feature inversion, dream, adversarial example) and their limits.

Torch-free: the desktop panel builds and restores these specs on the GUI thread, and importing
this module registers their kinds. The pipeline that runs them is core/pipelines/judge.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.jobs import ImageRef, JobError, JobSpec

FAMILY = "judge"  # classifiers live in weights/judge (shipped) and the user's models/judge
DEFAULT_MODEL = "judge_faces"
MAX_STEPS = 2000
MAX_SIZE = 512  # long side a picture is worked at
MIN_SIZE = 16
MAX_BUDGET = 64.0  # L-infinity budget of an adversarial example, in 1/255 of the range
MAX_OCTAVES = 6
MAX_JITTER = 32
MAX_WEIGHT = 1000.0
JUDGE_BLOCKS = 9  # convolution blocks of core.nets.judge.Judge (7 in its trunk, 2 on top)
FOOL_METHODS = ("pgd", "fgsm")
DREAM_STARTS = ("picture", "grey")


def _number(value: Any, what: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not lo <= value <= hi:
        raise JobError(f"{what} must be a number from {lo:g} to {hi:g}, not {value!r}.")
    return float(value)


def _whole(value: Any, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise JobError(f"{what} must be a whole number from {lo} to {hi}, not {value!r}.")
    return value


def layer_names(blocks: int = JUDGE_BLOCKS) -> list[str]:
    """The layers of a judge as the user names them, input to output: conv1..convN (its
    convolution blocks), then pooled (the globally pooled features its heads read)."""
    return [f"conv{i + 1}" for i in range(blocks)] + ["pooled"]


def split_attribute(text: str) -> tuple[str, str]:
    """"glasses=glasses" -> ("glasses", "glasses"); "glasses" -> ("glasses", "")."""
    name, _, cls = str(text).partition("=")
    return name.strip(), cls.strip()


@dataclass(frozen=True)
class JudgeSpec(JobSpec):
    """Fields every judge job shares: the picture and the classifier that reads it."""

    panel = "judge"
    image: ImageRef | None = None
    model: str = DEFAULT_MODEL  # a classifier's name (shipped or the user's) or .safetensors
    layer: str = ""  # a layer as core.pipelines.judge.layer_names lists it; "" = the default
    attribute: str = ""  # "NAME" or "NAME=CLASS" (a head of the classifier and its class)
    steps: int = 200
    size: int = 0  # long side the picture is worked at; 0 = the mode's default

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.model, str) or not self.model.strip():
            raise JobError("Choose a classifier (a judge such as judge_faces).")
        for name in ("layer", "attribute"):
            if not isinstance(getattr(self, name), str):
                raise JobError(f"The {name} must be text, not {getattr(self, name)!r}.")
        object.__setattr__(self, "attribute", "=".join(
            p for p in split_attribute(self.attribute) if p))
        _whole(self.steps, "Steps", 1, MAX_STEPS)
        if self.size != 0:
            _whole(self.size, "The working size", MIN_SIZE, MAX_SIZE)


@dataclass(frozen=True)
class JudgeInvertSpec(JudgeSpec):
    """Feature inversion (Mahendran & Vedaldi 2015): a picture whose features at ``layer``
    match the input's, found from noise with total-variation and range regularisers."""

    kind = "judge_invert"
    tv_weight: float = 0.05  # total variation (smoothness)
    range_weight: float = 10.0  # pixels pushed back inside the valid range
    lr: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        _number(self.tv_weight, "The smoothness (total-variation weight)", 0, MAX_WEIGHT)
        _number(self.range_weight, "The range weight", 0, MAX_WEIGHT)
        _number(self.lr, "The step size", 1e-5, 1.0)


@dataclass(frozen=True)
class JudgeDreamSpec(JudgeSpec):
    """DeepDream / class visualisation: gradient ascent on what the network reads, either the
    class of ``attribute`` (its log-probability) or, without one, the activations of
    ``layer``; coarse to fine over octaves with random jitter, from the picture or from grey."""

    kind = "judge_dream"
    steps: int = 20  # per octave
    strength: float = 0.02  # step size, of the [-1, 1] range per step (normalised gradient)
    octaves: int = 3
    octave_scale: float = 1.4
    jitter: int = 2  # pixels of random shift per step
    start: str = "picture"  # or "grey": draw the class itself
    tv_weight: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _number(self.strength, "The strength", 1e-4, 1.0)
        _whole(self.octaves, "Octaves", 1, MAX_OCTAVES)
        _number(self.octave_scale, "The octave scale", 1.1, 2.0)
        _whole(self.jitter, "The jitter", 0, MAX_JITTER)
        _number(self.tv_weight, "The smoothness (total-variation weight)", 0, MAX_WEIGHT)
        if self.start not in DREAM_STARTS:
            raise JobError(f"A dream starts from {' or '.join(DREAM_STARTS)}, not "
                           f"{self.start!r}.")


@dataclass(frozen=True)
class JudgeFoolSpec(JudgeSpec):
    """An adversarial example (Goodfellow et al. 2015 FGSM; Madry et al. 2018 PGD): the
    smallest perturbation within an L-infinity ``budget`` (in 1/255) that flips the reading of
    ``attribute`` (to CLASS when given, else away from what it reads now)."""

    kind = "judge_fool"
    method: str = "pgd"
    budget: float = 8.0  # L-infinity, in 1/255 of the pixel range
    steps: int = 40

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.method not in FOOL_METHODS:
            raise JobError(f"Unknown attack {self.method!r}; use {' or '.join(FOOL_METHODS)}.")
        if isinstance(self.budget, int | float) and not isinstance(self.budget, bool) \
                and self.budget == 0:
            raise JobError("A budget of 0 changes nothing: give an L-infinity budget above 0 "
                           "(in 1/255, e.g. 8).")
        _number(self.budget, "The budget (L-infinity, in 1/255; 1/255 is the smallest change an "
                "8-bit picture holds)", 1, MAX_BUDGET)
        if not self.attribute:
            raise JobError("Name the attribute to flip (NAME or NAME=CLASS, e.g. "
                           "glasses or glasses=glasses).")


MODES = {"invert": JudgeInvertSpec, "dream": JudgeDreamSpec, "fool": JudgeFoolSpec}


def summary(kind: str, info: dict[str, Any]) -> str:
    """The figures a finished judge job reports (its Result.info), in a line or two."""
    name = info.get("classifier", "the classifier")
    if kind == JudgeInvertSpec.kind:
        return (f"{name}, layer {info['layer']}: PSNR {info['psnr']:.1f} dB against the "
                f"picture as it reads it; feature error {info['feature_error']:.4f}; it reads "
                f"the inverted picture alike on {100 * info['agreement']:.0f}% of its "
                "attributes.")
    if kind == JudgeDreamSpec.kind:
        what = (f"P({info['attribute']}) {info['probability_before']:.3f} -> "
                f"{info['probability_after']:.3f}" if "attribute" in info else
                f"layer {info['layer']} energy {info['activation_before']:.3f} -> "
                f"{info['activation_after']:.3f}")
        return (f"{name}: {what}; change L-inf {info['linf_255']}/255, mean "
                f"{info['mean_change_255']:.1f}/255, PSNR {info['psnr']:.1f} dB.")

    def probs(p: dict[str, float]) -> str:
        return ", ".join(f"{k} {100 * v:.0f}%" for k, v in p.items())

    return (f"{info['caption']}\nL-inf {info['linf_255']}/255, PSNR {info['psnr']:.1f} dB, "
            f"{info['method'].upper()} steps {info['steps_used']}; before "
            f"{probs(info['before'])}; after {probs(info['after'])}.")
