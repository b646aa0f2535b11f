"""The 2-D suite's report: table toy2d.{csv,md,tex} and, per dataset, a scatter grid and metric curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import read_json
from ..metrics.toy2d import metric_directions
from ..snapshots import open_snapshots
from .figures import metric_curves, scatter_grid
from .cost import write_cost_figures
from .styles import run_styles
from .tables import COST_COLUMNS, ID_COLUMNS, STATUS_NOTE, STD_SUFFIX, final_rows, samples_phrase, seeds_phrase, write_tables


def _run_label(result: dict) -> str:
    return f"{result['method']} [{result['source']}]"


def build(metric_files: list[str], params: dict, tables_stem: str, scatter_files: list[str],
          curve_files: list[str], cost_files: list[str]) -> None:
    """``scatter_files`` / ``curve_files``: one figure per dataset, in sorted dataset order; ``cost_files``: one
    per (dataset, model), sorted."""
    results = [read_json(p) for p in metric_files]
    frame = final_rows(metric_files, results)
    caption = (
        f"2-D experiment: {samples_phrase(params)} refined samples per run, metrics at each method's configured "
        f"final step against a held-out real sample. hq4sigma_pct: % of samples within 4 sigma of the clean "
        f"data; modes_covered: modes holding at least the stated share of a uniform allocation of "
        f"high-quality samples; kde_ll: mean log-likelihood of held-out data under a Gaussian KDE of the "
        f"samples (bandwidth h); energy: energy distance to held-out data. discriminator raw: the model's own "
        f"critic logit, as the official DGflow code runs it (the paper's setting); finetuned: our variant, "
        f"that critic fine-tuned into a logistic density-ratio estimator (rows named -ft), kept at its lowest "
        f"held-out logistic loss."
    ) + seeds_phrase(frame)
    if "acceptance_rate" in frame.columns and frame["acceptance_rate"].notna().any():
        caption += (" Rows with an acceptance rate are the rejection baselines (DRS, MH-GAN), run with the settings "
                    "their config block records (by default the MH-GAN reference's: isotonic calibration, DRS's "
                    "95th-percentile shift); on an estimator that is not a density ratio they can end far from "
                    "the base (docs/rejection-audit.md).")
    write_tables(frame, tables_stem, caption=caption + STATUS_NOTE, directions=metric_directions(),
                 order=params["method_order"])
    measured = {k for r in results for k in r["per_step"][0]}  # metrics, not the cost / sampling columns
    metrics = [c for c in frame.columns if c in measured and c not in ID_COLUMNS and c not in COST_COLUMNS
               and not c.endswith(STD_SUFFIX)]
    datasets = sorted({r["dataset"] for r in results})
    for dataset, scatter_file, curve_file in zip(datasets, scatter_files, curve_files, strict=True):
        mine = [r for r in results if r["dataset"] == dataset]
        mine.sort(key=lambda r: (r["source"], params["method_order"].index(r["method"])))
        with np.load(mine[0]["data_file"], allow_pickle=False) as data:
            real = data["heldout"]
        panels = []
        for result in mine:
            with open_snapshots(result["samples_file"]) as snapshots:
                base, final = snapshots.read(0), snapshots.read(result["final_step"])
            refined = None if result["final_step"] == 0 else final
            panels.append({"label": _run_label(result), "base": base, "refined": refined})
        scatter_grid(panels, real, Path(scatter_file), dataset)
        curves: dict = {}
        for result in mine:
            for metric in metrics:
                # numbers only: a metric a dataset does not define is a sentence ('n/a (...)') or absent
                points = [(r["step"], r[metric]) for r in result["per_step"]
                          if isinstance(r.get(metric), (int, float))]
                if points:
                    curves.setdefault(metric, {})[_run_label(result)] = points
        metric_curves(curves, Path(curve_file), f"{dataset}: metrics vs step",
                      styles=run_styles(mine, params["method_order"], _run_label))
    write_cost_figures(results, cost_files, lambda _: metrics, params["method_order"])
