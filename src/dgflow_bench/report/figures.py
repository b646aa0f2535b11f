"""2-D figures in the paper's style: real data, then per method the base samples (blue) under the
refined samples (red), plus each metric against refinement step."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: jobs run without a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..io import atomic_path  # noqa: E402

BASE, REFINED, REAL = "#1f77b4", "#d62728", "#2ca02c"


def _limits(points: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(points, [0.5, 99.5])
    pad = 0.15 * (hi - lo)
    return float(lo - pad), float(hi + pad)


def _save(fig, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def scatter_grid(panels: list[dict], real: np.ndarray, path: str | Path, title: str) -> None:
    """``panels``: rows of {'label', 'base', 'refined' (None for the base row)}."""
    n = len(panels) + 1
    cols = min(n, 4)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    lim = _limits(real)
    axes.flat[0].scatter(real[:, 0], real[:, 1], s=2, c=REAL, alpha=0.5, linewidths=0)
    axes.flat[0].set_title("real (held-out)", fontsize=9)
    for ax, panel in zip(axes.flat[1:], panels):
        ax.scatter(panel["base"][:, 0], panel["base"][:, 1], s=2, c=BASE, alpha=0.4, linewidths=0)
        if panel.get("refined") is not None:
            ax.scatter(panel["refined"][:, 0], panel["refined"][:, 1], s=2, c=REFINED, alpha=0.6, linewidths=0)
        ax.set_title(panel["label"], fontsize=9)
    for ax in axes.flat:
        ax.set_xlim(lim)
        ax.set_ylim(lim)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.flat[n:]:
        ax.axis("off")
    fig.suptitle(title + "  (blue: base samples, red: refined)", fontsize=10)
    _save(fig, path)


def metric_curves(curves: dict[str, dict[str, list[tuple[int, float]]]], path: str | Path, title: str) -> None:
    """``curves[metric][label]`` = [(step, value), ...]: one panel per metric, one line per run."""
    metrics = sorted(curves)
    # constrained layout keeps the title, the panel titles and the shared legend below from overlapping
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.6), squeeze=False,
                             layout="constrained")
    for ax, metric in zip(axes.flat, metrics):
        for label, points in sorted(curves[metric].items()):
            steps, values = zip(*points)
            ax.plot(steps, values, marker="o", ms=3, label=label)
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel("refinement step")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(4, len(labels)), fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)
