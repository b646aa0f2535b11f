"""`dgflow-bench evaluate`: the suite's metrics at every snapshot of one refinement run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import config_path_for, read_json, write_json, write_resolved_config
from ..progress import progress as progress_bar
from ..catalog import DATASETS, SUITES
from ..refine.method_params import EVALUATION_KEYS
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
        per_seed = []
        for index in range(snapshots.n_seeds):
            one = snapshots.for_seed(index)
            per_seed.append([
                {"step": step, **metrics.compute(dataset, one.batches(step), one.n_samples, prepared, metric_params)}
                for step in progress_bar(one.steps, desc=f"evaluate (refinement seed {index})",
                                         disable=not progress)
            ])
        final_step, n_samples = snapshots.final_step, snapshots.n_samples
    # a diverged run is a result: its row carries where it diverged and the metrics of its last kept step
    record = _refine_record(samples_file)
    seed_records = record.get("seeds") or [{"info": record.get("info") or {}}]
    write_json(out, {**labels, "suite": suite, "final_step": final_step, **seed_summary(per_seed),
                     "samples_file": samples_file, "data_file": data_file, "diverged": record.get("diverged"),
                     "sampling": sampling_summary([r["info"] for r in seed_records], n_samples),
                     "cost": {**cost_summary(seed_records, n_samples, record.get("device")),
                              **one_off_costs(record, n_samples * len(seed_records))}})
    write_resolved_config(out, "evaluate", params, samples_file=samples_file, data_file=data_file)


def seed_summary(per_seed: list[list[dict]]) -> dict:
    """``per_step``: each step's metrics, the mean over refinement seeds (a single seed's own values); with
    several seeds also ``per_step_std`` (sample standard deviation, ddof 1), ``n_seeds`` and ``per_seed``."""
    if len(per_seed) == 1:
        return {"per_step": per_seed[0], "n_seeds": 1}
    mean, std = [], []
    for records in zip(*per_seed, strict=True):
        step = records[0]["step"]
        names = [k for k in records[0] if k != "step"]
        values = {k: [r.get(k) for r in records] for k in names}
        mean.append({"step": step, **{k: _mean(v) for k, v in values.items()}})
        std.append({"step": step, **{k: _std(v) for k, v in values.items()}})
    return {"per_step": mean, "per_step_std": std, "n_seeds": len(per_seed), "per_seed": per_seed}


def _numbers(values: list) -> list[float] | None:
    """The values as floats, or None where some seed has none (a metric a run lacks) or they are not numbers."""
    if any(v is None or isinstance(v, (bool, str, dict, list)) for v in values):
        return None
    return [float(v) for v in values]


def _mean(values: list):
    numbers = _numbers(values)
    return values[0] if numbers is None else float(np.mean(numbers))


def _std(values: list):
    numbers = _numbers(values)
    return None if numbers is None else float(np.std(numbers, ddof=1))


def _as_list(value) -> list:
    """Per-batch facts: the refine stage's info holds a list per key when there were several batches."""
    return value if isinstance(value, list) else [value]


# a rejection method's places that never passed its test, summed over batches, mean over refinement seeds:
# DRS's places filled with the best rejected proposals when the budget ran out, MH-GAN's chains that never
# accepted a proposal
OUTCOME_COUNTS = ("filled_without_acceptance", "chains_never_moved")


def _final(value):
    """A count as the method reports it: a number, or {step: number} per kept budget (the last one's)."""
    if isinstance(value, dict):
        return value[max(value, key=int)] if value else 0
    return value


def sampling_summary(infos: list[dict], n_samples: int) -> dict | None:
    """Proposals per output sample and acceptance rate of a rejection method (DRS, MH-GAN), summed over the
    refine stage's batches and refinement seeds (one info per seed), and its OUTCOME_COUNTS; None for other
    methods."""
    if not infos or "proposals" not in infos[0]:
        return None
    proposals = sum(sum(_as_list(i["proposals"])) for i in infos)
    accepted = sum(r * p for i in infos for r, p in zip(_as_list(i["acceptance_rate"]), _as_list(i["proposals"])))
    out = {"proposals_per_sample": proposals / (n_samples * len(infos)), "acceptance_rate": accepted / proposals}
    for key in OUTCOME_COUNTS:
        if all(key in i for i in infos):
            out[key] = sum(sum(_final(v) for v in _as_list(i[key])) for i in infos) / len(infos)
    return out


def cost_summary(seed_records: list[dict], n_samples: int, device: str | None) -> dict:
    """What one output sample cost, averaged over refinement seeds: network passes (counted by the methods:
    samples through each network, forward and backward), in total and at each kept step (the
    quality-against-compute curves), and measured wall-clock / CPU seconds of the whole refinement."""
    out: dict = {"device": device, "n_seeds": len(seed_records)}
    per_seed = [r["info"] for r in seed_records if "network_evaluations" in (r.get("info") or {})]
    if per_seed and len(per_seed) == len(seed_records):
        scale = 1.0 / (n_samples * len(per_seed))
        totals = {p: scale * sum(sum(c.get(p, 0) for c in _as_list(i["network_evaluations"])) for i in per_seed)
                  for p in EVALUATION_KEYS}
        out["network_evaluations_per_sample"] = {**totals, "total": sum(totals.values())}
        by_step: dict[int, float] = {}
        for info in per_seed:
            for batch in _as_list(info.get("evaluations_by_step") or []):
                for step, counts in (batch or {}).items():
                    passes = sum(counts.get(p, 0) for p in EVALUATION_KEYS)
                    by_step[int(step)] = by_step.get(int(step), 0.0) + scale * passes
        out["evaluations_per_sample_by_step"] = [{"step": s, "evaluations": v} for s, v in sorted(by_step.items())]
    for key in ("wall_s", "cpu_s"):
        if all(key in r for r in seed_records):
            out[f"{key}_per_sample"] = sum(r[key] for r in seed_records) / (n_samples * len(seed_records))
    return out


def one_off_costs(record: dict, outputs: int) -> dict:
    """The run's one-off network passes, beside the per-sample ones: ``outputs`` (the samples it outputs, over
    its refinement seeds); ``calibration`` (a rejection method's fit on real samples, refine info
    ``calibration_evaluations``: one fit per run, shared by its seeds and batches); ``tuning`` (the fit of
    the fine-tuned estimator the run reads, ``--disc``: the finetune record's ``network_evaluations``, keyed
    by that file, which the report shares out over every run that reads it). Each with its ``total``."""
    out: dict = {"outputs": outputs}
    info = record.get("info") or {}
    calibration = record.get("calibration_evaluations") or info.get("calibration_evaluations")
    if isinstance(calibration, list):  # per batch: the same fit
        calibration = calibration[0]
    if calibration:
        out["calibration"] = {"network_evaluations": calibration, "total": sum(calibration.values())}
    disc = record.get("disc_file")
    fit = config_path_for(disc) if disc else None
    if fit is not None and fit.exists():
        counted = read_json(fit).get("network_evaluations")
        if counted:  # a record written before the fits were counted has none: no column for it
            out["tuning"] = {"estimator": disc, "network_evaluations": counted, "total": sum(counted.values())}
    return out


def _refine_record(samples_file: str) -> dict:
    """The refine stage's record beside the samples ({} for samples made outside the pipeline)."""
    path = config_path_for(samples_file)
    return read_json(path) if path.exists() else {}
