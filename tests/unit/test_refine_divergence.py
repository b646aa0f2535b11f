"""A refinement that leaves the sane range is a result, not a crash: the refine stage stops at the first kept
step outside ``refine.divergence_bound`` times the base samples' range (or non-finite), keeps the snapshots
before it and records where it diverged; evaluation and the table row carry that record."""

from __future__ import annotations

import pytest
import torch
import yaml

from conftest import REPO

from dgflow_bench.config import refine_params as dg_refine_params, validate
from dgflow_bench.io import config_path_for, read_json
from dgflow_bench.models.store import save_model_file
from dgflow_bench.catalog import MODELS
from dgflow_bench.report.tables import run_status
from dgflow_bench.snapshots import open_snapshots
from dgflow_bench.stages import refine


@pytest.fixture()
def model_file(tmp_path):
    torch.manual_seed(0)
    arch = {"generator": {"hidden": 16, "depth": 2}, "critic": {"hidden": 16, "depth": 2}}
    generator, critic = MODELS["wgan-gp"].build(arch, {}).values()
    path = tmp_path / "model.pt"
    save_model_file(path, generator=generator, critic=critic, latent=MODELS["wgan-gp"].latent(arch))
    return path


def refine_params(eta: float, steps: int = 6, kind: str = "dgflow") -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    method = {"kind": "dgflow", "eta": eta, "space": "data"} if kind == "dgflow" else {"kind": kind, "eps": eta}
    config["methods"] = {"flow": {**method, "steps": steps, "snapshot_every": 2}}
    config["refine"] = {"n_samples": 64, "batch_size": 32, "seed": 1}
    config = validate(config)
    return dg_refine_params(config, "flow", "25gaussians", "wgan-gp")


def test_divergence_is_recorded_and_earlier_snapshots_kept(tmp_path, model_file):
    out = tmp_path / "flow.npz"
    refine.run("25gaussians", str(model_file), None, refine_params(1e6), str(out), "cpu", progress=False)
    record = read_json(config_path_for(out))["diverged"]
    assert record["step"] in (2, 4, 6) and record["kept_until_step"] < record["step"]
    assert "|" not in record["reason"]  # it becomes a Markdown table cell
    with open_snapshots(out) as snapshots:
        assert snapshots.steps == [s for s in (0, 2, 4, 6) if s <= record["kept_until_step"]]
        assert snapshots.n_samples == 64
        bound = 10 * abs(snapshots.read(0)).max()
        assert abs(snapshots.read(snapshots.final_step)).max() <= bound
    status = run_status({"diverged": record})
    assert status.startswith(f"diverged at step {record['step']}")


def test_a_sane_run_records_no_divergence(tmp_path, model_file):
    out = tmp_path / "flow.npz"
    refine.run("25gaussians", str(model_file), None, refine_params(1e-3), str(out), "cpu", progress=False)
    assert read_json(config_path_for(out))["diverged"] is None
    with open_snapshots(out) as snapshots:
        assert snapshots.steps == [0, 2, 4, 6]
    assert run_status({"diverged": None}) == "ok"


def test_a_shorter_run_is_the_start_of_the_longer_one(tmp_path, model_file):
    """What a diverged run keeps: each batch draws its own noise, so stopping earlier changes no kept step."""
    runs = {}
    for steps in (6, 4):
        out = tmp_path / f"ddls{steps}.npz"
        refine.run("25gaussians", str(model_file), None, refine_params(0.01, steps, "ddls"), str(out), "cpu",
                   progress=False)
        runs[steps] = out
    with open_snapshots(runs[6]) as long, open_snapshots(runs[4]) as short:
        assert short.steps == [0, 2, 4] and len(short.batch_sizes) == 2
        for step in short.steps:
            assert (long.read(step) == short.read(step)).all(), step
        assert not (long.read(4) == long.read(2)).all()  # the noise did move them
