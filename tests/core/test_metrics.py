"""Metrics: FJD, precision and recall, agreement, PSNR/SSIM, bits per dimension, codebook usage."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.evaluation import metrics


def test_frechet_distance_of_a_set_with_itself_is_zero_and_grows_with_a_shift() -> None:
    rng = np.random.default_rng(0)
    f = rng.normal(size=(500, 8))
    assert metrics.fjd_from_features(f, f) == pytest.approx(0.0, abs=1e-6)
    d1 = metrics.fjd_from_features(f + 0.5, f)
    d2 = metrics.fjd_from_features(f + 1.0, f)
    # A pure mean shift of delta in 8 dimensions adds 8 * delta^2.
    assert d1 == pytest.approx(8 * 0.25, rel=1e-6)
    assert d2 > d1 > 0


def test_frechet_distance_matches_the_closed_form_for_diagonal_gaussians() -> None:
    mu = np.zeros(3)
    s1 = np.diag([1.0, 4.0, 9.0])
    s2 = np.diag([4.0, 1.0, 1.0])
    # For commuting (diagonal) covariances: sum (sqrt(a) - sqrt(b))^2.
    expected = (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 1) ** 2
    assert metrics.frechet_distance(mu, s1, mu, s2) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_refuses_mismatched_dimensions() -> None:
    with pytest.raises(ValueError):
        metrics.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError):
        metrics.gaussian_fit(np.zeros((1, 4)))


def test_precision_recall_of_identical_close_collapsed_and_disjoint_sets() -> None:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(600, 16))
    same = metrics.precision_recall(real, real.copy())
    assert same["precision"] == same["recall"] == 1.0 and same["k"] == 3
    # Another draw of the same distribution: most of each set lies in the other's manifold.
    other = metrics.precision_recall(real, rng.normal(size=(600, 16)))
    assert other["precision"] > 0.6 and other["recall"] > 0.6
    # Mode collapse: every sample near one real point is faithful but covers nothing.
    collapsed = metrics.precision_recall(real, real[7] + 0.01 * rng.normal(size=(600, 16)))
    assert collapsed["precision"] > 0.95 and collapsed["recall"] < 0.02
    # In 2-D, samples of half the distribution (one side of a line): faithful, half the
    # coverage (the whole distribution covers nearly all of it).
    flat, draws = rng.normal(size=(600, 2)), rng.normal(size=(1200, 2))
    half = metrics.precision_recall(flat, draws[draws[:, 0] > 0])
    assert half["precision"] > 0.95 and 0.4 < half["recall"] < 0.6
    assert metrics.precision_recall(flat, draws[:600])["recall"] > 0.95
    far = metrics.precision_recall(real, rng.normal(size=(600, 16)) + 50.0)
    assert far["precision"] == far["recall"] == 0.0


def test_precision_recall_is_the_same_whatever_the_chunk() -> None:
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(300, 5)), rng.normal(0.3, 1.2, size=(250, 5))
    whole = metrics.precision_recall(real, fake, k=5, chunk=10_000)
    assert metrics.precision_recall(real, fake, k=5, chunk=7) == whole
    assert 0 < whole["precision"] < 1 and 0 < whole["recall"] < 1


def test_precision_recall_refuses_bad_sets() -> None:
    with pytest.raises(ValueError, match="one D"):
        metrics.precision_recall(np.zeros((10, 3)), np.zeros((10, 4)))
    with pytest.raises(ValueError, match="more than k points"):
        metrics.precision_recall(np.zeros((3, 3)), np.zeros((10, 3)), k=3)


def test_agreement_counts_matches_per_key_and_skips_unconstrained() -> None:
    read = [{"a": "x", "b": "y"}, {"a": "x", "b": "z"}, {"a": "w", "b": "z"}, {"a": "x"}]
    expected = [{"a": "x", "b": "y"}, {"a": "x", "b": "y"}, {"a": "x", "b": None},
                {"a": "x", "b": None}]
    out = metrics.agreement(read, expected)
    assert out["a"] == pytest.approx(3 / 4)
    assert out["b"] == pytest.approx(1 / 2)
    assert out["mean"] == pytest.approx((3 / 4 + 1 / 2) / 2)
    with pytest.raises(ValueError):
        metrics.agreement(read[:2], expected)


def _pair(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
    noise = rng.normal(0, 25, a.shape)
    b = np.clip(a.astype(float) * 0.7 + 40 + noise, 0, 255).astype(np.uint8)
    return a, b


def test_psnr_known_values() -> None:
    a, _ = _pair()
    assert metrics.psnr(a, a) == math.inf
    b = a.astype(np.int16)
    b = np.where(b < 128, b + 10, b - 10).astype(np.uint8)  # every pixel off by exactly 10
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255 ** 2 / 100), rel=1e-9)
    with pytest.raises(ValueError):
        metrics.psnr(a, a[:10])


def test_ssim_is_one_for_identical_images_and_matches_scikit_image() -> None:
    skimage_metrics = pytest.importorskip("skimage.metrics")
    a, b = _pair(1)
    assert metrics.ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    ours = metrics.ssim(a, b)
    ref = skimage_metrics.structural_similarity(
        a, b, channel_axis=2, data_range=255, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False)
    assert abs(ours - ref) < 1e-3
    assert ours < 0.9  # the pair really differs


def test_ssim_of_a_batch_is_the_mean_over_images() -> None:
    a1, b1 = _pair(2)
    a2, b2 = _pair(3)
    both = metrics.ssim(np.stack([a1, a2]), np.stack([b1, b2]))
    assert both == pytest.approx((metrics.ssim(a1, b1) + metrics.ssim(a2, b2)) / 2, rel=1e-9)


def test_ssim_of_images_smaller_than_the_window() -> None:
    rng = np.random.default_rng(4)
    for side in (1, 4, 8):
        a = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        assert metrics.ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    b = 255 - a
    assert -1.0 <= metrics.ssim(a, b) < 0.5


def test_bits_per_dim() -> None:
    assert metrics.bits_per_dim(12288 * math.log(2) * 3.5, 12288) == pytest.approx(3.5)
    with pytest.raises(ValueError):
        metrics.bits_per_dim(1.0, 0)


def test_codebook_usage() -> None:
    uniform = metrics.codebook_usage(np.arange(16).repeat(4), 16)
    assert uniform["perplexity"] == pytest.approx(16.0)
    assert uniform["used_share"] == 1.0
    collapsed = metrics.codebook_usage(np.zeros(100, int), 16)
    assert collapsed["perplexity"] == pytest.approx(1.0)
    assert collapsed["used"] == 1 and collapsed["used_share"] == 1 / 16
    half = metrics.codebook_usage(np.array([0, 1, 2, 3] * 5), 8)
    assert half["perplexity"] == pytest.approx(4.0) and half["used_share"] == 0.5
    with pytest.raises(ValueError):
        metrics.codebook_usage(np.array([0, 9]), 8)
