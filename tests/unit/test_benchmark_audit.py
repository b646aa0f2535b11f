"""The audit scripts' own building blocks (benchmarks/, docs/rejection-audit.md): the closed-form 2-D data
densities against the data sampler, the binned KDE against an exact density, and the step-size rule's choice
and ties on constructed scores."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from select_eta import GRID, select  # noqa: E402
from toy2d_densities import GridKDE, log_p_data  # noqa: E402

from dgflow_bench.data.toy2d import sample_toy2d  # noqa: E402


@pytest.mark.parametrize("dataset", ["25gaussians", "swissroll"])
def test_closed_form_density_integrates_to_one_and_matches_the_sampler(dataset):
    # a Riemann sum of Gaussians of std s on a grid of step h errs by about exp(-2 pi^2 s^2 / h^2): ~1e-6 here
    step = 0.02 if dataset == "25gaussians" else 0.04
    g = np.arange(-2.4, 2.4, step) + step / 2
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    assert np.exp(log_p_data(dataset, grid)).sum() * step * step == pytest.approx(1.0, abs=1e-4)
    # the sampler's points are where the density is: a KDE of 200,000 draws agrees within a fraction of a nat
    rng = np.random.default_rng(0)
    points = sample_toy2d(dataset, 200_000, rng).astype(np.float64)
    query = sample_toy2d(dataset, 2_000, rng).astype(np.float64)
    error = GridKDE(points, 0.006).log_density(query) - log_p_data(dataset, query)
    assert abs(np.median(error)) < 0.15
    # and a density of a different data set is far off: the check can fail
    other = "swissroll" if dataset == "25gaussians" else "25gaussians"
    assert np.mean(log_p_data(other, query)) < np.mean(log_p_data(dataset, query)) - 5


def test_grid_kde_of_a_gaussian_is_the_smoothed_gaussian():
    rng = np.random.default_rng(1)
    points = rng.normal(0.0, 0.1, size=(400_000, 2))
    h = 0.02
    query = rng.normal(0.0, 0.1, size=(1000, 2))
    s2 = 0.1 ** 2 + h ** 2  # a Gaussian KDE of N(0, s^2) is N(0, s^2 + h^2)
    exact = -np.log(2 * np.pi * s2) - (query ** 2).sum(1) / (2 * s2)
    error = GridKDE(points, h).log_density(query) - exact
    assert abs(np.median(error)) < 0.01  # no bias from the binning
    assert np.percentile(np.abs(error), 90) < 0.05  # the rest: the KDE's own noise, larger in the tails
    assert abs(np.median(GridKDE(points, 2 * h).log_density(query) - exact)) > 0.02  # a wrong h shows


def _changes(means, noise, draws=8, seed=0):
    """Per-draw changes: the candidates' means plus one common draw effect and small independent noise."""
    rng = np.random.default_rng(seed)
    common = rng.normal(0, 1.0, size=(draws, 1))  # shared by every candidate of a draw: cancels in pairs
    return np.asarray(means)[None] + common + rng.normal(0, noise, size=(draws, len(means)))


def test_rule_picks_the_lowest_worst_mean_when_the_gap_is_resolved():
    a = _changes([0.0, -1.0, -2.0, -1.5, -0.5, -0.1], noise=0.05)
    b = _changes([0.5, 0.2, 0.1, 0.3, 0.4, 0.5], noise=0.05, seed=1)
    chosen, facts = select({"a": a, "b": b})
    assert chosen == GRID[2]
    assert facts["tied"] == [GRID[2]]
    # the paired standard error is the small independent noise, not the draw effect shared by all candidates
    assert facts["per_run"]["a"][GRID[1]][1] < 0.1


def test_rule_sends_ties_to_the_smallest_step():
    means = np.array([0.0, -0.02, -0.05, -0.03, -0.01, 0.0])
    # per-draw deviations of mean exactly zero and a different sign pattern per candidate: the gaps of the
    # means are exactly those above, far below their paired standard errors (about 0.3)
    signs = np.array([[(-1) ** (k + i * (k // 2)) for i in range(6)] for k in range(8)])
    a = means[None] + 0.5 * signs
    assert np.allclose(a.mean(0), means)
    chosen, facts = select({"a": a})
    assert chosen == min(GRID)
    assert len(facts["tied"]) > 1 and min(GRID) in facts["tied"]
