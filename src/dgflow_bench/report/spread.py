"""The one reader of a metrics file's seed axis for every report: each metric at a kept step as the mean over
refinement seeds (a one-seed run's own value) and the sample standard deviation beside it (ddof 1, from the
evaluate stage's ``per_step`` / ``per_step_std``), and the one way a table shows the pair."""

from __future__ import annotations

from typing import Callable


def at_step(result: dict, step: int | None = None) -> tuple[dict, dict]:
    """({metric: mean}, {metric: std or None}) at ``step`` (default: the result's final step); the stds are {}
    for a one-seed run. Raises ValueError when the step has no metrics."""
    step = result["final_step"] if step is None else step
    means = [r for r in result["per_step"] if r["step"] == step]
    if len(means) != 1:
        raise ValueError(f"{result.get('method')}: no metrics at step {step} (kept: "
                         f"{[r['step'] for r in result['per_step']]})")
    stds = [r for r in result.get("per_step_std") or [] if r["step"] == step]
    strip = lambda row: {k: v for k, v in row.items() if k != "step"}  # noqa: E731
    return strip(means[0]), strip(stds[0]) if stds else {}


def mean_pm_std(mean, std, mean_text: Callable[[float], str], std_text: Callable[[float], str] | None = None) -> str:
    """'mean ± std' (std_text defaults to mean_text); the mean alone where there is no spread."""
    if std is None:
        return mean_text(mean)
    return f"{mean_text(mean)} ± {(std_text or mean_text)(std)}"
