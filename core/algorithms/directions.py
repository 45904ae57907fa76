"""Latent-space vector maths: slot means, interpolation, and attribute directions.

Arithmetic follows Radford et al. (DCGAN, 2016, section 6.3): each operand is the mean of a few
latents showing a concept, and A - B + C moves C by the concept that separates A from B.
Directions come from latents with labels, two ways:

- ``mean``: the difference of the class means (the DCGAN paper's vector arithmetic, averaged
  over many samples);
- ``classifier``: the unit normal of a linear classifier separating the classes (InterFaceGAN,
  Shen et al. 2020), here an L2-regularised logistic regression.

Either way a direction is stored as a unit vector ``u`` with a ``scale``: the distance between
the class means measured along ``u``. An edit of amount 1 moves a latent by ``scale * u``, so
amounts read the same for every direction and every method: 1 is "one class gap".
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.paths import atomic_write
from core.specs.latent import METHODS

MIN_SET = 5  # images per side below which a direction is mostly noise
FORMAT = 1


class DirectionError(ValueError):
    """A direction that cannot be computed, read or applied, as one readable line."""


def slot_mean(latents: np.ndarray) -> np.ndarray:
    """The mean of one or more latents (K, D) -> (D,)."""
    a = np.asarray(latents, dtype=np.float64)
    if a.ndim == 1:
        return a
    return a.mean(axis=0)


def lerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return (1.0 - t) * a + t * b


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation (Shoemake 1985; White 2016 for GAN latents): keeps the norm
    typical of Gaussian latents instead of passing through the low-norm middle."""
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na < 1e-12 or nb < 1e-12:
        return lerp(a, b, t)
    cos = float(np.clip(np.dot(a / na, b / nb), -1.0, 1.0))
    omega = math.acos(cos)
    if omega < 1e-6:  # parallel: the straight line is the arc
        return lerp(a, b, t)
    s = math.sin(omega)
    return (math.sin((1 - t) * omega) * a + math.sin(t * omega) * b) / s


def walk(a: np.ndarray, b: np.ndarray, frames: int, mode: str = "slerp") -> np.ndarray:
    """``frames`` latents from a to b inclusive."""
    if mode not in ("slerp", "linear"):
        raise DirectionError(f"Unknown interpolation {mode!r}; use slerp or linear.")
    f = slerp if mode == "slerp" else lerp
    return np.stack([f(np.asarray(a, np.float64), np.asarray(b, np.float64), t)
                     for t in np.linspace(0.0, 1.0, frames)])


@dataclass
class Direction:
    name: str
    vector: np.ndarray  # unit (D,)
    scale: float  # class-mean gap along vector
    method: str
    n_pos: int
    n_neg: int
    source: str = "attribute"  # "attribute" (labelled samples) or "user" (two picked sets)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "vector": [float(x) for x in self.vector],
                "scale": float(self.scale), "method": self.method, "n_pos": self.n_pos,
                "n_neg": self.n_neg, "source": self.source}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Direction:
        try:
            vec = np.asarray(d["vector"], dtype=np.float64)
            return Direction(str(d["name"]), vec, float(d["scale"]), str(d["method"]),
                             int(d["n_pos"]), int(d["n_neg"]), str(d.get("source", "attribute")))
        except (KeyError, TypeError, ValueError) as exc:
            raise DirectionError(f"A saved direction is damaged: {exc}") from None


def direction(positive: np.ndarray, negative: np.ndarray, name: str, method: str = "mean",
              source: str = "attribute") -> Direction:
    """The direction from ``negative`` latents (N, D) towards ``positive`` latents (M, D)."""
    pos = np.asarray(positive, dtype=np.float64)
    neg = np.asarray(negative, dtype=np.float64)
    if len(pos) < MIN_SET or len(neg) < MIN_SET:
        raise DirectionError(
            f"A direction needs at least {MIN_SET} images on each side to mean anything; "
            f"{name!r} has {len(pos)} and {len(neg)}.")
    if method not in METHODS:
        raise DirectionError(f"Unknown direction method {method!r}; use {' or '.join(METHODS)}.")
    gap = pos.mean(0) - neg.mean(0)
    v = gap if method == "mean" else _logistic_normal(pos, neg)
    norm = float(np.linalg.norm(v))
    if norm < 1e-12 or not np.isfinite(norm):
        raise DirectionError(f"The two sets for {name!r} have the same mean: there is no "
                             "direction between them.")
    u = v / norm
    return Direction(name, u, float(np.dot(gap, u)), method, len(pos), len(neg), source)


def _logistic_normal(pos: np.ndarray, neg: np.ndarray, l2: float = 1e-2,
                     iterations: int = 300) -> np.ndarray:
    """Weights of an L2-regularised logistic regression (Newton steps; features standardised
    by the pooled mean so the bias stays small). Returns the weight vector in latent units."""
    x = np.concatenate([pos, neg])
    y = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    # Balanced classes: each side weighs the same however many samples it has.
    sw = np.where(y == 1, 0.5 / len(pos), 0.5 / len(neg))
    mu = x.mean(0)
    xc = np.concatenate([x - mu, np.ones((len(x), 1))], axis=1)
    w = np.zeros(xc.shape[1])
    reg = np.full(xc.shape[1], l2)
    reg[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(xc @ w, -30, 30)))
        grad = xc.T @ (sw * (p - y)) + reg * w
        hess = (xc * (sw * p * (1 - p))[:, None]).T @ xc + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return w[:-1]


def apply(latent: np.ndarray, directions: dict[str, Direction],
          amounts: dict[str, float]) -> np.ndarray:
    """``latent`` (D,) or (N, D) moved by ``amount * scale * u`` for each named direction."""
    z = np.asarray(latent, dtype=np.float64).copy()
    for name, amount in amounts.items():
        if amount == 0:
            continue
        d = directions.get(name)
        if d is None:
            raise DirectionError(f"Unknown direction {name!r}; known: "
                                 f"{', '.join(sorted(directions)) or 'none'}.")
        if d.vector.shape[-1] != z.shape[-1]:
            raise DirectionError(f"Direction {name!r} has {d.vector.size} dimensions but the "
                                 f"model's latents have {z.shape[-1]}.")
        z += float(amount) * d.scale * d.vector
    return z


# --------------------------------------------------------------------------- files


@dataclass
class DirectionSet:
    """The directions of one model, as saved beside it (``<name>.directions.json``)."""

    model: str
    model_sha256: str
    directions: dict[str, dict[str, Direction]] = field(default_factory=dict)  # method -> name
    attributes_done: bool = False  # attribute directions were computed (even if none qualified)
    # A Gaussian fitted to the encoded faces (VAE only): mean and Cholesky factor of the
    # covariance. Sampling from it instead of N(0, I) is the "ex-post density estimation" of
    # Ghosh et al. 2020: a VAE's aggregate posterior rarely fills the prior, and draws from
    # the empty parts of N(0, I) decode to mush.
    fit_mean: np.ndarray | None = None
    fit_chol: np.ndarray | None = None

    def fit(self, latents: np.ndarray) -> None:
        z = np.asarray(latents, dtype=np.float64)
        cov = np.cov(z, rowvar=False) + 1e-6 * np.eye(z.shape[1])
        self.fit_mean, self.fit_chol = z.mean(0), np.linalg.cholesky(cov)

    def sample_fit(self, eps: np.ndarray) -> np.ndarray:
        """Standard normal draws (N, D) mapped through the fitted Gaussian."""
        return self.fit_mean + np.asarray(eps) @ self.fit_chol.T

    def names(self) -> list[str]:
        return sorted({n for by in self.directions.values() for n in by})

    def get(self, method: str) -> dict[str, Direction]:
        return self.directions.get(method, {})

    def add(self, d: Direction) -> None:
        self.directions.setdefault(d.method, {})[d.name] = d

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "model": self.model, "model_sha256": self.model_sha256,
                "attributes_done": self.attributes_done,
                "fit_mean": None if self.fit_mean is None else self.fit_mean.tolist(),
                "fit_chol": None if self.fit_chol is None else self.fit_chol.tolist(),
                "directions": {m: [d.to_dict() for _, d in sorted(by.items())]
                               for m, by in sorted(self.directions.items())}}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> DirectionSet:
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise DirectionError("The directions file is not in Easel's format.")
        out = DirectionSet(str(d.get("model", "")), str(d.get("model_sha256", "")),
                           attributes_done=bool(d.get("attributes_done", False)))
        if d.get("fit_mean") is not None and d.get("fit_chol") is not None:
            try:
                out.fit_mean = np.asarray(d["fit_mean"], dtype=np.float64)
                out.fit_chol = np.asarray(d["fit_chol"], dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise DirectionError(f"The fitted latent Gaussian is damaged: {exc}") from None
            n = out.fit_mean.shape
            if out.fit_mean.ndim != 1 or out.fit_chol.shape != n * 2:
                raise DirectionError("The fitted latent Gaussian has the wrong shape.")
        for items in dict(d.get("directions", {})).values():
            for item in items:
                out.add(Direction.from_dict(item))
        return out


def directions_path(weights_path: str | os.PathLike) -> Path:
    """``<folder>/<name>.directions.json`` beside ``<folder>/<name>.safetensors``."""
    p = Path(weights_path)
    return p.with_name(p.stem + ".directions.json")


def save_directions(path: str | os.PathLike, dset: DirectionSet) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (json.dumps(dset.to_dict()) + "\n").encode("utf-8"))
    return path


def load_directions(path: str | os.PathLike) -> DirectionSet:
    try:
        text = Path(path).read_text(encoding="utf-8")
        return DirectionSet.from_dict(json.loads(text))
    except FileNotFoundError:
        raise DirectionError(f"No directions file at {path}.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DirectionError(f"Cannot read the directions file {path}: {exc}") from None
