"""Pure FID / IS arithmetic: features -> Gaussian statistics -> Fréchet distance; class probabilities -> IS.

Everything runs in float64. The statistics are accumulated batch by batch (sum and sum of outer products), so
60k x 2048 features never need to sit in memory at once and the result does not depend on the batch size
beyond float64 rounding. ``frechet_distance`` follows pytorch-fid / TTUR step by step (scipy sqrtm, eps on
the diagonals when the product is singular, drop a negligible imaginary part) so numbers agree with them.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.special

__all__ = [
    "StreamingGaussianStats",
    "gaussian_stats",
    "frechet_distance",
    "frechet_distance_psd",
    "inception_score",
    "StreamingInceptionScore",
]

_IMAG_ATOL = 1e-3  # pytorch-fid's tolerance on the imaginary diagonal of sqrtm(S1 S2)


class StreamingGaussianStats:
    """Running mean and unbiased covariance of feature rows.

    Sums are taken of (x - shift) with the shift fixed to the very first row seen: that removes most of the
    cancellation in ``E[xx^T] - mu mu^T`` when features have a large mean, and the first row is the same
    whatever the batch size, so the batch size still does not matter.
    """

    def __init__(self) -> None:
        self.n = 0
        self._shift: np.ndarray | None = None
        self._sum: np.ndarray | None = None
        self._sum_outer: np.ndarray | None = None

    def update(self, features) -> "StreamingGaussianStats":
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"features must be (n, d), got shape {x.shape}")
        if x.shape[0] == 0:
            return self
        if not np.isfinite(x).all():
            raise ValueError(f"{int((~np.isfinite(x)).sum())} non-finite feature values")
        if self._shift is None:
            self._shift = x[0].copy()
            self._sum = np.zeros(x.shape[1])
            self._sum_outer = np.zeros((x.shape[1], x.shape[1]))
        elif x.shape[1] != self._shift.shape[0]:
            raise ValueError(f"feature dimension changed from {self._shift.shape[0]} to {x.shape[1]}")
        d = x - self._shift
        self._sum += d.sum(axis=0)
        self._sum_outer += d.T @ d
        self.n += x.shape[0]
        return self

    def finalize(self) -> tuple[np.ndarray, np.ndarray]:
        if self.n < 2:
            raise ValueError(f"need at least 2 feature rows for a covariance, got {self.n}")
        mean_d = self._sum / self.n
        sigma = (self._sum_outer - self.n * np.outer(mean_d, mean_d)) / (self.n - 1)
        sigma = 0.5 * (sigma + sigma.T)  # exact symmetry; sqrtm and eigh both assume it
        return self._shift + mean_d, sigma


def gaussian_stats(features, batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) of (N, D) features; sigma equals ``np.cov(features, rowvar=False)``."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be (n, d), got shape {x.shape}")
    step = x.shape[0] if not batch_size else int(batch_size)
    acc = StreamingGaussianStats()
    for start in range(0, x.shape[0], max(step, 1)):
        acc.update(x[start:start + step])
    return acc.finalize()


def _check_pair(mu1, sigma1, mu2, sigma2):
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.ndim != 1 or mu1.shape != mu2.shape:
        raise ValueError(f"mean vectors differ in shape: {mu1.shape} vs {mu2.shape}")
    if sigma1.shape != sigma2.shape or sigma1.shape != (mu1.shape[0],) * 2:
        raise ValueError(f"covariances {sigma1.shape}, {sigma2.shape} do not match means of length {mu1.shape[0]}")
    for name, arr in (("mu1", mu1), ("sigma1", sigma1), ("mu2", mu2), ("sigma2", sigma2)):
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} has non-finite entries")
    return mu1, sigma1, mu2, sigma2


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2}), numerically as pytorch-fid 0.3 / TTUR."""
    mu1, sigma1, mu2, sigma2 = _check_pair(mu1, sigma1, mu2, sigma2)
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        # the product is (nearly) singular: regularise both covariances, as pytorch-fid does
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=_IMAG_ATOL):
            raise ValueError(f"sqrtm(sigma1 @ sigma2) has an imaginary component of "
                             f"{np.max(np.abs(covmean.imag)):.3g}: are both covariances PSD?")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def frechet_distance_psd(mu1, sigma1, mu2, sigma2) -> float:
    """Eigenvalue variant for symmetric PSD inputs: Tr (S1 S2)^{1/2} = sum sqrt eig(S1^{1/2} S2 S1^{1/2}).

    Symmetric eigendecompositions only, so there is no imaginary part to drop; tiny negative eigenvalues
    from rounding are clipped to 0. A cross-check on ``frechet_distance``, not a replacement.
    """
    mu1, sigma1, mu2, sigma2 = _check_pair(mu1, sigma1, mu2, sigma2)
    w1, v1 = np.linalg.eigh(0.5 * (sigma1 + sigma1.T))
    sqrt1 = (v1 * np.sqrt(np.clip(w1, 0, None))) @ v1.T
    inner = sqrt1 @ sigma2 @ sqrt1
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh(0.5 * (inner + inner.T)), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def inception_score(probs, splits: int = 10) -> tuple[float, float]:
    """(mean, std) of exp(E_x KL(p(y|x) || p(y))) over ``splits`` consecutive chunks, as the original
    improved-GAN code (no shuffling, population std). 0 * log 0 is taken as 0 (the original would give NaN).
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probs must be (n, classes), got shape {p.shape}")
    n = p.shape[0]
    if splits < 1 or n < splits:
        raise ValueError(f"need at least splits={splits} rows, got {n}")
    if not np.isfinite(p).all() or (p < 0).any():
        raise ValueError("probs must be finite and non-negative")
    row_sums = p.sum(axis=1)
    if not np.allclose(row_sums, 1.0, atol=1e-6):
        raise ValueError(f"probs rows must sum to 1 (got range [{row_sums.min():.6g}, {row_sums.max():.6g}]); "
                         "pass softmax probabilities, not logits")
    scores = []
    for i in range(splits):
        part = p[i * n // splits:(i + 1) * n // splits]
        p_y = part.mean(axis=0, keepdims=True)
        kl = scipy.special.xlogy(part, part) - scipy.special.xlogy(part, p_y)  # p (log p - log p_y)
        scores.append(np.exp(kl.sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


class StreamingInceptionScore:
    """``inception_score`` over rows that arrive in batches, for a known total ``n``: the same consecutive
    splits (rows i * n // splits ... ), each reduced to sum_rows p and sum_rows sum_y p log p, since
    mean_i KL(p_i || p_split) = mean_i sum_y p_i log p_i - sum_y p_split log p_split. Memory is
    O(splits x classes) whatever n is."""

    def __init__(self, n: int, splits: int = 10) -> None:
        if splits < 1 or n < splits:
            raise ValueError(f"need at least splits={splits} rows, got n={n}")
        self.n, self.splits, self.seen = int(n), int(splits), 0
        self._bounds = np.array([i * n // splits for i in range(splits + 1)])
        self._p_sum: np.ndarray | None = None
        self._plogp_sum = np.zeros(splits)

    def update(self, probs) -> "StreamingInceptionScore":
        p = np.asarray(probs, dtype=np.float64)
        if p.ndim != 2 or not np.isfinite(p).all() or (p < 0).any():
            raise ValueError(f"probs must be finite, non-negative and (n, classes), got shape {p.shape}")
        if self.seen + len(p) > self.n:
            raise ValueError(f"more than the announced n={self.n} rows")
        if self._p_sum is None:
            self._p_sum = np.zeros((self.splits, p.shape[1]))
        rows = self.seen + np.arange(len(p))
        split_of_row = np.searchsorted(self._bounds, rows, side="right") - 1
        np.add.at(self._p_sum, split_of_row, p)
        np.add.at(self._plogp_sum, split_of_row, scipy.special.xlogy(p, p).sum(axis=1))
        self.seen += len(p)
        return self

    def finalize(self) -> tuple[float, float]:
        if self.seen != self.n:
            raise ValueError(f"saw {self.seen} rows, announced n={self.n}")
        counts = np.diff(self._bounds).astype(np.float64)
        p_split = self._p_sum / counts[:, None]
        kl = self._plogp_sum / counts - scipy.special.xlogy(p_split, p_split).sum(axis=1)
        scores = np.exp(kl)
        return float(np.mean(scores)), float(np.std(scores))
