"""Tests for the 2-D toy samplers (25Gaussians, Swissroll)."""

import numpy as np
import pytest

from dgflow_bench.data.toy2d import (
    MODES_25G,
    STD_25G,
    SWISSROLL_NOISE,
    TOY2D_SAMPLERS,
    sample_25gaussians,
    sample_swissroll,
    sample_toy2d,
    swissroll_curve,
)


def test_modes_grid():
    assert MODES_25G.shape == (25, 2) and MODES_25G.dtype == np.float64
    expected = {(2 * i / 2.828, 2 * j / 2.828) for i in range(-2, 3) for j in range(-2, 3)}
    got = {tuple(m) for m in MODES_25G}
    assert len(got) == 25
    for e in expected:
        assert min(np.hypot(e[0] - g[0], e[1] - g[1]) for g in got) < 1e-12
    assert STD_25G == pytest.approx(0.05 / 2.828)
    assert SWISSROLL_NOISE == pytest.approx(0.25 / 7.5)


@pytest.mark.parametrize("name", sorted(TOY2D_SAMPLERS))
def test_shape_dtype_determinism(name):
    sampler = TOY2D_SAMPLERS[name]
    a = sampler(1000, np.random.default_rng(3))
    b = sampler(1000, np.random.default_rng(3))
    c = sampler(1000, np.random.default_rng(4))
    assert a.shape == (1000, 2) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert sampler(0, np.random.default_rng(0)).shape == (0, 2)
    np.testing.assert_array_equal(sample_toy2d(name, 1000, np.random.default_rng(3)), a)


def test_unknown_dataset_names_choices():
    with pytest.raises(ValueError, match="moons.*25gaussians"):
        sample_toy2d("moons", 10, np.random.default_rng(0))


def test_25gaussians_mode_counts_and_std():
    n = 100_000
    x = sample_25gaussians(n, np.random.default_rng(0)).astype(np.float64)
    d = x[:, None, :] - MODES_25G[None]
    idx = np.argmin((d**2).sum(-1), axis=1)
    counts = np.bincount(idx, minlength=25)
    # Multinomial: std of each count ~ sqrt(n/25) = 63; 5 sigma band.
    assert np.all(np.abs(counts - n / 25) < 5 * np.sqrt(n / 25))
    resid = x - MODES_25G[idx]
    np.testing.assert_allclose(resid.mean(0), 0.0, atol=5 * STD_25G / np.sqrt(n))
    np.testing.assert_allclose(resid.std(0), STD_25G, rtol=0.02)


def test_swissroll_matches_formula():
    n = 500
    x = sample_swissroll(n, np.random.default_rng(7))
    rng = np.random.default_rng(7)
    u1, u2 = rng.uniform(size=n), rng.uniform(size=n)
    noise = rng.standard_normal(size=(3, n))
    t = 1.5 * np.pi * (1 + 2 * u1)
    assert u2.shape == (n,)  # y = 21 * u2 is drawn (and dropped) to keep sklearn's order of draws
    expected = np.stack([t * np.cos(t) + 0.25 * noise[0], t * np.sin(t) + 0.25 * noise[2]], 1) / 7.5
    np.testing.assert_allclose(x, expected.astype(np.float32), rtol=1e-6, atol=1e-6)


def test_swissroll_matches_sklearn_if_available():
    datasets = pytest.importorskip("sklearn.datasets")
    ref = datasets.make_swiss_roll(2000, noise=0.25, random_state=11)[0][:, [0, 2]] / 7.5
    ours = sample_swissroll(2000, np.random.RandomState(11))
    np.testing.assert_allclose(ours, ref.astype(np.float32), rtol=1e-6, atol=1e-6)


def test_swissroll_radius_range():
    x = sample_swissroll(20_000, np.random.default_rng(1)).astype(np.float64)
    r = np.hypot(x[:, 0], x[:, 1])
    r_min, r_max = 1.5 * np.pi / 7.5, 4.5 * np.pi / 7.5
    # Noise is 0.25/7.5 per coordinate, so radii stay within ~6 sigma of the clean range.
    assert r.min() > r_min - 6 * SWISSROLL_NOISE and r.max() < r_max + 6 * SWISSROLL_NOISE
    assert r.min() < r_min + 0.05 and r.max() > r_max - 0.05


def test_swissroll_curve():
    c = swissroll_curve()
    assert c.shape == (20000, 2) and c.dtype == np.float64
    t0, t1 = 1.5 * np.pi, 4.5 * np.pi
    np.testing.assert_allclose(c[0], [t0 * np.cos(t0) / 7.5, t0 * np.sin(t0) / 7.5], atol=1e-12)
    np.testing.assert_allclose(c[-1], [t1 * np.cos(t1) / 7.5, t1 * np.sin(t1) / 7.5], atol=1e-12)
    steps = np.hypot(*np.diff(c, axis=0).T)
    assert steps.max() < 0.005
    # Radius equals t / 7.5 on the clean curve.
    r = np.hypot(c[:, 0], c[:, 1])
    np.testing.assert_allclose(r, np.linspace(t0, t1, 20000) / 7.5, rtol=1e-12)
