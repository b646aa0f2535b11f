"""The image suite's report: table images_fid.{csv,md,tex} (rows = refinement methods, columns = FID / IS at
each method's configured final step); the caption names the metric protocol and the feature extractor."""

from __future__ import annotations

from ..metrics.images_suite import describe, metric_directions
from ..metrics.reference_stats import assert_mixable
from .tables import final_rows, write_tables


def build(metric_files: list[str], params: dict, tables_stem: str) -> None:
    frame = final_rows(metric_files)
    assert_mixable(list(frame.columns))  # never one table of real and RANDOM-WEIGHTS numbers
    caption = (
        f"Images: FID (lower is better) and Inception Score (higher is better) of {params['n_samples']} "
        f"generated images per row, {describe(params['images'])}; values at each method's configured final "
        f"step. Column names carry the sample count, the reference and the protocol."
    )
    write_tables(frame, tables_stem, caption=caption, directions=metric_directions(), order=params["method_order"])
