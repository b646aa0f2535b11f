"""`dgflow-bench data`: build a dataset's arrays (train + held-out evaluation sample) once."""

from __future__ import annotations

from ..io import savez, write_resolved_config
from ..registry import DATASETS, lookup


def run(dataset: str, params: dict, out: str) -> None:
    entry = lookup(DATASETS, dataset, "dataset")
    arrays = entry.make(params, int(params["seed"]))
    savez(out, **arrays)
    write_resolved_config(out, "data", params, dataset=dataset,
                          shapes={k: list(v.shape) for k, v in arrays.items()})
