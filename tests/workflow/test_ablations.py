"""The ablation presets end to end: presets/ablation-toy2d.yaml shrunk to CI size and
presets/ablation-images-tiny.yaml on a CIFAR10 fixture, each through Snakemake in a temp dir. Every row of the
preset reaches the table with finite metrics, and the ablations show what they are about: gamma 0 starts from
the same samples as the reference row and then leaves it, the eta sweep's rows differ from each other, and a
shorter run is the longer run's snapshot at its last step (the steps sweep walks one path)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from conftest import REPO

from dgflow_bench.snapshots import open_snapshots
from fixtures.images import make_cifar
from fixtures.workflow import snakemake, write_config

pytestmark = pytest.mark.workflow

TOY2D = REPO / "presets" / "ablation-toy2d.yaml"
IMAGES_TINY = REPO / "presets" / "ablation-images-tiny.yaml"
REFERENCE = "dgflow-kl"  # the authors' row every ablation row is a change of
TINY_STEPS = 4  # the reference row's steps in CI; every row's steps scale with it


def shrunk_toy2d(preset=TOY2D) -> dict:
    """The 2-D ablation at CI size (as fixtures/workflow.py tiny_config): 2,000 / 300 points, 16-wide nets
    trained 30 iterations, 20 fine-tuning steps, 200 samples, one refinement seed, one dataset. Steps scale
    by TINY_STEPS over the reference row's (25 -> 4; the steps sweep 10 / 50 / 100 -> 2 / 8 / 16, so it stays
    a sweep), snapshots every 2 steps; every other knob of a row is the preset's."""
    config = yaml.safe_load(preset.read_text())
    config["device"] = "cpu"
    config["datasets"] = {"25gaussians": {"n_train": 2000, "n_heldout": 300}}
    model = config["models"]["wgan-gp"]
    model["datasets"] = ["25gaussians"]
    model["arch"] = {"generator": {"hidden": 16, "depth": 2}, "critic": {"hidden": 16, "depth": 2}}
    model["train"].update(iterations=30, batch_size=64, checkpoint_every=10)
    config["finetune"].update(steps=20, batch_size=64, eval_every=10)
    config["refine"].update(n_samples=200, batch_size=200, seeds=1)  # seeds: tests/unit/test_refinement_seeds.py
    scale = TINY_STEPS / config["methods"][REFERENCE]["steps"]
    for spec in config["methods"].values():
        if "steps" in spec:
            spec.update(steps=max(1, round(spec["steps"] * scale)), snapshot_every=2)
    return config


def snapshot(path, step):
    with open_snapshots(path) as snaps:
        return snaps.read(step)


def final(path):
    with open_snapshots(path) as snaps:
        return snaps.read(snaps.final_step)


def check_sweeps(samples, methods: dict, every: int, same) -> None:
    """What the ablation rows of one run show (``samples``: its folder; ``same``: equality of two sample
    arrays): gamma 0 starts where the reference row starts and ends elsewhere; every two rows of the eta
    sweep end apart; each run of the steps sweep ends where the longest passes at that step (one path: each
    batch draws its noise from the same seed, whatever the row)."""
    path = {name: samples / f"{name}.npz" for name in methods}
    assert same(snapshot(path["dgflow-kl-gamma0"], 0), snapshot(path[REFERENCE], 0))
    assert not same(final(path["dgflow-kl-gamma0"]), final(path[REFERENCE]))
    sweep = [REFERENCE, *(name for name in methods if name.startswith(f"{REFERENCE}-eta"))]
    assert len(sweep) >= 3
    ends = {name: final(path[name]) for name in sweep}
    for i, a in enumerate(sweep):
        for b in sweep[i + 1:]:
            assert not same(ends[a], ends[b]), (a, b)
    steps = {name: methods[name]["steps"] for name in methods
             if name == REFERENCE or name.startswith(f"{REFERENCE}-steps")}
    assert len(set(steps.values())) == len(steps) >= 3
    longest = max(steps, key=steps.get)
    for name, n in steps.items():
        assert n % every == 0 and same(final(path[name]), snapshot(path[longest], n)), name


def test_toy2d_ablation_end_to_end(tmp_path):
    config = shrunk_toy2d()
    workdir = tmp_path / "run"
    write_config(workdir, config)
    proc = snakemake(workdir)
    assert proc.returncode == 0, proc.stderr[-4000:]

    table = pd.read_csv(workdir / "results/tables/toy2d.csv")
    assert sorted(table["method"]) == sorted(config["methods"])  # every row, once (one dataset, one source)
    metrics = [c for c in table.columns if c.startswith(("hq4sigma", "energy_u", "kde_ll", "modes_covered"))]
    assert len(metrics) >= 3
    assert np.isfinite(table[metrics].to_numpy(dtype=float)).all()
    rows = table.set_index("method")
    for name, spec in config["methods"].items():
        assert rows.loc[name, "step"] == spec.get("steps", 0), name  # each row at its own final step

    # bit-identical where the computations are the same (one process layout, one thread)
    check_sweeps(workdir / "results/samples/25gaussians/wgan-gp/trained", config["methods"], 2, np.array_equal)


def images_tiny(root) -> dict:
    config = yaml.safe_load(IMAGES_TINY.read_text())
    config["datasets"]["cifar10"]["root"] = str(root)
    return config


def test_images_ablation_tiny_end_to_end(tmp_path):
    from dgflow_bench.config import run_methods, validate
    from dgflow_bench.models.corrected import CorrectedLogit
    from dgflow_bench.models.store import load_model_file
    from dgflow_bench.report.images_tables import IS_HEADERS, method_columns

    make_cifar(tmp_path / "cifar")
    config = images_tiny(tmp_path / "cifar")
    workdir = tmp_path / "run"
    write_config(workdir, config)
    proc = snakemake(workdir)
    assert proc.returncode == 0, proc.stderr[-4000:]

    resolved = validate(config)
    for name, headers in (("images_fid", None), ("images_is", IS_HEADERS)):
        table = pd.read_csv(workdir / f"results/tables/{name}.csv").set_index("model")
        labels = {c.method: c.label for c in method_columns(resolved["methods"], headers=headers)}
        assert sorted(table.index) == sorted(config["models"])  # one row per model (one dataset, one source)
        for model in config["models"]:
            rows = run_methods(resolved, "cifar10", model)
            values = table.loc[model, [labels[row] for row in rows]].to_numpy(dtype=float)
            assert np.isfinite(values).all(), (name, model, rows)
        # every row of the preset appears in some run
        assert set(labels) == {row for model in config["models"] for row in run_methods(resolved, "cifar10", model)}

    # raw vs fine-tuned vs corrected: the -ft row's d is sn-dcgan-ns's own critic fine-tuned, the -corr row's
    # d_phi (sn-dcgan-ns's critic, frozen) + d_lambda
    models = workdir / "results/models/cifar10"
    d_phi = load_model_file(models / "sn-dcgan-ns/trained/model.pt")["critic"]
    assert not isinstance(load_model_file(models / "sn-dcgan-ns/trained/disc-finetuned.pt")["critic"], CorrectedLogit)
    corrected = load_model_file(models / "sn-dcgan-hinge/trained/disc-finetuned.pt")["critic"]
    assert isinstance(corrected, CorrectedLogit)
    assert all(torch.equal(corrected.base.state_dict()[k], v) for k, v in d_phi.state_dict().items())

    check_sweeps(workdir / "results/samples/cifar10/sn-dcgan-ns/trained", config["methods"], 1, np.array_equal)
