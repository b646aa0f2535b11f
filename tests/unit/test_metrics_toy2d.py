"""Tests for the 2-D toy metrics on constructed cases with known answers."""

import numpy as np
import pytest
import scipy.stats

from dgflow_bench.data.toy2d import (
    MODES_25G,
    STD_25G,
    SWISSROLL_NOISE,
    sample_25gaussians,
    sample_swissroll,
    swissroll_curve,
)
from dgflow_bench.metrics.toy2d import (
    compute_toy2d_metrics,
    energy_distance,
    mean_pairwise_distance,
    high_quality_fraction,
    kde_log_likelihood,
    metric_direction,
    metric_directions,
    modes_covered,
    nearest_distance,
)


def test_nearest_distance_known_and_chunk_invariant():
    ref = np.array([[0.0, 0.0], [10.0, 0.0]])
    x = np.array([[3.0, 4.0], [10.0, 1.0], [6.0, 0.0]])
    np.testing.assert_allclose(nearest_distance(x, ref), [5.0, 1.0, 4.0])
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 2)), rng.normal(size=(200, 2))
    brute = np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1)).min(1)
    for chunk in (1, 7, 1000):
        np.testing.assert_array_equal(nearest_distance(a, b, chunk_rows=chunk), nearest_distance(a, b))
    np.testing.assert_allclose(nearest_distance(a, b), brute, rtol=1e-12)


def test_hq_25g_exact_modes_and_threshold():
    assert high_quality_fraction(MODES_25G, "25gaussians") == 1.0
    direction = np.array([0.6, 0.8])
    inside = MODES_25G + 3.99 * STD_25G * direction
    outside = MODES_25G + 4.01 * STD_25G * direction
    assert high_quality_fraction(inside, "25gaussians") == 1.0
    assert high_quality_fraction(outside, "25gaussians") == 0.0
    # Midpoints between horizontally adjacent modes are far from every mode.
    grid = MODES_25G.reshape(5, 5, 2)
    mids = (0.5 * (grid[:, 1:] + grid[:, :-1])).reshape(-1, 2)
    assert high_quality_fraction(mids, "25gaussians") == 0.0


def test_hq_25g_real_data_rayleigh():
    x = sample_25gaussians(200_000, np.random.default_rng(1))
    # 2-D Gaussian radius: P(r <= 4 sigma) = 1 - exp(-8); expected misses ~67, binomial std ~8.
    expected = 1 - np.exp(-8)
    assert abs(high_quality_fraction(x, "25gaussians") - expected) < 5 * np.sqrt(expected * (1 - expected) / len(x))


def test_hq_swissroll():
    real = sample_swissroll(5_000, np.random.default_rng(2))
    assert high_quality_fraction(real, "swissroll") > 0.99
    curve = swissroll_curve(997)  # points on the curve, not the metric's own discretisation
    assert high_quality_fraction(curve, "swissroll") == 1.0
    far = np.array([[5.0, 5.0], [-4.0, 0.0], [0.0, 0.0]])
    assert high_quality_fraction(far, "swissroll") == 0.0
    # Off the curve along the radius: within / beyond 4 sigma (mid-curve, well away from its ends).
    t = np.linspace(2.5 * np.pi, 3.5 * np.pi, 50)
    radial = np.stack([np.cos(t), np.sin(t)], 1)
    on = radial * (t / 7.5)[:, None]
    assert high_quality_fraction(on + 3.9 * SWISSROLL_NOISE * radial, "swissroll") == 1.0
    assert high_quality_fraction(on + 4.5 * SWISSROLL_NOISE * radial, "swissroll") == 0.0


def test_hq_unknown_dataset():
    with pytest.raises(ValueError, match="'moons'.*25gaussians.*swissroll"):
        high_quality_fraction(MODES_25G, "moons")


def test_modes_covered_k_modes_and_stray():
    rng = np.random.default_rng(3)
    chosen = [0, 6, 12, 24]
    x = MODES_25G[rng.choice(chosen, size=1000)] + rng.normal(0, 0.5 * STD_25G, size=(1000, 2))
    assert modes_covered(x) == 4
    stray = np.vstack([x, MODES_25G[[3]]])  # one sample in another mode: below 0.1 * n / 25 = 4
    assert modes_covered(stray) == 4
    assert modes_covered(MODES_25G) == 25  # one exact sample per mode, threshold 0.1
    assert modes_covered(MODES_25G, min_share=1.0) == 25
    # Off-mode samples are not high quality and cannot cover anything.
    assert modes_covered(MODES_25G + 5 * STD_25G) == 0


def test_modes_covered_threshold_rule():
    # n = 250 -> threshold min_share * n / 25 = 0.5 * 10 = 5 samples.
    x = np.vstack([np.repeat(MODES_25G[[0]], 245, 0), np.repeat(MODES_25G[[1]], 5, 0)])
    assert modes_covered(x, min_share=0.5) == 2
    x = np.vstack([np.repeat(MODES_25G[[0]], 246, 0), np.repeat(MODES_25G[[1]], 4, 0)])
    assert modes_covered(x, min_share=0.5) == 1


def test_kde_closed_forms():
    h = 0.05
    assert kde_log_likelihood(np.zeros((1, 2)), np.zeros((1, 2)), h) == pytest.approx(-np.log(2 * np.pi * h**2), abs=1e-12)
    y = np.array([[0.03, -0.04]])  # |y| = 0.05
    expected = -0.05**2 / (2 * h**2) - np.log(2 * np.pi * h**2)
    assert kde_log_likelihood(np.zeros((1, 2)), y, h) == pytest.approx(expected, abs=1e-12)
    # Two samples, one at the held-out point and one far: mixture halves the density.
    two = np.array([[0.0, 0.0], [100.0, 0.0]])
    assert kde_log_likelihood(two, np.zeros((1, 2)), h) == pytest.approx(-np.log(2) - np.log(2 * np.pi * h**2), abs=1e-12)


def test_kde_brute_force_and_chunk_invariance():
    rng = np.random.default_rng(4)
    x, y, h = rng.normal(size=(400, 2)), rng.normal(size=(150, 2)), 0.3
    sq = ((y[:, None] - x[None]) ** 2).sum(-1)
    dens = np.exp(-sq / (2 * h**2)).sum(1) / (len(x) * 2 * np.pi * h**2)
    ref = np.log(dens).mean()
    assert kde_log_likelihood(x, y, h) == pytest.approx(ref, rel=1e-12)
    for chunk in (1, 13, 10_000):
        assert kde_log_likelihood(x, y, h, chunk_rows=chunk) == kde_log_likelihood(x, y, h)


def test_kde_far_point_is_stable():
    # Naive exp would underflow to log(0) = -inf; logsumexp stays finite and exact.
    h = 0.01
    val = kde_log_likelihood(np.zeros((1, 2)), np.array([[10.0, 0.0]]), h)
    assert val == pytest.approx(-100.0 / (2 * h**2) - np.log(2 * np.pi * h**2), rel=1e-12)



def test_kde_clipped_exponent_is_bit_identical_to_the_plain_logsumexp():
    # the KDE clips exp's argument at -700 (fast path); with the row maximum at exp(0) = 1 the clipped terms
    # must vanish in the sum exactly: compare with the unclipped logsumexp, bit for bit, on rows where most
    # terms underflow (a narrow bandwidth over well separated clusters, as on 25Gaussians)
    rng = np.random.default_rng(9)
    centres = rng.uniform(-2, 2, size=(25, 2))
    x = (centres[rng.integers(0, 25, 3000)] + 0.02 * rng.normal(size=(3000, 2)))
    y = (centres[rng.integers(0, 25, 700)] + 0.02 * rng.normal(size=(700, 2)))
    h = 0.05
    scaled = -((y[:, None] - x[None]) ** 2).sum(-1) / (2 * h**2)
    assert (scaled - scaled.max(1, keepdims=True) < -745).mean() > 0.5  # most terms take the underflow path
    m = scaled.max(1, keepdims=True)
    plain = (m[:, 0] + np.log(np.exp(scaled - m).sum(1))) - np.log(len(x)) - np.log(2 * np.pi * h**2)
    # the same arithmetic as the metric's in-place steps, without the clip
    assert kde_log_likelihood(x, y, h, chunk_rows=len(y)) == float(np.mean(plain))

def test_energy_distance_known_cases():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 2))
    assert energy_distance(x, x) == pytest.approx(0.0, abs=1e-12)
    a, b = np.array([1.0, 2.0]), np.array([4.0, 6.0])
    assert energy_distance(np.tile(a, (7, 1)), np.tile(b, (3, 1))) == pytest.approx(10.0, abs=1e-12)
    y = rng.normal(0.5, 1.0, size=(150, 2))
    d_xy, d_yx = energy_distance(x, y), energy_distance(y, x)
    assert d_xy == pytest.approx(d_yx, rel=1e-12)
    assert d_xy > 0
    # the held-out term computed once and passed in gives the same number
    assert energy_distance(x, y, yy=mean_pairwise_distance(y, y)) == pytest.approx(d_xy, rel=1e-12)
    for chunk in (1, 11, 10_000):
        assert energy_distance(x, y, chunk_rows=chunk) == pytest.approx(d_xy, rel=1e-12)


def test_energy_distance_matches_scipy_1d():
    rng = np.random.default_rng(6)
    u, v = rng.normal(size=300), rng.exponential(size=250)
    assert energy_distance(u, v) == pytest.approx(scipy.stats.energy_distance(u, v) ** 2, rel=1e-9)


def test_energy_distance_nonnegative_random():
    rng = np.random.default_rng(7)
    for _ in range(10):
        x, y = rng.normal(size=(rng.integers(1, 40), 2)), rng.normal(size=(rng.integers(1, 40), 2))
        assert energy_distance(x, y) >= -1e-12


def test_compute_metrics_keys_and_values():
    rng = np.random.default_rng(8)
    samples = sample_25gaussians(2000, rng)
    heldout = sample_25gaussians(500, rng)
    m = compute_toy2d_metrics("25gaussians", samples, heldout, kde_bandwidth=0.05, mode_min_share=0.1)
    assert set(m) == {"hq4sigma_pct", "modes_covered_min0.1share", "kde_ll_h0.05_heldout500", "energy_u_heldout500"}
    assert 99.0 < m["hq4sigma_pct"] <= 100.0
    assert m["modes_covered_min0.1share"] == 25
    assert m["kde_ll_h0.05_heldout500"] == pytest.approx(kde_log_likelihood(samples, heldout, 0.05))
    assert abs(m["energy_u_heldout500"]) < 0.05
    s = compute_toy2d_metrics("swissroll", sample_swissroll(1000, rng), sample_swissroll(300, rng), kde_bandwidth=0.1)
    assert set(s) == {"hq4sigma_pct", "kde_ll_h0.1_heldout300", "energy_u_heldout300"}
    directions = metric_directions()
    for key in list(m) + list(s):
        assert metric_direction(key) in ("higher", "lower")
        assert any(key.startswith(p) for p in directions)
    assert metric_direction("energy_u_heldout500") == "lower"
    assert metric_direction("hq4sigma_pct") == "higher"


def test_compute_metrics_rejects_bad_input():
    good = sample_25gaussians(100, np.random.default_rng(9))
    bad = good.copy()
    bad[3, 0], bad[10, 1], bad[11] = np.nan, np.inf, np.nan
    with pytest.raises(ValueError, match="NaN/Inf in 3 of 100"):
        compute_toy2d_metrics("25gaussians", bad, good)
    with pytest.raises(ValueError, match="'moons'.*valid choices"):
        compute_toy2d_metrics("moons", good, good)
    with pytest.raises(ValueError, match="shape"):
        compute_toy2d_metrics("25gaussians", good[:, :1], good)


def test_unbiased_energy_of_one_distribution_is_zero_on_average():
    # the V-statistic exceeds the distance by ~E|X-X'|/n + E|Y-Y'|/m; the U-statistic averages to 0
    rng = np.random.default_rng(5)
    v, u = [], []
    for _ in range(40):
        x, y = rng.normal(size=(200, 2)), rng.normal(size=(300, 2))
        v.append(energy_distance(x, y))
        u.append(energy_distance(x, y, unbiased=True))
    bias = np.sqrt(np.pi) * (1 / 200 + 1 / 300)  # E|X - X'| = sqrt(pi) for N(0, I_2): 0.0148
    # 3 standard errors of a mean of 40 runs (one run's sd is ~0.006)
    assert abs(np.mean(v) - bias) < 0.003
    assert abs(np.mean(u)) < 0.003
    x, y = rng.normal(size=(50, 2)), rng.normal(size=(70, 2))
    assert energy_distance(x, y, unbiased=True) == pytest.approx(
        energy_distance(x, y) - mean_pairwise_distance(x, x) / 49 - mean_pairwise_distance(y, y) / 69, rel=1e-12)
