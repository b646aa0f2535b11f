"""Tables from metric files: one row per (dataset, model, source, method), values at each method's
configured final step. Written as CSV (machine-readable), Markdown and LaTeX (tabulate)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from tabulate import tabulate

from ..io import read_json, write_text
from .cost import one_off_columns
from .spread import at_step, mean_pm_std

ID_COLUMNS = ["dataset", "model", "source", "method", "discriminator", "setting", "step", "seeds", "status"]


def final_rows(metric_files: list[str], results: list[dict] | None = None) -> pd.DataFrame:
    """One row per metrics file at its final step; ``results``: the files' contents when the caller has already
    read them (in the same order)."""
    if results is None:
        results = [read_json(path) for path in metric_files]
    rows = []
    one_off = one_off_columns(results)
    for path, result, amortised in zip(metric_files, results, one_off, strict=True):
        try:
            mean, std = at_step(result)  # several refinement seeds: the means, their stds beside
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        rows.append({"dataset": result["dataset"], "model": result["model"], "source": result["source"],
                     "method": result["method"], "discriminator": result.get("discriminator", ""),
                     "status": run_status(result), "step": result["final_step"], **mean})
        if result.get("setting") is not None:  # suites with official settings: official | variant per row
            rows[-1]["setting"] = result["setting"]["setting"]
        rows[-1].update({f"{k}{STD_SUFFIX}": v for k, v in std.items()})
        rows[-1]["seeds"] = result.get("n_seeds", 1)
        if result.get("sampling"):  # rejection methods: what each output sample cost
            rows[-1].update(result["sampling"])
        rows[-1].update(cost_columns(result.get("cost") or {}))
        rows[-1].update(amortised)
    return pd.DataFrame(rows)


STD_SUFFIX = "_std"
ONE_OFF_COLUMNS = ["tuning_passes_per_sample", "calibration_passes_per_sample"]
OUTCOME_COLUMNS = ["filled_without_acceptance", "chains_never_moved"]  # stages/evaluate.OUTCOME_COUNTS
COST_COLUMNS = ["evals_per_sample", *ONE_OFF_COLUMNS]


def cost_columns(cost: dict) -> dict:
    """The cost of one output sample in the tables: network passes (forward + backward, generator +
    discriminator), counted. Measured times stay in the metrics JSON (``cost``): tables hold only what the
    config determines, so a rerun or a resumed run rebuilds them byte for byte."""
    if "network_evaluations_per_sample" not in cost:
        return {}
    return {"evals_per_sample": cost["network_evaluations_per_sample"]["total"]}


STATUS_NOTE = (" status: ok, or the step at which the run diverged (samples non-finite or beyond "
               "refine.divergence_bound times the base samples' range) and the earlier step whose metrics the "
               "row shows.")


def run_status(result: dict) -> str:
    """'ok', or where the run diverged and which step's metrics the row shows."""
    diverged = result.get("diverged")
    if not diverged:
        return "ok"
    return (f"diverged at step {diverged['step']} ({diverged['reason']}); metrics at step "
            f"{diverged['kept_until_step']}")


def _ordered(frame: pd.DataFrame, directions: dict[str, str]) -> pd.DataFrame:
    """Identifier columns, then metrics in the suite's order (the order of ``directions``)."""
    prefixes = list(directions)

    def rank(metric: str) -> int:
        return next((i for i, p in enumerate(prefixes) if metric.startswith(p)), len(prefixes))

    metrics = sorted((c for c in frame.columns if c not in ID_COLUMNS and not c.endswith(STD_SUFFIX)
                      and c not in COST_COLUMNS), key=lambda m: (rank(m), m))
    # each metric's spread over refinement seeds right after it; cost last
    columns = [c for m in metrics for c in (m, m + STD_SUFFIX) if c in frame.columns]
    return frame[[c for c in ID_COLUMNS if c in frame.columns] + columns +
                 [c for c in COST_COLUMNS if c in frame.columns]]


def _with_spread(frame: pd.DataFrame) -> pd.DataFrame:
    """Markdown / LaTeX cells: 'mean ± std' where a metric has a spread over refinement seeds (CSV keeps both
    columns, as numbers)."""
    shown = frame.astype(object).where(frame.notna(), None)
    for std in [c for c in frame.columns if c.endswith(STD_SUFFIX)]:
        metric = std[: -len(STD_SUFFIX)]
        cells = [m if m is None or s is None else mean_pm_std(m, s, "{:.4g}".format, "{:.2g}".format)
                 for m, s in zip(shown[metric], shown[std])]
        shown[metric] = pd.Series(cells, index=shown.index, dtype=object)
        shown = shown.drop(columns=std)
    return shown.where(shown.notna(), None)  # a column of None alone turns NaN on assignment


def _header(metric: str, directions: dict[str, str]) -> str:
    for prefix, direction in directions.items():
        if metric.startswith(prefix):
            return f"{metric} {'↑' if direction == 'higher' else '↓'}"
    return metric


def write_tables(frame: pd.DataFrame, stem: str | Path, *, caption: str, directions: dict[str, str],
                 order: list[str]) -> None:
    """``stem``.csv / .md / .tex; ``order`` sorts the method rows as the config lists them."""
    frame = _ordered(frame, directions)
    frame = frame.assign(_order=frame["method"].map({m: i for i, m in enumerate(order)}))
    frame = frame.sort_values(["dataset", "model", "source", "_order"]).drop(columns="_order")
    stem = Path(stem)
    write_text(stem.with_suffix(".csv"), frame.to_csv(index=False))
    # NaN (a metric a dataset does not have, e.g. modes on Swissroll) prints as an empty cell
    shown = _with_spread(frame)
    md = tabulate(shown.rename(columns={c: _header(c, directions) for c in shown.columns}), headers="keys",
                  tablefmt="github", showindex=False, floatfmt=".4g", missingval="")
    write_text(stem.with_suffix(".md"), f"{caption}\n\n{md}\n")
    latex = tabulate(shown, headers="keys", tablefmt="latex_booktabs", showindex=False, floatfmt=".4g",
                     missingval="")
    write_text(stem.with_suffix(".tex"),
               "\\begin{table}\n\\centering\n\\caption{" + _latex_escape(caption) + "}\n" + latex +
               "\n\\end{table}\n")


def _latex_escape(text: str) -> str:
    for char in "&%$#_{}":
        text = text.replace(char, "\\" + char)
    return text


def seeds_phrase(frame: pd.DataFrame) -> str:
    """The caption's account of refinement seeds and cost columns."""
    seeds = sorted(set(int(n) for n in frame["seeds"])) if "seeds" in frame else [1]
    counted = ("evals_per_sample: network passes per output sample (generator and discriminator, forward and "
               "backward; counted)")
    if "tuning_passes_per_sample" in frame:
        counted += ("; tuning_passes_per_sample: the passes of fitting the fine-tuned estimator the row reads "
                    "(training and validation of the -ft / corrector d), divided by the samples output by all "
                    "rows (methods x refinement seeds) that read that estimator")
    if "calibration_passes_per_sample" in frame:
        counted += ("; calibration_passes_per_sample: the passes of the row's own calibration fit on real "
                    "samples (DRS, MH-GAN), divided by the samples the row outputs")
    if "filled_without_acceptance" in frame or "chains_never_moved" in frame:
        counted += ("; filled_without_acceptance (DRS): places filled with the most likely rejected proposals "
                    "when the proposal budget ran out; chains_never_moved (MH-GAN): chains that never accepted a "
                    "proposal and return their start; both per refinement seed of n samples (mean)")
    counted += (". Measured wall-clock and CPU seconds per sample are in each run's metrics JSON (cost).")
    if seeds == [1]:
        return " One refinement seed per row. " + counted
    n = "/".join(map(str, seeds))
    return (f" Metrics are mean ± standard deviation over {n} refinement seeds (column seeds; each seed draws "
            f"its own initial latents and noise, shared by every method; the base model is not retrained). "
            + counted)


def samples_phrase(params: dict) -> str:
    """'50000', or '50000 (cifar10 / glow: 10000)' when `overrides` give some runs another n_samples."""
    other = params.get("n_samples_except") or {}
    if not other:
        return str(params["n_samples"])
    return f"{params['n_samples']} ({'; '.join(f'{run}: {n}' for run, n in other.items())})"
