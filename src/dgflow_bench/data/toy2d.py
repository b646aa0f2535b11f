"""2-D toy data sets of the WGAN-GP toy code (Gulrajani et al. 2017), as reused by DOT and DGflow.

Pure numpy and deterministic given the random generator that is passed in.

* 25Gaussians: modes at (2i, 2j), i, j in {-2, ..., 2}, per-coordinate noise std 0.05, the whole point
  divided by 2.828 afterwards (so the std of the scaled data is 0.05 / 2.828 = ``STD_25G``).
* Swissroll: the formula of scikit-learn's ``make_swiss_roll(noise=0.25)`` reproduced here (not called:
  the data do not depend on a scikit-learn version), keeping columns (x, z) and dividing by 7.5.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = [
    "SCALE_25G",
    "RAW_STD_25G",
    "MODES_25G",
    "STD_25G",
    "SCALE_SWISSROLL",
    "RAW_NOISE_SWISSROLL",
    "SWISSROLL_NOISE",
    "SWISSROLL_T_RANGE",
    "sample_25gaussians",
    "sample_swissroll",
    "swissroll_curve",
    "TOY2D_SAMPLERS",
    "sample_toy2d",
]

# --- 25Gaussians -------------------------------------------------------------------------------
SCALE_25G = 2.828
RAW_STD_25G = 0.05
_GRID = np.arange(-2, 3, dtype=np.float64)
# Row-major over (i, j): mode k has i = _GRID[k // 5], j = _GRID[k % 5].
MODES_25G: np.ndarray = np.stack(np.meshgrid(2.0 * _GRID, 2.0 * _GRID, indexing="ij"), -1).reshape(25, 2) / SCALE_25G
MODES_25G.setflags(write=False)
STD_25G = RAW_STD_25G / SCALE_25G

# --- Swissroll ---------------------------------------------------------------------------------
SCALE_SWISSROLL = 7.5
RAW_NOISE_SWISSROLL = 0.25
SWISSROLL_NOISE = RAW_NOISE_SWISSROLL / SCALE_SWISSROLL
SWISSROLL_T_RANGE = (1.5 * np.pi, 4.5 * np.pi)


def _check_n(n: int) -> int:
    if isinstance(n, bool) or int(n) != n or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    return int(n)


def sample_25gaussians(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points of 25Gaussians as float32 ``(n, 2)``.

    Each point: a mode (2i, 2j) chosen uniformly, plus N(0, 0.05^2) noise per coordinate, then the whole
    point divided by 2.828 (as in the WGAN-GP toy code).
    """
    n = _check_n(n)
    mode_idx = rng.integers(0, 25, size=n)
    noise = rng.normal(0.0, RAW_STD_25G, size=(n, 2))
    raw_centres = MODES_25G * SCALE_25G  # back to the unscaled grid (2i, 2j)
    points = (raw_centres[mode_idx] + noise) / SCALE_25G
    return points.astype(np.float32)


def sample_swissroll(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points of the 2-D Swissroll as float32 ``(n, 2)``.

    Reproduces scikit-learn's ``make_swiss_roll(n, noise=0.25)`` formula, with the same order of draws::

        t = 1.5 pi (1 + 2 U1);  x = t cos t;  y = 21 U2;  z = t sin t
        (x, y, z) += 0.25 * N(0, I_3)

    and keeps columns (x, z), divided by 7.5. Passing ``np.random.RandomState(seed)`` as ``rng`` gives
    exactly ``make_swiss_roll(n, noise=0.25, random_state=seed)[0][:, [0, 2]] / 7.5``.
    """
    n = _check_n(n)
    t = 1.5 * np.pi * (1.0 + 2.0 * rng.uniform(size=n))
    y = 21.0 * rng.uniform(size=n)
    xyz = np.vstack((t * np.cos(t), y, t * np.sin(t)))
    xyz += RAW_NOISE_SWISSROLL * rng.standard_normal(size=(3, n))
    return (xyz[[0, 2]].T / SCALE_SWISSROLL).astype(np.float32)


def swissroll_curve(n_points: int = 20000) -> np.ndarray:
    """The noise-free Swissroll curve ``(t cos t, t sin t) / 7.5`` for t in [1.5 pi, 4.5 pi], float64.

    Sampled uniformly in t. With the default 20000 points consecutive points are < 0.001 apart (the
    speed |dc/dt| <= sqrt(1 + t^2) / 7.5 < 1.9), fine enough for distance-to-curve metrics.
    """
    if int(n_points) != n_points or n_points < 2:
        raise ValueError(f"n_points must be an integer >= 2, got {n_points!r}")
    t = np.linspace(SWISSROLL_T_RANGE[0], SWISSROLL_T_RANGE[1], int(n_points))
    return np.stack((t * np.cos(t), t * np.sin(t)), axis=1) / SCALE_SWISSROLL


TOY2D_SAMPLERS: dict[str, Callable[[int, np.random.Generator], np.ndarray]] = {
    "25gaussians": sample_25gaussians,
    "swissroll": sample_swissroll,
}


def sample_toy2d(dataset: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Dispatch to the sampler of ``dataset`` (one of ``TOY2D_SAMPLERS``)."""
    try:
        sampler = TOY2D_SAMPLERS[dataset]
    except KeyError:
        raise ValueError(f"unknown 2-D dataset {dataset!r}; valid choices: {sorted(TOY2D_SAMPLERS)}") from None
    return sampler(n, rng)
