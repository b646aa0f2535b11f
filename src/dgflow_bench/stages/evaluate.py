"""`dgflow-bench evaluate`: the suite's metrics at every snapshot of one refinement run."""

from __future__ import annotations

from pathlib import Path

from tqdm.auto import tqdm

from ..io import write_json, write_resolved_config
from ..registry import DATASETS, lookup, metric_suite
from ..snapshots import open_snapshots


def run(samples_file: str, data_file: str, params: dict, out: str, progress: bool) -> None:
    labels, metric_params = params["labels"], params["metrics"]
    dataset = labels["dataset"]
    suite = lookup(DATASETS, dataset, "dataset").suite
    metrics = metric_suite(suite)
    # reference statistics are cached beside the data they come from
    prepared = metrics.prepare(data_file, metric_params, str(Path(data_file).parent / "cache"))
    with open_snapshots(samples_file) as snapshots:
        # each snapshot is read shard by shard: the image suite streams it, the small suites concatenate
        per_step = [
            {"step": step,
             **metrics.compute(dataset, snapshots.batches(step), snapshots.n_samples, prepared, metric_params)}
            for step in tqdm(snapshots.steps, desc="evaluate", disable=not progress)
        ]
        final_step = snapshots.final_step
    write_json(out, {**labels, "suite": suite, "final_step": final_step, "per_step": per_step,
                     "samples_file": samples_file, "data_file": data_file})
    write_resolved_config(out, "evaluate", params, samples_file=samples_file, data_file=data_file)
