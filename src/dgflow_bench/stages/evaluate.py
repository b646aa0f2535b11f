"""`dgflow-bench evaluate`: the suite's metrics at every snapshot of one refinement run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..io import write_json, write_resolved_config
from ..registry import DATASETS, lookup, metric_suite


def run(samples_file: str, data_file: str, params: dict, out: str, progress: bool) -> None:
    labels, metric_params = params["labels"], params["metrics"]
    dataset = labels["dataset"]
    suite = lookup(DATASETS, dataset, "dataset").suite
    metrics = metric_suite(suite)
    # reference statistics are cached beside the data they come from
    prepared = metrics.prepare(data_file, metric_params, str(Path(data_file).parent / "cache"))
    with np.load(samples_file, allow_pickle=False) as s:
        steps, samples = s["steps"], s["samples"]
    per_step = [
        {"step": int(step), **metrics.compute(dataset, samples[i], prepared, metric_params)}
        for i, step in enumerate(tqdm(steps, desc="evaluate", disable=not progress))
    ]
    write_json(out, {**labels, "suite": suite, "final_step": int(steps[-1]), "per_step": per_step,
                     "samples_file": samples_file, "data_file": data_file})
    write_resolved_config(out, "evaluate", params, samples_file=samples_file, data_file=data_file)
