"""`dgflow-bench report`: dispatch to the suite's report builder."""

from __future__ import annotations


def run(suite: str, metric_files: list[str], params: dict, tables_stem: str, figures_dir: str | None,
        samples_out: str | None) -> None:
    if suite == "toy2d":
        from ..report.toy2d import build

        build(metric_files, params, tables_stem, figures_dir)
    elif suite == "text":
        from ..report.text import build

        build(metric_files, params, tables_stem, samples_out)
    elif suite == "images":
        from ..report.images import build

        if not figures_dir:
            raise ValueError("the image report writes figures: pass --figures-dir")
        build(metric_files, params, tables_stem, figures_dir)  # tables_stem is a prefix: _fid / _is appended
    else:
        raise ValueError(f"no report for suite {suite!r}; available: ['images', 'text', 'toy2d']")
