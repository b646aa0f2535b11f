"""`dgflow-bench evaluate`: the suite's metrics at every snapshot of one refinement run."""

from __future__ import annotations

from pathlib import Path

from ..io import config_path_for, read_json, write_json, write_resolved_config
from ..progress import progress as progress_bar
from ..catalog import DATASETS, SUITES
from ..snapshots import open_snapshots


def run(samples_file: str, data_file: str, params: dict, out: str, progress: bool) -> None:
    labels, metric_params = params["labels"], params["metrics"]
    dataset = labels["dataset"]
    suite = DATASETS[dataset].suite
    metrics = SUITES[suite].metrics()
    # reference statistics are cached beside the data they come from
    prepared = metrics.prepare(data_file, metric_params, str(Path(data_file).parent / "cache"))
    with open_snapshots(samples_file) as snapshots:
        # each snapshot is read shard by shard: the image suite streams it, the small suites concatenate
        per_step = [
            {"step": step,
             **metrics.compute(dataset, snapshots.batches(step), snapshots.n_samples, prepared, metric_params)}
            for step in progress_bar(snapshots.steps, desc="evaluate", disable=not progress)
        ]
        final_step = snapshots.final_step
    # a diverged run is a result: its row carries where it diverged and the metrics of its last kept step
    record = _refine_record(samples_file)
    write_json(out, {**labels, "suite": suite, "final_step": final_step, "per_step": per_step,
                     "samples_file": samples_file, "data_file": data_file, "diverged": record.get("diverged"),
                     "sampling": sampling_summary(record.get("info") or {}, snapshots.n_samples)})
    write_resolved_config(out, "evaluate", params, samples_file=samples_file, data_file=data_file)


def sampling_summary(info: dict, n_samples: int) -> dict | None:
    """Proposals per output sample and acceptance rate of a rejection method (DRS, MH-GAN), summed over the
    refine stage's batches (its info holds a list per key when there were several); None for other methods."""
    if "proposals" not in info:
        return None
    as_list = lambda v: v if isinstance(v, list) else [v]  # noqa: E731
    proposals = sum(as_list(info["proposals"]))
    accepted = sum(r * p for r, p in zip(as_list(info["acceptance_rate"]), as_list(info["proposals"])))
    return {"proposals_per_sample": proposals / n_samples, "acceptance_rate": accepted / proposals}


def _refine_record(samples_file: str) -> dict:
    """The refine stage's record beside the samples ({} for samples made outside the pipeline)."""
    path = config_path_for(samples_file)
    return read_json(path) if path.exists() else {}
