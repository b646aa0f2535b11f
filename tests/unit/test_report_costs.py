"""The report's cost account and its figures: one style per method in every figure of a run, every method
drawn as a curve over its snapshots, one-off fits (fine-tune, calibration) shared out per output sample, and
the evaluate stage's reading of the refine and finetune records."""

from __future__ import annotations

import pytest
import yaml

from conftest import REPO

from dgflow_bench.config import validate
from dgflow_bench.io import write_json, write_resolved_config
from dgflow_bench.report import cost as cost_report
from dgflow_bench.report import figures
from dgflow_bench.report.cost import base_sample_cost, cost_curve, one_off_columns, quality_vs_cost
from dgflow_bench.report.styles import method_styles, run_styles, style_at
from dgflow_bench.stages.evaluate import one_off_costs, sampling_summary


def default_methods() -> list[str]:
    return list(validate(yaml.safe_load((REPO / "config.yaml").read_text()))["methods"])


def result(method, *, steps=(0, 5, 10), evaluations=(1.0, 11.0, 21.0), energy=(3.0, 2.0, 1.0), cost=None):
    return {"dataset": "25gaussians", "model": "wgan-gp", "source": "trained", "method": method,
            "per_step": [{"step": s, "energy": e} for s, e in zip(steps, energy)],
            "cost": {"evaluations_per_sample_by_step": [{"step": s, "evaluations": v}
                                                        for s, v in zip(steps, evaluations)], **(cost or {})}}


def test_the_default_configs_methods_each_get_their_own_style():
    methods = default_methods()
    assert len(methods) == 12
    styles = method_styles(methods)
    assert len(set(styles.values())) == 12
    assert len({s.colour for s in styles.values()}) == 12  # apart by colour alone
    assert styles["dgflow-kl"].colour != styles["mh-gan"].colour  # the pair matplotlib's cycle mixed up
    assert len({(style_at(i).colour, style_at(i).marker) for i in range(91)}) == 91  # pairs apart up to 91


def drawn_styles(monkeypatch, draw) -> dict[str, tuple]:
    """{legend label: (colour, marker, line style)} of the figure ``draw()`` makes (its file is not written)."""
    figs = []
    monkeypatch.setattr(figures, "_save", lambda fig, path: figs.append(fig))
    draw()
    (fig,) = figs
    out = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            line = handle[0] if isinstance(handle, tuple) or hasattr(handle, "lines") else handle
            out[label] = (line.get_color(), line.get_marker(), line.get_linestyle())
    figures.plt.close(fig)
    return out


def test_a_method_looks_the_same_in_the_steps_and_the_cost_figure(monkeypatch):
    order = default_methods()
    results = [result(m) for m in reversed(order)]  # drawn in any order: the style follows the method
    label = lambda r: f"{r['method']} [{r['source']}]"  # noqa: E731
    curves = {"energy": {label(r): [(p["step"], p["energy"]) for p in r["per_step"]] for r in results}}
    steps = drawn_styles(monkeypatch, lambda: figures.metric_curves(curves, "unused", "t",
                                                                    styles=run_styles(results, order, label)))
    cost = drawn_styles(monkeypatch, lambda: quality_vs_cost(results, ["energy"], "unused", "t", order))
    assert steps == cost and len(steps) == 12
    assert len(set(steps.values())) == 12  # no two methods of a figure alike


def test_every_method_is_a_curve_over_its_snapshots_and_step_0_is_the_base_samples():
    # a rejection method's budgets (MH-GAN's chain lengths, DRS's budgets) are snapshots like a flow's steps
    drs = result("drs", steps=(0, 1, 2, 4), evaluations=(1.0, 3.0, 5.0, 9.0), energy=(3.0, 2.5, 2.2, 2.1))
    points = cost_curve(drs, "energy", one_off=0.5)
    assert [x for x, _, _ in points] == [1.0, 3.5, 5.5, 9.5]  # step 0: the generator forward, no one-off fit
    assert [y for _, y, _ in points] == [3.0, 2.5, 2.2, 2.1]
    # a step 0 charged with work done before it (a burn-in) is drawn where every run's G(z0) is: the base
    # samples' cost; the later points keep the burn-in (cumulative counts)
    burnt = result("drs", steps=(0, 1), evaluations=(3.0, 6.0), energy=(3.0, 2.5))
    base = base_sample_cost([burnt, result("base", steps=(0,), evaluations=(1.0,), energy=(3.0,))])
    assert base == 1.0 and [x for x, _, _ in cost_curve(burnt, "energy", 0.5, base)] == [1.0, 6.5]


def test_one_off_fits_are_shared_out_over_the_runs_that_use_them():
    tuning = {"estimator": "results/models/d/disc-finetuned.pt", "total": 6000.0}
    results = [result("dgflow-kl-ft", cost={"outputs": 1000, "tuning": tuning}),
               result("mh-gan", cost={"outputs": 2000, "tuning": tuning, "calibration": {"total": 500.0}}),
               result("dgflow-kl", cost={"outputs": 1000})]
    assert one_off_columns(results) == [
        {"tuning_passes_per_sample": 2.0},  # 6000 passes over the 3000 samples of both runs that read d
        {"tuning_passes_per_sample": 2.0, "calibration_passes_per_sample": 0.25},  # its own fit, its own samples
        {},
    ]


def test_the_evaluate_stage_reads_the_fit_and_calibration_records(tmp_path):
    disc = tmp_path / "disc-finetuned.pt"
    counted = {"generator_forward": 10, "generator_backward": 0, "discriminator_forward": 40,
               "discriminator_backward": 30}
    write_resolved_config(disc, "finetune", {}, network_evaluations=counted)
    calibration = {"generator_forward": 5, "generator_backward": 0, "discriminator_forward": 10,
                   "discriminator_backward": 0}
    record = {"disc_file": str(disc), "info": {"calibration_evaluations": [calibration, calibration]}}
    assert one_off_costs(record, 300) == {
        "outputs": 300, "calibration": {"network_evaluations": calibration, "total": 15},
        "tuning": {"estimator": str(disc), "network_evaluations": counted, "total": 80}}
    write_json(tmp_path / "old.config.json", {"stage": "finetune"})  # a record from before the count
    assert one_off_costs({"disc_file": str(tmp_path / "old.pt")}, 300) == {"outputs": 300}


def test_the_rejection_outcome_counts_reach_the_sampling_summary():
    seeds = [{"proposals": [8, 8], "acceptance_rate": [0.5, 0.25], "filled_without_acceptance": [1, {"1": 4, "3": 2}]},
             {"proposals": 16, "acceptance_rate": 0.5, "filled_without_acceptance": 0}]
    summary = sampling_summary(seeds, n_samples=16)
    assert summary["filled_without_acceptance"] == pytest.approx((1 + 2 + 0) / 2)  # per seed; a budget's last
    assert summary["proposals_per_sample"] == 1.0 and "chains_never_moved" not in summary
    assert sampling_summary([{"proposals": 4, "acceptance_rate": 1.0, "chains_never_moved": 3}], 4)[
        "chains_never_moved"] == 3


def test_the_cost_module_needs_no_plotting_library_to_plan():
    # the suites read cost_figure_paths at plan time: matplotlib is imported only where a figure is drawn
    assert "matplotlib" not in cost_report.__dict__ and "plt" not in cost_report.__dict__
