"""Refinement seeds (refine.seeds) and the cost of a sample, through the refine, evaluate and report stages in
process on a tiny 2-D model: seed 0 is the one-seed run bit for bit, other seeds differ, the metrics are
mean and sample standard deviation over the seeds, the tables print mean ± std, every result records counted
network passes and measured time per sample, and the quality-against-compute figure is drawn."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dgflow_bench.catalog import SUITES
from dgflow_bench.config import refine_params, validate
from dgflow_bench.io import read_json
from dgflow_bench.snapshots import open_snapshots, write_snapshots
from dgflow_bench.stages import data as data_stage, evaluate as evaluate_stage, refine as refine_stage
from dgflow_bench.stages import report as report_stage, train as train_stage

TRAIN = {"arch": {"generator": {"hidden": 8, "depth": 2}, "critic": {"hidden": 8, "depth": 2}},
         "recipe": {"iterations": 5, "critic_steps": 1, "batch_size": 32, "lr": 1e-3, "betas": [0.5, 0.9],
                    "gp_weight": 0.1, "checkpoint_every": 5, "lr_decay": "linear"}, "seed": 2}
FLOW = {"kind": "dgflow", "discriminator": "raw", "eta": 0.01, "gamma": 0.01, "steps": 4, "snapshot_every": 2}
METRIC_PARAMS = {"kde_bandwidth": 0.05, "mode_min_share": 0.1}


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("seeds")
    data = folder / "25gaussians.npz"
    data_stage.run("25gaussians", {"n_train": 500, "n_heldout": 100, "seed": 1}, str(data))
    train_stage.run("25gaussians", "wgan-gp", str(data), TRAIN, str(folder / "model.pt"), str(folder / "state.pt"),
                    "cpu", progress=False)
    return folder / "model.pt", data


def refine(model_file: Path, out: Path, seeds: int, method: dict = FLOW) -> dict:
    config = validate({"datasets": {"25gaussians": {}}, "models": {"wgan-gp": {"datasets": ["25gaussians"]}},
                       "methods": {"row": method},
                       "refine": {"n_samples": 40, "batch_size": 20, "seed": 5, "seeds": seeds}})
    params = refine_params(config, "row", "25gaussians", "wgan-gp")
    refine_stage.run("25gaussians", str(model_file), None, params, str(out), "cpu", progress=False)
    return read_json(out.with_name(out.stem + ".config.json"))


def evaluate(samples: Path, data: Path, method: str) -> dict:
    params = {"labels": {"dataset": "25gaussians", "model": "wgan-gp", "source": "trained", "method": method,
                         "discriminator": "raw"}, "metrics": METRIC_PARAMS}
    out = samples.with_suffix(".json")
    evaluate_stage.run(str(samples), str(data), params, str(out), progress=False)
    return read_json(out)


def test_snapshot_files_hold_each_seed_apart(tmp_path):
    path = tmp_path / "s.npz"
    with write_snapshots(path) as writer:
        for seed in range(3):
            one = writer.for_seed(seed)
            one.add_batch({0: np.full((2, 2), seed, np.float32), 4: np.full((2, 2), 10 + seed, np.float32)})
            one.finish(latents=np.full((2, 1), seed, np.float32))
    with open_snapshots(path) as snapshots:
        assert snapshots.n_seeds == 3
        for seed in range(3):
            assert snapshots.for_seed(seed).read(4)[0, 0] == 10 + seed
            assert snapshots.for_seed(seed).latents[0, 0] == seed
        with pytest.raises(KeyError, match="holds 3"):
            snapshots.for_seed(3)


def test_seed_zero_is_the_one_seed_run_and_others_differ(tmp_path, model):
    model_file, data = model
    one = refine(model_file, tmp_path / "one.npz", seeds=1)
    three = refine(model_file, tmp_path / "three.npz", seeds=3)
    with open_snapshots(tmp_path / "one.npz") as a, open_snapshots(tmp_path / "three.npz") as b:
        assert (a.n_seeds, b.n_seeds) == (1, 3)
        for step in a.steps:
            np.testing.assert_array_equal(a.read(step), b.read(step))
        finals = [b.for_seed(s).read(4) for s in range(3)]
        latents = [b.for_seed(s).latents for s in range(3)]
    assert not np.array_equal(finals[0], finals[1]) and not np.array_equal(finals[1], finals[2])
    assert not np.array_equal(latents[0], latents[1])
    assert one["latents_sha256"] == three["latents_sha256"] == three["seeds"][0]["latents_sha256"]
    assert [s["seed"] for s in three["seeds"]][0] == 5 and len({s["seed"] for s in three["seeds"]}) == 3
    assert all(s["wall_s"] > 0 and s["cpu_s"] > 0 for s in three["seeds"])


def test_metrics_are_mean_and_sample_std_over_seeds(tmp_path, model):
    model_file, data = model
    refine(model_file, tmp_path / "flow.npz", seeds=3)
    result = evaluate(tmp_path / "flow.npz", data, "flow")
    assert result["n_seeds"] == 3 and len(result["per_seed"]) == 3
    final = result["final_step"]
    for name in ("energy_u_heldout100", "hq4sigma_pct"):
        values = [next(r for r in seed if r["step"] == final)[name] for seed in result["per_seed"]]
        mean = next(r for r in result["per_step"] if r["step"] == final)[name]
        std = next(r for r in result["per_step_std"] if r["step"] == final)[name]
        assert mean == pytest.approx(np.mean(values), rel=1e-12)
        assert std == pytest.approx(np.std(values, ddof=1), rel=1e-12)
    # one seed: the plain metrics, no spread
    refine(model_file, tmp_path / "single.npz", seeds=1)
    single = evaluate(tmp_path / "single.npz", data, "single")
    assert single["n_seeds"] == 1 and "per_step_std" not in single
    assert single["per_step"] == result["per_seed"][0]


def test_cost_per_sample_follows_the_counts(tmp_path, model):
    model_file, data = model
    refine(model_file, tmp_path / "flow.npz", seeds=2)
    cost = evaluate(tmp_path / "flow.npz", data, "flow")["cost"]
    # latent DGflow, 4 steps: per step one forward and one backward of G and of d (the first step's forward is
    # G(z0), step 0's samples), and a last forward of G for the final samples: the counts are summed over 2
    # batches and 2 seeds, then divided
    steps = FLOW["steps"]
    passes = cost["network_evaluations_per_sample"]
    assert passes["generator_forward"] == pytest.approx(steps + 1)
    assert passes["generator_backward"] == passes["discriminator_backward"] == pytest.approx(steps)
    assert passes["discriminator_forward"] == pytest.approx(steps)
    by_step = {r["step"]: r["evaluations"] for r in cost["evaluations_per_sample_by_step"]}
    assert sorted(by_step) == [0, 2, 4] and by_step[0] == pytest.approx(1)
    assert by_step[4] == pytest.approx(passes["total"])
    assert cost["wall_s_per_sample"] > 0 and cost["cpu_s_per_sample"] > 0 and cost["n_seeds"] == 2


def test_report_shows_mean_std_and_draws_the_cost_figure(tmp_path, model):
    model_file, data = model
    files = []
    for name, method in (("base", {"kind": "base"}), ("flow", FLOW)):
        refine(model_file, tmp_path / f"{name}.npz", seeds=3, method=method)
        evaluate(tmp_path / f"{name}.npz", data, name)
        files.append(str(tmp_path / f"{name}.json"))
    runs = [("25gaussians", "wgan-gp", "trained")]
    outputs = {key: [str(tmp_path / Path(p).name) for p in paths]
               for key, paths in SUITES["toy2d"].report.outputs(runs).items()}
    params = {"suite": "toy2d", "n_samples": 40, "method_order": ["base", "flow"], "evaluate": METRIC_PARAMS,
              "methods": {"base": {"kind": "base"}, "flow": {"kind": "dgflow", "f": "KL"}}}
    report_stage.run("toy2d", files, json.loads(json.dumps(params)), outputs)
    table = pd.read_csv(tmp_path / "toy2d.csv")
    assert list(table["seeds"]) == [3, 3]
    assert {"energy_u_heldout100_std", "evals_per_sample"} <= set(table.columns)
    assert "ms_per_sample" not in table.columns  # measured times stay in the JSON: tables are reproducible
    assert table.set_index("method").loc["base", "evals_per_sample"] == pytest.approx(1)
    md = (tmp_path / "toy2d.md").read_text()
    assert "mean ± standard deviation over 3 refinement seeds" in md
    flow_row = next(line for line in md.splitlines() if "| flow" in line)
    assert flow_row.count(" ± ") >= 4  # every metric cell of the row
    cost_png = tmp_path / "toy2d_25gaussians_wgan-gp_cost.png"
    assert cost_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
