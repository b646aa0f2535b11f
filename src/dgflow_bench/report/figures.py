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


def metric_curves(curves: dict[str, dict[str, list[tuple[int, float]]]], path: str | Path, title: str,
                  styles: dict[str, dict] | None = None, xlabel: str = "refinement step") -> None:
    """``curves[panel][label]`` = [(step, value), ...]: one panel per key (a metric), one line per run, drawn
    with ``styles[label]`` (report/styles.py: one style per method) in the order of ``styles``; labels it
    does not name come after, in sorted order, in matplotlib's own style."""
    styles = styles or {}
    panels = sorted(curves)
    cols = min(len(panels), 4)  # wrap: many panels (models of a dataset) would make one very wide row
    rows = -(-len(panels) // cols)
    # constrained layout keeps the title, the panel titles and the shared legend below from overlapping
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.4 * rows + 0.4), squeeze=False,
                             layout="constrained")
    for ax, panel in zip(axes.flat, panels):
        ranked = [lab for lab in styles if lab in curves[panel]] + sorted(set(curves[panel]) - set(styles))
        for label in ranked:
            steps, values = zip(*curves[panel][label])
            ax.plot(steps, values, label=label, **styles.get(label, {"marker": "o", "ms": 3}))
        ax.set_title(panel, fontsize=9)
        last = [curves[panel][lab][-1][0] for lab in ranked if curves[panel][lab][-1][0] > 0]
        if last and max(last) >= 10 * min(last):  # e.g. 25 flow steps beside MH-GAN's K = 640: log steps
            ax.set_xscale("symlog", linthresh=1)
            ax.set_xlabel(f"{xlabel} (log scale above 1)")
        else:
            ax.set_xlabel(xlabel)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    shared_legend(fig, axes)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def shared_legend(fig, axes) -> None:
    """One legend below the panels holding every line of any panel once (a run may lack a panel's metric)."""
    entries: dict = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    if entries:
        fig.legend(list(entries.values()), list(entries), loc="outside lower center", ncol=min(4, len(entries)),
                   fontsize=7, frameon=False)
