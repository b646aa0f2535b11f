"""Densities for the density-ratio audit (benchmarks/density_ratio_audit.py): the 2-D data sets' exact log
density, and a grid kernel density estimate for a generator's, whose own error is measured on the data.

* 25Gaussians: an equal mixture of 25 isotropic Gaussians of std ``STD_25G`` at ``MODES_25G``
  (src/dgflow_bench/data/toy2d.py draws a mode uniformly, adds N(0, 0.05^2) per coordinate, divides by 2.828).
* Swissroll: t ~ U[1.5 pi, 4.5 pi], x = (t cos t, t sin t) / 7.5 + N(0, (0.25 / 7.5)^2 I) (the generator keeps
  columns x and z of make_swiss_roll, whose noise is independent per column), so
  p(x) = E_t N(x; c(t), s^2 I), a 1-D integral over t, here a midpoint rule on ``SWISSROLL_NODES`` nodes:
  the curve moves < 0.005 between nodes, a seventh of the noise std 0.033.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.special import logsumexp

from dgflow_bench.data.toy2d import MODES_25G, SCALE_SWISSROLL, STD_25G, SWISSROLL_NOISE, SWISSROLL_T_RANGE

SWISSROLL_NODES = 4000
CHUNK = 4096  # query rows per logsumexp block (4096 x 4000 float64: 130 MB)


def _gaussian_mixture_log_density(x: np.ndarray, centres: np.ndarray, std: float) -> np.ndarray:
    """log (1/K) sum_k N(x; centre_k, std^2 I) for 2-D x, float64."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty(len(x))
    for s in range(0, len(x), CHUNK):
        sq = ((x[s:s + CHUNK, None, :] - centres[None]) ** 2).sum(-1)
        out[s:s + CHUNK] = logsumexp(-sq / (2 * std * std), axis=1)
    return out - np.log(len(centres)) - np.log(2 * np.pi * std * std)


def swissroll_nodes(n: int = SWISSROLL_NODES) -> np.ndarray:
    lo, hi = SWISSROLL_T_RANGE
    t = lo + (np.arange(n) + 0.5) * (hi - lo) / n  # midpoints: t is uniform, so equal weights
    return np.stack((t * np.cos(t), t * np.sin(t)), axis=1) / SCALE_SWISSROLL


def log_p_data(dataset: str, x: np.ndarray) -> np.ndarray:
    """The exact log density of the 2-D data set at each row of ``x``."""
    if dataset == "25gaussians":
        return _gaussian_mixture_log_density(x, np.asarray(MODES_25G, dtype=np.float64), STD_25G)
    if dataset == "swissroll":
        return _gaussian_mixture_log_density(x, swissroll_nodes(), SWISSROLL_NOISE)
    raise ValueError(f"no closed-form density for {dataset!r}: choose 25gaussians or swissroll")


class GridKDE:
    """Gaussian KDE of many 2-D points, binned: a histogram of cell ``cell`` over [-half, half]^2 smoothed by a
    Gaussian of std ``bandwidth`` (cell << bandwidth, so binning moves each point by under cell / 2), read
    at a query point by bilinear interpolation. Cost independent of the sample size, unlike an exact KDE.
    Points outside the box get the density floor ``floor`` (and are counted in ``outside``)."""

    def __init__(self, points: np.ndarray, bandwidth: float, half: float = 2.4, cell: float = 0.0025,
                 floor: float = 1e-12):
        edges = np.arange(-half, half + cell / 2, cell)
        counts, _, _ = np.histogram2d(points[:, 0], points[:, 1], bins=(edges, edges))
        self.density = gaussian_filter(counts, bandwidth / cell, mode="constant", truncate=5.0)
        self.density /= len(points) * cell * cell
        self.centres = (edges[:-1] + edges[1:]) / 2
        self.cell, self.half, self.floor, self.bandwidth = cell, half, floor, bandwidth
        self.outside = int(np.count_nonzero(np.abs(points).max(1) >= half))

    def log_density(self, x: np.ndarray) -> np.ndarray:
        u = (np.asarray(x, dtype=np.float64) - self.centres[0]) / self.cell
        n = len(self.centres)
        i0 = np.clip(np.floor(u).astype(int), 0, n - 2)
        f = np.clip(u - i0, 0.0, 1.0)
        d = self.density
        value = ((1 - f[:, 0]) * (1 - f[:, 1]) * d[i0[:, 0], i0[:, 1]] + f[:, 0] * (1 - f[:, 1]) * d[i0[:, 0] + 1, i0[:, 1]]
                 + (1 - f[:, 0]) * f[:, 1] * d[i0[:, 0], i0[:, 1] + 1] + f[:, 0] * f[:, 1] * d[i0[:, 0] + 1, i0[:, 1] + 1])
        value[np.abs(x).max(1) >= self.half] = 0.0
        return np.log(np.maximum(value, self.floor))


def select_bandwidth(pool: np.ndarray, heldout: np.ndarray, grid=(0.003, 0.005, 0.008, 0.012, 0.02, 0.03)
                     ) -> tuple[float, dict]:
    """The bandwidth of ``grid`` with the highest mean held-out log density (held-out points of the same law)."""
    scores = {h: float(GridKDE(pool, h).log_density(heldout).mean()) for h in grid}
    return max(scores, key=scores.get), scores
