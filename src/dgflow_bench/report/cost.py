"""Quality against compute: per dataset x model, each metric against the network passes one output sample
cost, one curve per refinement run across its kept steps (flows) or one point (the base row, rejection
methods). The question it answers: which method gives the best samples for the compute I have."""

from __future__ import annotations

from pathlib import Path

# matplotlib is imported where a figure is drawn: the suites read cost_figure_paths at plan time


def cost_figure_paths(suite: str, runs: list[tuple[str, str, str]]) -> list[str]:
    """One figure per (dataset, model) of the runs, sorted; sources share it."""
    return [f"results/figures/{suite}_{d}_{m}_cost.png" for d, m in sorted({(d, m) for d, m, _ in runs})]


def cost_curve(result: dict, metric: str) -> list[tuple[float, float, float | None]]:
    """[(network passes per sample, metric mean, std over refinement seeds or None)] at every kept step that has
    both a counted cost and the metric; [] for a result without counted costs (made outside the pipeline)."""
    by_step = {r["step"]: r["evaluations"] for r in (result.get("cost") or {}).get("evaluations_per_sample_by_step", [])}
    spread = {r["step"]: r.get(metric) for r in result.get("per_step_std") or []}
    return [(by_step[r["step"]], r[metric], spread.get(r["step"])) for r in result["per_step"]
            if r["step"] in by_step and isinstance(r.get(metric), (int, float))]


def quality_vs_cost(results: list[dict], metrics: list[str], path: str | Path, title: str,
                    label=lambda r: f"{r['method']} [{r['source']}]") -> None:
    """One panel per metric (x: network passes per sample, log scale; error bars: std over seeds)."""
    from .figures import _save, plt
    metrics = [m for m in metrics if any(cost_curve(r, m) for r in results)] or metrics[:1]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.8 * len(metrics), 3.6), squeeze=False,
                             layout="constrained")
    for ax, metric in zip(axes.flat, metrics):
        for result in results:
            points = cost_curve(result, metric)
            if not points:
                continue
            x, y, err = zip(*points)
            errors = None if any(e is None for e in err) else err
            ax.errorbar(x, y, yerr=errors, marker="o", ms=3, capsize=2, label=label(result))
        ax.set_xscale("log")
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel("network passes per sample (G + d, fwd + bwd)")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(4, len(labels)), fontsize=7,
                   frameon=False)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def write_cost_figures(results: list[dict], paths: list[str], metrics_of, order: list[str]) -> None:
    """The figures of cost_figure_paths (``paths``, in its order); ``metrics_of(results)`` names the
    metrics to plot."""
    pairs = sorted({(r["dataset"], r["model"]) for r in results})
    for (dataset, model), path in zip(pairs, paths, strict=True):
        mine = [r for r in results if (r["dataset"], r["model"]) == (dataset, model)]
        mine.sort(key=lambda r: (r["source"], order.index(r["method"]) if r["method"] in order else len(order)))
        quality_vs_cost(mine, metrics_of(mine), path, f"{dataset} / {model}: quality against compute")
