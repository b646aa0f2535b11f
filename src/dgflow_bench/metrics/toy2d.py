"""Quantitative metrics for the 2-D toy data sets (25Gaussians, Swissroll).

Every metric is a small pure function of numpy arrays computed in float64. Pairwise computations are
split into row chunks (about 100 MB each); each row's reduction always runs over the full set of columns
and rows are combined only at the end, so results do not depend on the chunk size.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from dgflow_bench.data.toy2d import MODES_25G, STD_25G, SWISSROLL_NOISE, swissroll_curve

__all__ = [
    "TOY2D_DATASETS",
    "HQ_SIGMAS",
    "nearest_distance",
    "high_quality_fraction",
    "modes_covered",
    "kde_log_likelihood",
    "energy_distance",
    "compute_toy2d_metrics",
    "compute_free_points_metrics",
    "NOT_DEFINED",
    "metric_directions",
    "metric_direction",
]

TOY2D_DATASETS = ("25gaussians", "swissroll")
HQ_SIGMAS = 4.0  # "high quality" = within 4 sigma of the clean data
_CHUNK_BYTES = 100_000_000


def _as_points(x, name: str, dim: int | None = None) -> np.ndarray:
    """float64 (n, d) array; rejects NaN/Inf with a count so a diverged refiner fails loudly."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1 and dim in (None, 1):  # 1-D input = n scalar points
        arr = arr[:, None]
    if arr.ndim != 2 or (dim is not None and arr.shape[1] != dim):
        want = f"(n, {dim})" if dim is not None else "(n, d)"
        raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    bad = int(np.count_nonzero(~np.isfinite(arr).all(axis=1)))
    if bad:
        raise ValueError(f"{name} contains NaN/Inf in {bad} of {len(arr)} points")
    return arr


def _row_chunk(n_cols: int, chunk_rows: int | None) -> int:
    if chunk_rows is not None:
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
        return int(chunk_rows)
    # ~3 float64 temporaries of shape (rows, n_cols) live at once.
    return max(1, _CHUNK_BYTES // (3 * 8 * max(n_cols, 1)))


def _pairwise_sq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact squared distances via coordinate differences (no |a|^2+|b|^2-2ab cancellation)."""
    # in place: the same operations as sum_k (a_k - b_k)^2 without a temporary per term (memory-bound sizes);
    # the first term is written, not added to zeros (0 + x == x exactly: two passes fewer, the same bits)
    if a.shape[1] == 0:
        return np.zeros((len(a), len(b)))
    sq = np.empty((len(a), len(b)))
    np.subtract(a[:, 0, None], b[None, :, 0], out=sq)
    np.square(sq, out=sq)
    if a.shape[1] > 1:
        diff = np.empty_like(sq)
        for k in range(1, a.shape[1]):
            np.subtract(a[:, k, None], b[None, :, k], out=diff)
            np.square(diff, out=diff)
            sq += diff
    return sq


def _nearest(x: np.ndarray, reference: np.ndarray, chunk_rows: int | None = None):
    if len(reference) == 0:
        raise ValueError("reference set is empty")
    step = _row_chunk(len(reference), chunk_rows)
    dist = np.empty(len(x))
    idx = np.empty(len(x), dtype=np.int64)
    for s in range(0, len(x), step):
        sq = _pairwise_sq(x[s : s + step], reference)
        idx[s : s + step] = np.argmin(sq, axis=1)
        dist[s : s + step] = np.sqrt(np.take_along_axis(sq, idx[s : s + step, None], axis=1)[:, 0])
    return dist, idx


def nearest_distance(x, reference, *, chunk_rows: int | None = None) -> np.ndarray:
    """(n,) Euclidean distance from each row of ``x`` to its nearest row of ``reference``."""
    x = _as_points(x, "x")
    reference = _as_points(reference, "reference", x.shape[1])
    return _nearest(x, reference, chunk_rows)[0]


@lru_cache(maxsize=1)
def _clean_curve() -> np.ndarray:
    curve = swissroll_curve()
    curve.setflags(write=False)
    return curve


@lru_cache(maxsize=1)
def _clean_curve_tree():
    """A k-d tree over the curve's points: the exact nearest point in O(log m) instead of a scan of all m
    (the scan dominated the evaluation of large samples)."""
    from scipy.spatial import cKDTree

    return cKDTree(_clean_curve())


def _check_dataset(dataset: str) -> None:
    if dataset not in TOY2D_DATASETS:
        raise ValueError(f"unknown 2-D dataset {dataset!r}; valid choices: {list(TOY2D_DATASETS)}")


def _high_quality_mask(x: np.ndarray, dataset: str) -> np.ndarray:
    _check_dataset(dataset)
    if dataset == "25gaussians":
        return nearest_distance(x, MODES_25G) <= HQ_SIGMAS * STD_25G
    distance, _ = _clean_curve_tree().query(_as_points(x, "x", 2))
    return distance <= HQ_SIGMAS * SWISSROLL_NOISE


def high_quality_fraction(x, dataset: str) -> float:
    """Fraction of samples within 4 sigma of the clean (noise-free) data.

    * 25gaussians: Euclidean distance to the nearest mode centre <= 4 * STD_25G (= 4 * 0.05 / 2.828).
      For real data this holds with probability 1 - exp(-8) ~= 0.99966 (Rayleigh tail).
    * swissroll: Euclidean distance to the noise-free curve (``swissroll_curve``) <= 4 * SWISSROLL_NOISE
      (= 4 * 0.25 / 7.5).
    """
    x = _as_points(x, "x", 2)
    if len(x) == 0:
        raise ValueError("x is empty")
    return float(np.mean(_high_quality_mask(x, dataset)))


def modes_covered(x, min_share: float = 0.1) -> int:
    """Number of 25Gaussians modes covered by ``x`` (n samples).

    Rule: every high-quality sample (within 4 * STD_25G of its nearest mode) is assigned to that mode; a
    mode is covered when it holds >= min_share * n / 25 high-quality samples, i.e. at least ``min_share``
    of what a perfect sampler would put there. A single stray sample therefore does not cover a mode.
    """
    x = _as_points(x, "x", 2)
    if len(x) == 0:
        raise ValueError("x is empty")
    if not 0.0 < min_share <= 1.0:
        raise ValueError(f"min_share must be in (0, 1], got {min_share}")
    dist, idx = _nearest(x, MODES_25G)
    counts = np.bincount(idx[dist <= HQ_SIGMAS * STD_25G], minlength=len(MODES_25G))
    return int(np.count_nonzero(counts >= min_share * len(x) / len(MODES_25G)))


# exp's arguments are clipped here from below: exp(-700) ~ 1e-304 is still a normal number, while arguments
# under about -708 take libm's slow underflow path (three times slower; most KDE terms of far points do).
# Bit-identical: every row holds exp(0) = 1, so a sum of up to 1e280 clipped terms of 1e-304 is absorbed.
_EXP_FLOOR = -700.0


def _logsumexp_rows(a: np.ndarray) -> np.ndarray:
    """Row-wise logsumexp; overwrites ``a`` (a temporary of the caller) to spare two copies of it."""
    m = a.max(axis=1, keepdims=True)
    a -= m
    np.maximum(a, _EXP_FLOOR, out=a)
    np.exp(a, out=a)
    return m[:, 0] + np.log(np.sum(a, axis=1))


def kde_log_likelihood(samples, heldout, bandwidth: float, *, chunk_rows: int | None = None) -> float:
    """Mean log-density of ``heldout`` under an isotropic Gaussian KDE of ``samples`` (2-D, std h).

    log p(y) = logsumexp_i(-|y - x_i|^2 / (2 h^2)) - log n - log(2 pi h^2), averaged over held-out y.
    """
    x = _as_points(samples, "samples", 2)
    y = _as_points(heldout, "heldout", 2)
    if len(x) == 0 or len(y) == 0:
        raise ValueError("samples and heldout must be non-empty")
    if not (np.isfinite(bandwidth) and bandwidth > 0):
        raise ValueError(f"bandwidth must be a positive finite number, got {bandwidth}")
    h2 = float(bandwidth) ** 2
    step = _row_chunk(len(x), chunk_rows)
    per_point = np.empty(len(y))
    for s in range(0, len(y), step):
        scaled = _pairwise_sq(y[s : s + step], x)
        np.negative(scaled, out=scaled)  # -d^2 / (2 h^2), as (-d^2) / (2 h^2), in place
        scaled /= 2.0 * h2
        per_point[s : s + step] = _logsumexp_rows(scaled)
    per_point -= np.log(len(x)) + np.log(2.0 * np.pi * h2)
    return float(np.mean(per_point))


def mean_pairwise_distance(a, b, *, chunk_rows: int | None = None) -> float:
    """E|A - B| over all pairs (i = j included), float64: the terms of the energy distance. The held-out
    set's own term E|Y - Y'| is the same for every snapshot, so callers compute it once."""
    a = _as_points(a, "a")
    return _mean_pairwise_distance(a, _as_points(b, "b", a.shape[1]), chunk_rows)


def _mean_pairwise_distance(a: np.ndarray, b: np.ndarray, chunk_rows: int | None) -> float:
    step = _row_chunk(len(b), chunk_rows)
    row_sums = np.empty(len(a))
    for s in range(0, len(a), step):
        sq = _pairwise_sq(a[s : s + step], b)
        row_sums[s : s + step] = np.sqrt(sq, out=sq).sum(axis=1)
    return float(row_sums.sum() / (len(a) * len(b)))


def energy_distance(x, y, *, chunk_rows: int | None = None, yy: float | None = None,
                    unbiased: bool = False) -> float:
    """Energy distance 2 E|X-Y| - E|X-X'| - E|Y-Y'|, float64.

    unbiased=False: the V-statistic (all pairs, i = j included); in 1-D it equals
    ``scipy.stats.energy_distance(x, y) ** 2`` and it is nonnegative, but it exceeds the true distance by
    about E|X-X'|/n + E|Y-Y'|/m: two samples of one distribution score ~1e-3 on the 2-D sets at n = m = 2,000,
    as much as the differences between methods. unbiased=True: the U-statistic (the within-sample means
    leave out i = j), whose expectation is the true distance (0 for one distribution), so it can be slightly
    negative. ``yy``: E|Y-Y'| with i = j included (``mean_pairwise_distance(y, y)``) if already known.
    """
    x = _as_points(x, "x")
    y = _as_points(y, "y", x.shape[1])
    if len(x) == 0 or len(y) == 0:
        raise ValueError("x and y must be non-empty")
    xy = _mean_pairwise_distance(x, y, chunk_rows)
    xx = _mean_pairwise_distance(x, x, chunk_rows)
    if yy is None:
        yy = _mean_pairwise_distance(y, y, chunk_rows)
    if unbiased:
        if len(x) < 2 or len(y) < 2:
            raise ValueError("the unbiased energy distance needs at least two points in each sample")
        xx, yy = xx * len(x) / (len(x) - 1), yy * len(y) / (len(y) - 1)  # drop the n zero i = j terms
    return float(2.0 * xy - xx - yy)


def compute_toy2d_metrics(
    dataset: str,
    samples,
    heldout,
    *,
    kde_bandwidth: float = 0.05,
    mode_min_share: float = 0.1,
    heldout_self_distance: float | None = None,
) -> dict[str, float]:
    """All 2-D metrics of ``samples`` against held-out real data, keyed by name + protocol.

    Keys: ``hq4sigma_pct`` (percent within 4 sigma of the clean data), ``modes_covered_min{share}share``
    (25gaussians only), ``kde_ll_h{h}_heldout{N}`` (mean held-out log-likelihood under a KDE of the
    samples), ``energy_u_heldout{N}`` (unbiased energy distance between samples and held-out data).
    ``heldout_self_distance``: E|Y-Y'| of ``heldout``, computed once per job by the caller.
    """
    _check_dataset(dataset)
    x = _as_points(samples, "samples", 2)
    y = _as_points(heldout, "heldout", 2)
    n_held = len(y)
    out: dict[str, float] = {"hq4sigma_pct": 100.0 * high_quality_fraction(x, dataset)}
    if dataset == "25gaussians":
        out[f"modes_covered_min{mode_min_share:g}share"] = float(modes_covered(x, mode_min_share))
    out[f"kde_ll_h{kde_bandwidth:g}_heldout{n_held}"] = kde_log_likelihood(x, y, kde_bandwidth)
    out[f"energy_u_heldout{n_held}"] = energy_distance(x, y, yy=heldout_self_distance, unbiased=True)
    return out


# the table's cell for a metric a dataset of free points (kind: points) does not define: no number is made up
NOT_DEFINED = {
    "hq4sigma_pct": "n/a (free points: no known clean data to be within 4 sigma of)",
    "modes_covered": "n/a (free points: no known modes)",
}


def compute_free_points_metrics(samples, heldout, *, kde_bandwidth: float = 0.05, mode_min_share: float = 0.1,
                                heldout_self_distance: float | None = None) -> dict[str, float | str]:
    """The metrics of compute_toy2d_metrics for points you bring (no known modes or clean curve): the same
    ``kde_ll_h{h}_heldout{N}`` and ``energy_u_heldout{N}`` against the held-out points, and ``hq4sigma_pct`` /
    ``modes_covered_min{share}share`` as the NOT_DEFINED sentences."""
    x = _as_points(samples, "samples", 2)
    y = _as_points(heldout, "heldout", 2)
    return {"hq4sigma_pct": NOT_DEFINED["hq4sigma_pct"],
            f"modes_covered_min{mode_min_share:g}share": NOT_DEFINED["modes_covered"],
            f"kde_ll_h{kde_bandwidth:g}_heldout{len(y)}": kde_log_likelihood(x, y, kde_bandwidth),
            f"energy_u_heldout{len(y)}": energy_distance(x, y, yy=heldout_self_distance, unbiased=True)}


_DIRECTIONS = {"hq4sigma_pct": "higher", "modes_covered": "higher", "kde_ll": "higher", "energy": "lower"}


def metric_directions() -> dict[str, str]:
    """Key prefix -> 'higher' or 'lower' (which direction is better), for result tables."""
    return dict(_DIRECTIONS)


def metric_direction(key: str) -> str:
    """'higher' or 'lower' for a full metric key such as ``kde_ll_h0.05_heldout5000``."""
    for prefix, direction in _DIRECTIONS.items():
        if key.startswith(prefix):
            return direction
    raise ValueError(f"no direction known for metric {key!r}; known prefixes: {sorted(_DIRECTIONS)}")
