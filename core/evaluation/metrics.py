"""Measured quality figures: FJD, precision and recall, label agreement, PSNR/SSIM, bits per
dimension, codebook usage.

Every function here is a plain computation on arrays; the judges that produce features and
readings live in core/judges.py. Images are uint8 (H, W, 3) or (N, H, W, 3) arrays.

FJD (Fréchet Judge Distance) is the Fréchet distance of Heusel et al. 2017 ("GANs trained by a
two time-scale update rule converge to a local Nash equilibrium") computed in the penultimate
feature space of Easel's own judge network. It is NOT FID: FID uses an ImageNet Inception-v3,
which Easel cannot ship, so FJD values are not comparable with published FID numbers — only
with other FJD values measured by the same judge.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

FJD_NOTE = ("FJD: Fréchet distance in Easel's judge feature space; NOT FID (different feature "
            "network), comparable only with FJD from the same judge.")


# --------------------------------------------------------------------------- FJD


def gaussian_fit(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (float64) of (N, D) features; N >= 2."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need (N, D) features with N >= 2, got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
    """Fréchet (2-Wasserstein) distance between two Gaussians (Dowson & Landau 1982):
    |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)).

    tr((S1 S2)^(1/2)) equals the trace of (S1^(1/2) S2 S1^(1/2))^(1/2), a symmetric PSD matrix,
    so two symmetric eigendecompositions replace a general (and scipy-only) matrix square root.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise ValueError("the two Gaussians have different dimensions")
    root1 = _sqrtm_psd(s1)
    cross = np.linalg.eigvalsh(root1 @ s2 @ root1)
    tr_covmean = float(np.sqrt(np.clip(cross, 0, None)).sum())
    d = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)
    return max(d, 0.0)  # rounding can leave a tiny negative for identical sets


def fjd_from_features(generated: np.ndarray, real: np.ndarray) -> float:
    """FJD between two (N, D) feature sets (see the module docstring: not FID)."""
    return frechet_distance(*gaussian_fit(generated), *gaussian_fit(real))


# --------------------------------------------------------------------------- precision, recall

PR_CHUNK = 1024  # rows of a distance block: 1024 x 5000 float64 is 41 MB


def _sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (len(a), len(b)), never negative."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.maximum(d, 0.0)


def _knn_radii(feats: np.ndarray, k: int, chunk: int) -> np.ndarray:
    """Squared distance of each point to its k-th nearest neighbour in its own set (the point
    itself counts as the 0th)."""
    return np.concatenate([np.partition(_sq_distances(feats[i:i + chunk], feats), k, axis=1)[:, k]
                           for i in range(0, len(feats), chunk)])


def _covered(points: np.ndarray, centres: np.ndarray, radii: np.ndarray, chunk: int) -> float:
    """Share of ``points`` inside at least one ball (centre, radius) of the other set."""
    inside = [(_sq_distances(points[i:i + chunk], centres) <= radii[None, :]).any(1)
              for i in range(0, len(points), chunk)]
    return float(np.concatenate(inside).mean())


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3,
                     chunk: int = PR_CHUNK) -> dict[str, float]:
    """Improved precision and recall (Kynkaanniemi, Karras, Laine, Lehtinen & Aila 2019) of
    (N, D) features of generated pictures ``fake`` against real ones ``real``.

    Each set's manifold is the union of balls around its points reaching their k-th nearest
    neighbour in the same set. ``precision``: the share of fake points inside the real
    manifold (fidelity); ``recall``: the share of real points inside the fake manifold
    (coverage). Distances are computed ``chunk`` rows at a time, so 5,000 x 5,000 stays near
    ``chunk`` x 5,000 x 8 bytes per block.
    """
    r, f = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if r.ndim != 2 or f.ndim != 2 or r.shape[1] != f.shape[1]:
        raise ValueError(f"need two (N, D) feature sets of one D, got {r.shape} and {f.shape}")
    if k < 1 or min(len(r), len(f)) <= k:
        raise ValueError(f"k = {k} needs more than k points in each set "
                         f"(got {len(r)} real, {len(f)} generated)")
    return {"precision": _covered(f, r, _knn_radii(r, k, chunk), chunk),
            "recall": _covered(r, f, _knn_radii(f, k, chunk), chunk), "k": k}


# --------------------------------------------------------------------------- agreement


def agreement(read: Sequence[Mapping[str, Any]], expected: Sequence[Mapping[str, Any]],
              keys: Iterable[str] | None = None) -> dict[str, float]:
    """Share of images whose read label equals the expected one, per key, plus ``mean``.

    ``keys`` defaults to the keys of the first expected dict; an expected value of None means
    "not constrained" and that image is left out of that key's share.
    """
    if len(read) != len(expected):
        raise ValueError(f"{len(read)} readings for {len(expected)} expected label sets")
    if not expected:
        raise ValueError("agreement needs at least one image")
    keys = list(keys) if keys is not None else list(expected[0])
    out: dict[str, float] = {}
    for key in keys:
        pairs = [(r.get(key), e.get(key)) for r, e in zip(read, expected, strict=True)
                 if e.get(key) is not None]
        if pairs:
            out[key] = sum(a == b for a, b in pairs) / len(pairs)
    out["mean"] = float(np.mean(list(out.values()))) if out else float("nan")
    return out


# --------------------------------------------------------------------------- PSNR / SSIM


def _as_batch(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) float64 in 0..255 from uint8 (H, W, 3) or (N, H, W, 3) arrays."""
    t = torch.as_tensor(np.asarray(images)).to(torch.float64)
    if t.ndim == 3:
        t = t[None]
    if t.ndim != 4:
        raise ValueError(f"expected (H, W, C) or (N, H, W, C) images, got shape {tuple(t.shape)}")
    return t.permute(0, 3, 1, 2)


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB over all pixels of both (batches of) images; inf when
    they are identical."""
    x, y = _as_batch(a), _as_batch(b)
    if x.shape != y.shape:
        raise ValueError(f"images differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
    mse = float(((x - y) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(data_range ** 2 / mse)


def _gaussian_window(sigma: float, radius: int) -> torch.Tensor:
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0, sigma: float = 1.5) -> float:
    """Mean structural similarity (Wang, Bovik, Sheikh & Simoncelli 2004, "Image quality
    assessment: from error visibility to structural similarity").

    As in the paper: an 11x11 Gaussian window of sigma 1.5, K1 = 0.01, K2 = 0.03, population
    (not sample) statistics, computed per channel and averaged over the windows that lie fully
    inside the image (which is what scikit-image reports with ``gaussian_weights=True,
    use_sample_covariance=False``). Identical images give 1.0.

    Images smaller than the window (under 11 px) use the largest odd window that fits, its
    sigma scaled down in proportion, so tiny images still get a (less standard) figure.
    """
    x, y = _as_batch(a), _as_batch(b)
    if x.shape != y.shape:
        raise ValueError(f"images differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
    radius = int(3.5 * sigma + 0.5)  # scikit-image's truncate = 3.5
    fits = (min(x.shape[2:]) - 1) // 2
    if fits < radius:
        sigma, radius = sigma * max(fits, 0.5) / radius, fits
    g = _gaussian_window(sigma, radius)
    k = g.numel()
    c = x.shape[1]
    gx = g.view(1, 1, 1, k).repeat(c, 1, 1, 1)
    gy = g.view(1, 1, k, 1).repeat(c, 1, 1, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:  # separable Gaussian, valid region only
        return F.conv2d(F.conv2d(t, gx, groups=c), gy, groups=c)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx * mx
    vy = blur(y * y) - my * my
    cov = blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


# --------------------------------------------------------------------------- likelihood, VQ


def bits_per_dim(nll_nats: float, dims: int) -> float:
    """Negative log-likelihood of one image (in nats, of the discrete 8-bit data) -> bits per
    dimension, the usual likelihood figure (e.g. 64x64x3 images have dims = 12288).

    A model whose density is over continuous pixels scaled to [-1, 1] must first add
    dims * log(127.5) nats to turn its density into a probability of the 8-bit values
    (the uniform-dequantisation bound, Theis, van den Oord & Bethge 2016).
    """
    if dims <= 0:
        raise ValueError("dims must be positive")
    return float(nll_nats) / (dims * math.log(2))


def codebook_usage(codes: np.ndarray | torch.Tensor, codebook_size: int) -> dict[str, float]:
    """How a VQ model uses its codebook, from the code indices it assigned to some images.

    ``perplexity`` = exp(entropy of the code histogram): the number of equally used codes that
    would give the same entropy (codebook_size at best, 1 when collapsed onto one code);
    ``used_share`` = share of codes used at least once.
    """
    idx = torch.as_tensor(np.asarray(codes)).reshape(-1).long()
    if idx.numel() == 0:
        raise ValueError("no codes given")
    if codebook_size < 1 or int(idx.min()) < 0 or int(idx.max()) >= codebook_size:
        raise ValueError(f"code indices must lie in 0..{codebook_size - 1}")
    counts = torch.bincount(idx, minlength=codebook_size).double()
    p = counts / counts.sum()
    nz = p[p > 0]
    entropy = float(-(nz * nz.log()).sum())
    used = int((counts > 0).sum())
    return {"perplexity": math.exp(entropy), "used": used, "used_share": used / codebook_size,
            "codebook_size": codebook_size}
