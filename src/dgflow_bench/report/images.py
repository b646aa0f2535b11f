"""The image suite's report, in the paper's layout:

- ``<prefix>_fid.{csv,md,tex}``: FID, rows dataset x model x source, columns Base, DOT, DGflow-KL/JS/logD, DDLS
  (as the config's methods map onto them), each with a `paper` column;
- ``<prefix>_is.{csv,md,tex}``: Inception Score, columns Base, DDLS, DOT, DGflow, each with a `paper` column;
- ``<prefix>_settings.{csv,md}``: each cell official or variant and, for a variant, every field that differs
  (ours vs theirs, with its source), the account the two tables' captions point to;
- ``<prefix>_cost.{csv,md,tex}``: what one output image cost, per run;
- ``images_<dataset>_<model>_<source>_samples.png``: base vs refined samples from the same latents;
- ``images_<dataset>_fid_steps.png``: FID against refinement step.

Published values (published_values.yaml) sit beside ours only when the metric names match exactly, i.e. the
same protocol, sample count, reference and Inception weights; otherwise the caption lists them with the reason.
"""

from __future__ import annotations

from pathlib import Path

from ..io import read_json
from ..metrics.reference_stats import assert_mixable
from .images_figures import fid_curves, grid_rows, sample_grid
from .images_tables import (FID_COLUMN_ORDER, IS_COLUMN_ORDER, IS_HEADERS, caption_for, final_metrics,
                            method_columns, method_table, settings_rows, write_method_table,
                            write_settings_table)
from .paper_values import load_published, parse_metric_name
from .cost import cost_figure_paths, write_cost_figures
from .tables import COST_COLUMNS, ID_COLUMNS, OUTCOME_COLUMNS, final_rows, samples_phrase, seeds_phrase, write_tables


def figure_paths(figures_dir: str | Path, runs: list[tuple[str, str, str]]) -> dict[str, list[Path]]:
    """The figure files for (dataset, model, source) runs; the Snakemake rule lists the same names."""
    figures_dir = Path(figures_dir)
    return {
        "grids": [figures_dir / f"images_{d}_{m}_{s}_samples.png" for d, m, s in runs],
        "curves": [figures_dir / f"images_{d}_fid_steps.png" for d in sorted({d for d, _, _ in runs})],
        "cost": [figures_dir / Path(p).name for p in cost_figure_paths("images", runs)],
    }


def _extractor(weights: str | None) -> str:
    if weights:
        return f"InceptionV3 with the TF inception-2015-12-05 weights ({Path(weights).name})"
    return "a tiny RANDOM-WEIGHTS conv net (a pipeline check only: its numbers are not FID/IS)"


def build(metric_files: list[str], params: dict, tables_prefix: str, figures_dir: str,
          published_path: str | Path | None = None) -> None:
    results = [read_json(p) for p in metric_files]
    # never one report of real and RANDOM-WEIGHTS numbers
    assert_mixable([name for r in results for record in r["per_step"] for name in record])
    published = load_published(published_path)
    extractor = _extractor(params["evaluate"].get("inception_weights"))
    seeds = sorted({r.get("n_seeds", 1) for r in results})
    n = samples_phrase(params)
    per_cell = "per cell" + ("" if seeds == [1] else
                             f", mean ± std over {'/'.join(map(str, seeds))} refinement seeds")
    settings = f"{Path(tables_prefix).name}_settings"
    for kind, order, headers, title in (
        ("fid", FID_COLUMN_ORDER, None, f"Images: FID (lower is better) of {n} generated images {per_cell}"),
        ("is", IS_COLUMN_ORDER, IS_HEADERS, f"Images: Inception Score (higher is better) of {n} generated images "
                                            f"{per_cell}"),
    ):
        columns = method_columns(params["methods"], order, headers)
        table = method_table(results, columns, kind, published)
        write_method_table(table, f"{tables_prefix}_{kind}",
                           caption_for(table, title, columns, extractor, f"{settings}.md beside this table"))
    # the official / variant account of every cell: its own table, so the captions stay short
    write_settings_table(settings_rows(results, method_columns(params["methods"])), f"{tables_prefix}_settings")

    cost = final_rows(metric_files, results)  # the paper's tables have no room for it: its own, row per run
    cost = cost[[c for c in ID_COLUMNS + COST_COLUMNS + ["proposals_per_sample", "acceptance_rate", *OUTCOME_COLUMNS]
                 if c in cost.columns and c != "step"]]
    write_tables(cost, f"{tables_prefix}_cost", directions={}, order=params["method_order"],
                 caption=f"Images: what one output image cost, per refinement run ({n} images)." + seeds_phrase(cost))

    columns = method_columns(params["methods"], FID_COLUMN_ORDER)
    runs = sorted({(r["dataset"], r["model"], r["source"]) for r in results})
    paths = figure_paths(figures_dir, runs)
    for (dataset, model, source), path in zip(runs, paths["grids"]):
        mine = [r for r in results if (r["dataset"], r["model"], r["source"]) == (dataset, model, source)]
        sample_grid(grid_rows(mine, columns), path, f"{dataset} / {model} / {source}")
    for dataset, path in zip(sorted({d for d, _, _ in runs}), paths["curves"]):
        fid_curves([r for r in results if r["dataset"] == dataset], columns, path, f"{dataset}: FID vs step",
                   params["method_order"])
    quality = lambda mine: sorted({k for r in mine for k in final_metrics(r)  # noqa: E731
                                   if getattr(parse_metric_name(k), "kind", None) in ("fid", "is")})
    write_cost_figures(results, paths["cost"], quality, params["method_order"])
