"""Image figures: per (dataset, model, source) a grid of base and refined samples from the same first latents
(one row per method, base first), and per dataset FID against refinement step (a panel per FID name and model,
a line per method in its own style).
Samples are read from the refine stage's snapshot files (dgflow_bench.snapshots)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: jobs run without a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..snapshots import open_snapshots  # noqa: E402
from .figures import _save, metric_curves  # noqa: E402
from .images_tables import MethodColumn  # noqa: E402
from .paper_values import parse_metric_name  # noqa: E402
from .styles import method_styles  # noqa: E402

GRID_LATENTS = 8  # samples per row: enough to see a trend, small enough to see each image
_FLOAT_SLACK = 1e-3  # float images may overshoot [0, 255] by rounding noise only


def display_uint8(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 3, H, W) for display: uint8 as stored under 'clean', float [0, 255] ('dgflow-legacy') rounded."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images (N, 3, H, W), got shape {images.shape}")
    if images.dtype == np.uint8:
        return images
    if np.issubdtype(images.dtype, np.floating):
        lo, hi = float(images.min()), float(images.max())
        if lo < -_FLOAT_SLACK or hi > 255 + _FLOAT_SLACK:
            raise ValueError(f"float images must lie in [0, 255], got [{lo:.4g}, {hi:.4g}]")
        return np.clip(np.rint(images), 0, 255).astype(np.uint8)
    raise ValueError(f"images must be uint8 or float in [0, 255], got {images.dtype}")


def grid_rows(runs: list[dict], columns: list[MethodColumn], k: int = GRID_LATENTS) -> list[tuple[str, np.ndarray]]:
    """[(label, uint8 (k, 3, H, W))]: the base samples, then each refinement method's samples at its configured
    final step, all from the first ``k`` latents. Raises if the runs did not start from the same latents: the
    grid would then compare different images."""
    order = {c.method: i for i, c in enumerate(columns)}
    by_method = {c.method: c for c in columns}
    runs = sorted(runs, key=lambda r: order[r["method"]])
    first_latents, first_method, base, refined = None, None, None, []
    for run in runs:
        column = by_method[run["method"]]
        with open_snapshots(run["samples_file"]) as snaps:
            latents = np.asarray(snaps.latents[:k])
            if first_latents is None:
                first_latents, first_method = latents, run["method"]
            elif not np.array_equal(latents, first_latents):
                raise ValueError(f"{run['method']} and {first_method} of {run['dataset']}/{run['model']}/"
                                 f"{run['source']} did not start from the same latents; no side-by-side grid")
            if column.paper == "Base":
                base = base or (f"{column.label} (step {run['final_step']})",
                                display_uint8(snaps.read(run["final_step"], k)))
                continue
            if base is None and snaps.steps[0] == 0:  # no base run: step 0 of a refinement is the base sample
                base = (f"Base (step 0 of {run['method']})", display_uint8(snaps.read(0, k)))
            refined.append((f"{column.label} (step {run['final_step']})",
                            display_uint8(snaps.read(run["final_step"], k))))
    return ([base] if base else []) + refined


def _mosaic(images: np.ndarray, pad: int = 2) -> np.ndarray:
    """(k, 3, H, W) uint8 -> one (H, k * (W + pad) - pad, 3) strip on white."""
    k, _, h, w = images.shape
    strip = np.full((h, k * (w + pad) - pad, 3), 255, dtype=np.uint8)
    for i, image in enumerate(images):
        strip[:, i * (w + pad): i * (w + pad) + w] = image.transpose(1, 2, 0)
    return strip


def sample_grid(rows: list[tuple[str, np.ndarray]], path: str | Path, title: str) -> None:
    k = max(len(images) for _, images in rows)
    fig, axes = plt.subplots(len(rows), 1, figsize=(1.2 + 0.7 * k, 0.4 + 0.8 * len(rows)), squeeze=False)
    for ax, (label, images) in zip(axes.flat, rows):
        ax.imshow(_mosaic(images), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title + "  (columns: the same latents)", fontsize=9)
    _save(fig, path)


def fid_curves(results: list[dict], columns: list[MethodColumn], path: str | Path, title: str,
               order: list[str] | None = None) -> None:
    """One panel per FID name (it carries the protocol) and model [source], one line per method, in the
    method's own style (report/styles.py; ``order``: the run's method order, default the columns')."""
    labels = {c.method: c.label for c in columns}
    styles = method_styles(order or [c.method for c in columns], [r["method"] for r in results])
    curves: dict[str, dict[str, list[tuple[int, float]]]] = {}
    line_styles: dict[str, dict] = {labels[m]: s.kwargs() for m, s in styles.items() if m in labels}
    for result in results:
        for record in result["per_step"]:
            for name, value in record.items():
                parsed = parse_metric_name(name)
                if parsed is not None and parsed.kind == "fid" and not parsed.engine and value is not None:
                    panel = f"{name}\n{result['model']} [{result['source']}]"
                    curves.setdefault(panel, {}).setdefault(labels[result["method"]], []).append(
                        (int(record["step"]), float(value)))
    if not curves:
        raise ValueError(f"{title}: no FID values to plot")
    metric_curves(curves, path, title, styles=line_styles)
