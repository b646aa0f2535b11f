"""Stages through the real CLI in subprocesses: a training job killed mid-way (SIGKILL or SIGTERM) resumes
and ends bit-identical to an uninterrupted run; a diverging flow stops with a message and writes nothing;
a corrupt model file is named."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dgflow_bench.config import refine_params, validate

TRAIN = {"arch": {"generator": {"hidden": 16, "depth": 2}, "critic": {"hidden": 16, "depth": 2}},
         "recipe": {"iterations": 400, "critic_steps": 2, "batch_size": 64, "lr": 1e-3, "betas": [0.5, 0.9],
                    "gp_weight": 10, "checkpoint_every": 25, "lr_decay": "linear"},
         "seed": 11}


def cli(*args: str, **kw) -> list[str]:
    return [sys.executable, "-m", "dgflow_bench.cli", *args]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "25gaussians.npz"
    params = json.dumps({"n_train": 2000, "n_heldout": 200, "seed": 1})
    subprocess.run(cli("data", "--dataset", "25gaussians", "--params", params, "--out", str(out)), check=True)
    return out


def train_cmd(data_file: Path, out: Path, state: Path) -> list[str]:
    return cli("train", "--dataset", "25gaussians", "--model", "wgan-gp", "--data", str(data_file), "--params", json.dumps(TRAIN),
               "--out", str(out), "--state", str(state), "--device", "cpu", "--threads", "1", "--no-progress")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, data_file) -> dict:
    folder = tmp_path_factory.mktemp("ref")
    subprocess.run(train_cmd(data_file, folder / "model.pt", folder / "state.pt"), check=True, timeout=300)
    return torch.load(folder / "model.pt", weights_only=True)


def wait_for_step(state: Path, minimum: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "training finished before it could be interrupted"
        if state.exists():
            try:
                if torch.load(state, weights_only=True)["step"] >= minimum:
                    return
            except Exception:  # never torn (atomic rename), but be patient with the race on first write
                pass
        time.sleep(0.05)
    raise TimeoutError("no checkpoint appeared")


def assert_same_model(a: dict, b: dict) -> None:
    for net in ("generator", "critic"):
        for key, value in a[net]["state"].items():
            assert torch.equal(value, b[net]["state"][key]), f"{net}.{key} differs"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_training_resumes_bit_identical(tmp_path, data_file, uninterrupted, sig):
    out, state = tmp_path / "model.pt", tmp_path / "state.pt"
    proc = subprocess.Popen(train_cmd(data_file, out, state), stderr=subprocess.PIPE, text=True)
    wait_for_step(state, 50, proc)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert not out.exists(), "an interrupted job must not leave its final output"
    if sig == signal.SIGTERM:
        assert proc.returncode == 143 and "checkpoint written" in stderr
    else:
        assert proc.returncode == -signal.SIGKILL
    resumed_from = torch.load(state, weights_only=True)["step"]
    assert 0 < resumed_from < TRAIN["recipe"]["iterations"]
    subprocess.run(train_cmd(data_file, out, state), check=True, timeout=300)
    assert_same_model(torch.load(out, weights_only=True), uninterrupted)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, data_file) -> Path:
    folder = tmp_path_factory.mktemp("model")
    params = {**TRAIN, "recipe": {**TRAIN["recipe"], "iterations": 10}}
    cmd = train_cmd(data_file, folder / "model.pt", folder / "state.pt")
    cmd[cmd.index("--params") + 1] = json.dumps(params)
    subprocess.run(cmd, check=True, timeout=120)
    return folder / "model.pt"


def refine(model: Path, out: Path, method: dict) -> subprocess.CompletedProcess:
    # resolved through the schema, as the Snakemake rule does: every default comes from there
    config = validate({"datasets": {"25gaussians": {}}, "models": {"wgan-gp": {"datasets": ["25gaussians"]}},
                       "methods": {"flow-under-test": method},
                       "refine": {"n_samples": 64, "batch_size": 64, "seed": 0}})
    params = refine_params(config, "flow-under-test", "25gaussians")
    return subprocess.run(cli("refine", "--dataset", "25gaussians", "--model-file", str(model), "--params", json.dumps(params), "--out",
                              str(out), "--device", "cpu", "--no-progress"), capture_output=True, text=True)


def test_diverging_flow_stops_with_method_step_and_eta(tmp_path, model_file):
    # the MLP critic's gradient is bounded, so only a step near float32's maximum overflows to Inf/NaN
    method = {"kind": "dgflow", "discriminator": "raw", "f": "KL", "space": "data", "eta": 3e38, "gamma": 0.0,
              "steps": 10, "snapshot_every": 5}
    proc = refine(model_file, tmp_path / "s.npz", method)
    assert proc.returncode == 1
    assert "dgflow diverged at step" in proc.stderr and "eta=3e+38" in proc.stderr
    assert "flow-under-test" in proc.stderr
    assert not (tmp_path / "s.npz").exists()


def test_corrupt_model_file_is_named(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"\x00garbage")
    proc = refine(bad, tmp_path / "s.npz", {"kind": "base"})
    assert proc.returncode == 1 and str(bad) in proc.stderr and "corrupt" in proc.stderr


def test_every_stage_has_help():
    for stage in ("data", "train", "import-checkpoint", "finetune", "refine", "evaluate", "report"):
        proc = subprocess.run(cli(stage, "--help"), capture_output=True, text=True)
        assert proc.returncode == 0 and "--params" in proc.stdout, stage
