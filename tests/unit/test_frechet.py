"""Fréchet distance, streaming Gaussian statistics and Inception Score on cases with known answers, and
agreement with pytorch-fid's and torch-fidelity's own implementations."""

import warnings

import numpy as np
import pytest
import torch
from pytorch_fid.fid_score import calculate_frechet_distance  # imported at collection: torchvision is slow to load
from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric

from dgflow_bench.metrics.frechet import (
    StreamingGaussianStats,
    frechet_distance,
    frechet_distance_psd,
    gaussian_stats,
    inception_score,
    StreamingInceptionScore,
)




def random_psd(rng, d, n=None):
    """Sample covariance of n >= d Gaussian draws: symmetric PSD and well conditioned."""
    x = rng.standard_normal((n or 4 * d, d)) @ rng.standard_normal((d, d))
    return np.cov(x, rowvar=False)


def pytorch_fid_distance(mu1, s1, mu2, s2):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # its sqrtm(disp=False) on SciPy 1.17
        return float(calculate_frechet_distance(mu1, s1, mu2, s2))


def torch_fidelity_distance(mu1, s1, mu2, s2):
    out = fid_statistics_to_metric({"mu": mu1, "sigma": s1}, {"mu": mu2, "sigma": s2}, verbose=False)
    return out[KEY_METRIC_FID]


# --- closed-form Gaussian cases ------------------------------------------------------------------------------

def test_identical_gaussians_give_zero():
    rng = np.random.RandomState(0)
    mu, sigma = rng.standard_normal(16), random_psd(rng, 16)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-8 * np.trace(sigma)
    assert abs(frechet_distance_psd(mu, sigma, mu, sigma)) < 1e-8 * np.trace(sigma)


def test_equal_covariances_leave_the_mean_term():
    rng = np.random.RandomState(1)
    mu1, mu2, sigma = rng.standard_normal(12), rng.standard_normal(12), random_psd(rng, 12)
    expected = float(np.sum((mu1 - mu2) ** 2))
    np.testing.assert_allclose(frechet_distance(mu1, sigma, mu2, sigma), expected, rtol=1e-8, atol=1e-9)


def test_diagonal_covariances():
    rng = np.random.RandomState(2)
    a, b = rng.uniform(0.1, 3, 10), rng.uniform(0.1, 3, 10)
    mu1, mu2 = rng.standard_normal(10), rng.standard_normal(10)
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2) + np.sum((mu1 - mu2) ** 2)
    np.testing.assert_allclose(frechet_distance(mu1, np.diag(a), mu2, np.diag(b)), expected, rtol=1e-10)
    np.testing.assert_allclose(frechet_distance_psd(mu1, np.diag(a), mu2, np.diag(b)), expected, rtol=1e-10)


def test_commuting_covariances():
    rng = np.random.RandomState(3)
    q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    a, b = rng.uniform(0.2, 4, 8), rng.uniform(0.2, 4, 8)
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    np.testing.assert_allclose(frechet_distance(np.zeros(8), s1, np.zeros(8), s2), expected, rtol=1e-8)


def test_one_dimensional_case():
    # N(0, 4) vs N(3, 1): 9 + (2 - 1)^2
    assert frechet_distance([0.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(10.0, rel=1e-12)


# --- agreement with the libraries ----------------------------------------------------------------------------

@pytest.mark.parametrize("seed,d", [(10, 8), (11, 40), (12, 96)])
def test_agrees_with_pytorch_fid_and_torch_fidelity(seed, d):
    rng = np.random.RandomState(seed)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d) * 0.3
    s1, s2 = random_psd(rng, d), random_psd(rng, d)
    ours = frechet_distance(mu1, s1, mu2, s2)
    np.testing.assert_allclose(ours, pytorch_fid_distance(mu1, s1, mu2, s2), rtol=1e-9)
    np.testing.assert_allclose(ours, torch_fidelity_distance(mu1, s1, mu2, s2), rtol=1e-7)
    np.testing.assert_allclose(ours, frechet_distance_psd(mu1, s1, mu2, s2), rtol=1e-7)


def test_rank_deficient_covariances_agree_with_pytorch_fid():
    # fewer samples than dimensions, as with a small N of 2048-d features: singular sample covariances
    rng = np.random.RandomState(20)
    f1, f2 = rng.standard_normal((20, 32)), rng.standard_normal((20, 32)) + 0.5
    (mu1, s1), (mu2, s2) = gaussian_stats(f1), gaussian_stats(f2)
    ours = frechet_distance(mu1, s1, mu2, s2)
    np.testing.assert_allclose(ours, pytorch_fid_distance(mu1, s1, mu2, s2), rtol=1e-6)
    np.testing.assert_allclose(ours, frechet_distance_psd(mu1, s1, mu2, s2), rtol=1e-5)


def test_large_imaginary_part_is_refused():
    with pytest.raises(ValueError, match="imaginary"):
        frechet_distance(np.zeros(2), np.diag([1.0, -1.0]), np.zeros(2), np.eye(2))


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError):
        frechet_distance(np.zeros(3), np.eye(2), np.zeros(3), np.eye(2))


# --- streaming statistics ------------------------------------------------------------------------------------

def test_gaussian_stats_equal_numpy_and_are_batch_size_independent():
    rng = np.random.RandomState(30)
    x = rng.gamma(2.0, 1.0, size=(503, 24))  # non-negative, skewed: like pooled ReLU features
    ref_mu, ref_sigma = x.mean(axis=0), np.cov(x, rowvar=False)
    results = [gaussian_stats(x, batch_size=bs) for bs in (None, 1, 7, 64, 503, 1000)]
    for mu, sigma in results:
        np.testing.assert_allclose(mu, ref_mu, rtol=1e-12)
        assert np.max(np.abs(sigma - ref_sigma)) <= 1e-10 * np.max(np.abs(ref_sigma))
        assert np.array_equal(sigma, sigma.T)
    for mu, sigma in results[1:]:
        assert np.max(np.abs(sigma - results[0][1])) <= 1e-12 * np.max(np.abs(ref_sigma))


def test_gaussian_stats_survive_a_large_mean():
    rng = np.random.RandomState(31)
    x = 1e4 + rng.standard_normal((400, 6))  # naive E[xx^T] - mu mu^T would lose ~8 digits here
    _, sigma = gaussian_stats(x, batch_size=13)
    assert np.max(np.abs(sigma - np.cov(x, rowvar=False))) <= 1e-10 * np.max(np.abs(np.cov(x, rowvar=False)))


def test_streaming_stats_matches_torch_fidelity_statistics():
    x = np.random.RandomState(32).standard_normal((200, 10))
    acc = StreamingGaussianStats()
    for chunk in np.array_split(x, 9):
        acc.update(chunk)
    mu, sigma = acc.finalize()
    lib = fid_features_to_statistics(torch.from_numpy(x))
    np.testing.assert_allclose(mu, lib["mu"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(sigma, lib["sigma"], rtol=1e-10, atol=1e-14)
    assert acc.n == 200


def test_streaming_stats_refuse_bad_input():
    acc = StreamingGaussianStats().update(np.ones((3, 4)))
    with pytest.raises(ValueError, match="dimension"):
        acc.update(np.ones((2, 5)))
    with pytest.raises(ValueError, match="non-finite"):
        StreamingGaussianStats().update(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="at least 2"):
        StreamingGaussianStats().update(np.ones((1, 3))).finalize()


# --- Inception Score -----------------------------------------------------------------------------------------

def original_inception_score(preds, splits=10):
    """The improved-GAN inception_score.py loop, verbatim apart from the TF session."""
    scores = []
    for i in range(splits):
        part = preds[(i * preds.shape[0] // splits):((i + 1) * preds.shape[0] // splits), :]
        kl = part * (np.log(part) - np.log(np.expand_dims(np.mean(part, 0), 0)))
        kl = np.mean(np.sum(kl, 1))
        scores.append(np.exp(kl))
    return np.mean(scores), np.std(scores)


def test_inception_score_uniform_and_identical_is_one():
    mean, std = inception_score(np.full((100, 7), 1 / 7))
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)
    p = np.tile(np.random.RandomState(40).dirichlet(np.ones(5)), (50, 1))  # identical non-uniform rows
    assert inception_score(p, splits=5)[0] == pytest.approx(1.0, abs=1e-12)


def test_inception_score_even_one_hot_is_number_of_classes():
    k, splits = 8, 10
    probs = np.eye(k)[np.arange(k * splits * 3) % k]  # each split holds every class equally often
    mean, std = inception_score(probs, splits=splits)
    assert mean == pytest.approx(k, rel=1e-12) and std == pytest.approx(0.0, abs=1e-10)


def test_inception_score_matches_original_code_and_torch_fidelity():
    logits = np.random.RandomState(41).standard_normal((1003, 12)) * 2.5  # N not divisible by splits
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    mean, std = inception_score(probs, splits=10)
    ref_mean, ref_std = original_inception_score(probs, splits=10)
    np.testing.assert_allclose([mean, std], [ref_mean, ref_std], rtol=1e-12)
    lib = isc_features_to_metric(torch.from_numpy(logits), splits=10, shuffle=False)
    np.testing.assert_allclose([mean, std], [lib[KEY_METRIC_ISC_MEAN], lib[KEY_METRIC_ISC_STD]], rtol=1e-9)


@pytest.mark.parametrize("batch", [1, 7, 100, 1003])
def test_streaming_inception_score_equals_the_whole_array_for_any_batching(batch):
    logits = np.random.RandomState(43).standard_normal((1003, 12)) * 2.5
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    probs[:5, 3] = 0.0  # exact zeros: 0 log 0 = 0 in both
    probs[:5] /= probs[:5].sum(axis=1, keepdims=True)
    streaming = StreamingInceptionScore(len(probs), splits=10)
    for start in range(0, len(probs), batch):
        streaming.update(probs[start:start + batch])
    np.testing.assert_allclose(streaming.finalize(), inception_score(probs, splits=10), rtol=1e-10)


def test_streaming_inception_score_checks_the_row_count():
    streaming = StreamingInceptionScore(20, splits=4).update(np.full((10, 3), 1 / 3))
    with pytest.raises(ValueError, match="saw 10 rows"):
        streaming.finalize()
    with pytest.raises(ValueError, match="more than"):
        streaming.update(np.full((11, 3), 1 / 3))


def test_inception_score_refuses_logits_and_too_few_rows():
    with pytest.raises(ValueError, match="sum to 1"):
        inception_score(np.random.RandomState(42).standard_normal((20, 4)) ** 2)
    with pytest.raises(ValueError, match="splits"):
        inception_score(np.full((5, 3), 1 / 3), splits=10)
