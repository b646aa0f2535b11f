"""`dgflow-bench evaluate`: the suite's metrics at every snapshot of one refinement run."""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from ..io import write_json, write_resolved_config
from ..registry import DATASETS, METRICS, lookup


def run(samples_file: str, data_file: str, params: dict, out: str, progress: bool) -> None:
    labels, metric_params = params["labels"], params["metrics"]
    dataset = labels["dataset"]
    suite = lookup(DATASETS, dataset, "dataset").suite
    metric_fn = lookup(METRICS, suite, "metric suite")
    with np.load(data_file, allow_pickle=False) as data:
        heldout = data["heldout"]
    with np.load(samples_file, allow_pickle=False) as s:
        steps, samples = s["steps"], s["samples"]
    per_step = [
        {"step": int(step), **metric_fn(dataset, samples[i], heldout, metric_params)}
        for i, step in enumerate(tqdm(steps, desc="evaluate", disable=not progress))
    ]
    write_json(out, {**labels, "suite": suite, "final_step": int(steps[-1]), "per_step": per_step,
                     "samples_file": samples_file, "data_file": data_file})
    write_resolved_config(out, "evaluate", params, samples_file=samples_file, data_file=data_file)
