"""`dgflow-bench report`: the suite's tables and figures, written to the files its report declares."""

from __future__ import annotations

from ..catalog import SUITES


def run(suite: str, metric_files: list[str], params: dict, outputs: dict[str, list[str]]) -> None:
    """``outputs``: the suite's ``report.outputs(runs)``, the files the Snakemake rule declares."""
    SUITES[suite].report.build(metric_files, params, outputs)
