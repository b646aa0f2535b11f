"""Quality against compute: per dataset x model, each metric against the network passes one output sample
cost, one curve per refinement run across its kept snapshots, whatever the method: a flow's steps, DOT's
updates, MH-GAN's chain lengths, DRS's proposal budgets (each snapshot charged its own counted passes,
refine/common.Counter.mark). The question it answers: which method gives the best samples for the compute I
have.

A curve's first point, step 0, is the base model's samples G(z0) at what they cost: the generator forward
alone (a DRS burn-in, a DOT K estimate or a calibration is work for the refined snapshots, never for step
0). Every run of a figure starts from the same G(z0), so every curve's step 0 is drawn at one x, the least
step-0 count among them: a count that charged step 0 with work done before it (DRS's burn-in, as counted
before the rejection methods charged it to their first budget) cannot move it, and that work still shows
in every later point, which is cumulative. Every later point adds the run's one-off passes shared out per output sample
(the fine-tuned estimator's fit and a rejection method's calibration, the table's tuning_passes_per_sample and
calibration_passes_per_sample), so methods that need such a fit are drawn at what their samples really cost.
Each method is drawn in its own style (report/styles.py), the same in every figure of a run."""

from __future__ import annotations

from pathlib import Path

from .spread import at_step
from .styles import run_styles

# matplotlib is imported where a figure is drawn: the suites read cost_figure_paths at plan time

X_LABEL = "network passes per output sample"
X_NOTE = "x: G + d passes, forward + backward, per output sample; after step 0 with the one-off fits shared out"


def cost_figure_paths(suite: str, runs: list[tuple[str, str, str]]) -> list[str]:
    """One figure per (dataset, model) of the runs, sorted; sources share it."""
    return [f"results/figures/{suite}_{d}_{m}_cost.png" for d, m in sorted({(d, m) for d, m, _ in runs})]


def one_off_columns(results: list[dict]) -> list[dict]:
    """Per result, its one-off passes shared out over output samples (evaluate.one_off_costs):
    tuning_passes_per_sample, the fit of the fine-tuned estimator divided by the samples output by every run of
    ``results`` that reads that estimator (all methods and refinement seeds); calibration_passes_per_sample, the
    run's own calibration fit divided by the samples it outputs. A run without such a fit has no entry."""
    sharing: dict[str, int] = {}
    for result in results:
        tuning = (result.get("cost") or {}).get("tuning")
        if tuning:
            sharing[tuning["estimator"]] = sharing.get(tuning["estimator"], 0) + result["cost"]["outputs"]
    out = []
    for result in results:
        cost, row = result.get("cost") or {}, {}
        if cost.get("tuning"):
            row["tuning_passes_per_sample"] = cost["tuning"]["total"] / sharing[cost["tuning"]["estimator"]]
        if cost.get("calibration"):
            row["calibration_passes_per_sample"] = cost["calibration"]["total"] / cost["outputs"]
        out.append(row)
    return out


def _by_step(result: dict) -> dict[int, float]:
    return {r["step"]: r["evaluations"] for r in (result.get("cost") or {}).get("evaluations_per_sample_by_step", [])}


def base_sample_cost(results: list[dict]) -> float | None:
    """The step-0 x of a figure's curves: the least counted step-0 cost among ``results`` (None: none counted)."""
    counted = [by[0] for by in map(_by_step, results) if 0 in by]
    return min(counted) if counted else None


def cost_curve(result: dict, metric: str, one_off: float = 0.0,
               base: float | None = None) -> list[tuple[float, float, float | None]]:
    """[(network passes per sample, metric mean, std over refinement seeds or None)] at every kept step that has
    both a counted cost and the metric, ``one_off`` (passes per sample) added at every step but 0, step 0 at
    ``base`` when given (base_sample_cost); [] for a result without counted costs (made outside the pipeline)."""
    by_step = _by_step(result)
    if base is not None and 0 in by_step:
        by_step[0] = base
    points = []
    for step in (r["step"] for r in result["per_step"] if r["step"] in by_step):
        mean, std = at_step(result, step)
        if isinstance(mean.get(metric), (int, float)):
            points.append((by_step[step] + (one_off if step else 0.0), mean[metric], std.get(metric)))
    return points


def _label(result: dict) -> str:
    return f"{result['method']} [{result['source']}]"


def quality_vs_cost(results: list[dict], metrics: list[str], path: str | Path, title: str, order: list[str],
                    one_off: list[float] | None = None) -> None:
    """One panel per metric (x: network passes per sample, log scale; error bars: std over seeds); ``order``:
    the run's method order (the styles); ``one_off``: per result, its one-off passes per output sample."""
    from .figures import _save, plt, shared_legend
    one_off = one_off or [0.0] * len(results)
    styles = run_styles(results, order, _label)
    metrics = [m for m in metrics if any(cost_curve(r, m) for r in results)] or metrics[:1]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.8 * len(metrics), 3.6), squeeze=False,
                             layout="constrained")
    ranked = sorted(zip(results, one_off), key=lambda pair: list(styles).index(_label(pair[0])))
    base = base_sample_cost(results)
    for ax, metric in zip(axes.flat, metrics):
        for result, extra in ranked:
            points = cost_curve(result, metric, extra, base)
            if not points:
                continue
            x, y, err = zip(*points)
            errors = None if any(e is None for e in err) else err
            ax.errorbar(x, y, yerr=errors, capsize=2, label=_label(result), **styles[_label(result)])
        ax.set_xscale("log")
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel(X_LABEL, fontsize=8)
    shared_legend(fig, axes)
    fig.suptitle(f"{title}\n({X_NOTE})", fontsize=9)
    _save(fig, path)


def write_cost_figures(results: list[dict], paths: list[str], metrics_of, order: list[str]) -> None:
    """The figures of cost_figure_paths (``paths``, in its order); ``metrics_of(results)`` names the
    metrics to plot. One-off passes are shared out over all ``results`` (tables.one_off_columns)."""
    shares = [sum(row.values()) for row in one_off_columns(results)]
    pairs = sorted({(r["dataset"], r["model"]) for r in results})
    for (dataset, model), path in zip(pairs, paths, strict=True):
        mine = [(r, x) for r, x in zip(results, shares) if (r["dataset"], r["model"]) == (dataset, model)]
        quality_vs_cost([r for r, _ in mine], metrics_of([r for r, _ in mine]), path,
                        f"{dataset} / {model}: quality against compute", order, [x for _, x in mine])
