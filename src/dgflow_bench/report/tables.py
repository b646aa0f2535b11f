"""Tables from metric files: one row per (dataset, model, source, method), values at each method's
configured final step. Written as CSV (machine-readable), Markdown and LaTeX (tabulate)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from tabulate import tabulate

from ..io import read_json, write_text

ID_COLUMNS = ["dataset", "model", "source", "method", "discriminator", "setting", "step", "status"]


def final_rows(metric_files: list[str]) -> pd.DataFrame:
    rows = []
    for path in metric_files:
        result = read_json(path)
        final = [r for r in result["per_step"] if r["step"] == result["final_step"]]
        if len(final) != 1:
            raise ValueError(f"{path}: no metrics at the configured final step {result['final_step']}")
        rows.append({"dataset": result["dataset"], "model": result["model"], "source": result["source"],
                     "method": result["method"], "discriminator": result.get("discriminator", ""),
                     "status": run_status(result), **final[0]})
        if result.get("setting") is not None:  # suites with official settings: official | variant per row
            rows[-1]["setting"] = result["setting"]["setting"]
        if result.get("sampling"):  # rejection methods: what each output sample cost
            rows[-1].update(result["sampling"])
    return pd.DataFrame(rows)


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

    metrics = sorted((c for c in frame.columns if c not in ID_COLUMNS), key=lambda m: (rank(m), m))
    return frame[[c for c in ID_COLUMNS if c in frame.columns] + metrics]


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
    shown = frame.astype(object).where(frame.notna(), None)
    shown = shown.rename(columns={c: _header(c, directions) for c in frame.columns})
    md = tabulate(shown, headers="keys", tablefmt="github", showindex=False, floatfmt=".4g", missingval="")
    write_text(stem.with_suffix(".md"), f"{caption}\n\n{md}\n")
    latex = tabulate(frame.astype(object).where(frame.notna(), None), headers="keys", tablefmt="latex_booktabs", showindex=False, floatfmt=".4g",
                     missingval="")
    write_text(stem.with_suffix(".tex"),
               "\\begin{table}\n\\centering\n\\caption{" + _latex_escape(caption) + "}\n" + latex +
               "\n\\end{table}\n")


def _latex_escape(text: str) -> str:
    for char in "&%$#_{}":
        text = text.replace(char, "\\" + char)
    return text


def samples_phrase(params: dict) -> str:
    """'50000', or '50000 (cifar10 / glow: 10000)' when `overrides` give some runs another n_samples."""
    other = params.get("n_samples_except") or {}
    if not other:
        return str(params["n_samples"])
    return f"{params['n_samples']} ({'; '.join(f'{run}: {n}' for run, n in other.items())})"
