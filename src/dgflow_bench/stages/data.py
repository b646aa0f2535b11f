"""`dgflow-bench data`: build a dataset's arrays (train + held-out evaluation sample) once."""

from __future__ import annotations

from ..io import write_resolved_config
from ..catalog import DATASETS


def run(dataset: str, params: dict, out: str) -> None:
    entry = DATASETS[dataset]
    summary = entry.write(params, int(params["seed"]), out)
    write_resolved_config(out, "data", params, dataset=dataset, summary=summary)
