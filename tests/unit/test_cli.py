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


def refine(model: Path, out: Path, method: dict, *extra: str) -> subprocess.CompletedProcess:
    # resolved through the schema, as the Snakemake rule does: every default comes from there
    config = validate({"datasets": {"25gaussians": {}}, "models": {"wgan-gp": {"datasets": ["25gaussians"]}},
                       "methods": {"flow-under-test": method},
                       "refine": {"n_samples": 64, "batch_size": 64, "seed": 0}})
    params = refine_params(config, "flow-under-test", "25gaussians", "wgan-gp")
    return subprocess.run(cli("refine", "--dataset", "25gaussians", "--model-file", str(model), "--params", json.dumps(params), "--out",
                              str(out), "--device", "cpu", "--no-progress", *extra), capture_output=True, text=True)


def test_diverging_flow_is_recorded_not_fatal(tmp_path, model_file):
    # the MLP critic's gradient is bounded, so only a step near float32's maximum overflows to Inf/NaN
    method = {"kind": "dgflow", "discriminator": "raw", "f": "KL", "space": "data", "eta": 3e38, "gamma": 0.0,
              "steps": 10, "snapshot_every": 5}
    proc = refine(model_file, tmp_path / "s.npz", method)
    assert proc.returncode == 0, proc.stderr
    assert "flow-under-test: diverged at step" in proc.stderr
    record = json.loads((tmp_path / "s.config.json").read_text())["diverged"]
    # the earliest sign wins: the samples leave the range (step 5) before the iterates overflow
    assert record["kept_until_step"] < record["step"]
    assert "non-finite" in record["reason"] or "refine.divergence_bound" in record["reason"]


def test_corrupt_model_file_is_named(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"\x00garbage")
    proc = refine(bad, tmp_path / "s.npz", {"kind": "base"})
    assert proc.returncode == 1 and str(bad) in proc.stderr and "corrupt" in proc.stderr


def test_every_stage_has_help():
    for stage in ("data", "train", "import-checkpoint", "finetune", "refine", "evaluate", "report"):
        proc = subprocess.run(cli(stage, "--help"), capture_output=True, text=True)
        assert proc.returncode == 0 and "--params" in proc.stdout, stage


def test_version():
    from dgflow_bench import __version__

    proc = subprocess.run(cli("--version"), capture_output=True, text=True)
    assert proc.returncode == 0 and __version__ in proc.stdout


@pytest.mark.parametrize("stage", ["data", "train", "import-checkpoint", "finetune", "refine", "evaluate", "report",
                                   "resolve-config"])
def test_params_is_required(stage, capsys):
    from dgflow_bench.cli import build_parser

    # every other required argument given: only the missing --params can be what argparse refuses
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices[stage]
    others = [a for a in sub._actions if a.required and a.dest != "params"]
    argv = [stage] + [x for a in others for x in (a.option_strings[0], "{}" if a.dest == "outputs" else "x")]
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(argv)
    assert exc.value.code == 2 and "required: --params" in capsys.readouterr().err


def test_params_from_sidecar(tmp_path):
    from dgflow_bench.cli import build_parser, params_problem
    from dgflow_bench.io import config_path_for, write_resolved_config

    params = {"method": {"kind": "base"}, "refine": {"n_samples": 8}}
    out = tmp_path / "samples.npz"
    write_resolved_config(out, "refine", params, model_file="m.pt")
    args = build_parser().parse_args(["refine", "--dataset", "25gaussians", "--model-file", "m.pt", "--out", "x.npz",
                                      "--params", f"@{config_path_for(out)}"])
    assert args.params == params and params_problem("refine", args.params) is None
    # another stage's config is refused by name
    assert "'refine' output" in params_problem("evaluate", args.params)


def test_params_file_missing_or_incomplete(tmp_path):
    missing = tmp_path / "nope.config.json"
    proc = subprocess.run(cli("refine", "--dataset", "25gaussians", "--model-file", "m.pt", "--out", "x.npz",
                              "--params", f"@{missing}"), capture_output=True, text=True)
    assert proc.returncode == 2 and f"cannot read {missing}" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run(cli("refine", "--dataset", "25gaussians", "--model-file", "m.pt", "--out", "x.npz",
                              "--params", '{"refine": {}}'), capture_output=True, text=True)
    assert proc.returncode == 2 and "lacks 'method'" in proc.stderr and "config.json" in proc.stderr


def test_progress_lines_off_a_terminal(capsys):
    # stderr is captured (no TTY): plain lines every tenth and the final count, for the rule's log file
    from dgflow_bench.progress import progress

    assert list(progress(range(30, 200), desc="train", initial=30)) == list(range(30, 200))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 9 and lines[0].startswith("train: 40/200 (20%)")
    assert lines[-1].startswith("train: 200/200 (100%)")
    assert list(progress(range(5), desc="x", disable=True)) == list(range(5)) and not capsys.readouterr().err


def test_rejection_methods_record_what_each_sample_cost(tmp_path, model_file, data_file):
    """DRS and MH-GAN through the refine and evaluate stages: each fits its calibration on real samples of the
    data file (and says so when it has none); both write proposals per sample and the acceptance rate."""
    mhgan = {"kind": "mh-gan", "discriminator": "raw", "k": 20, "calibration_size": 100}
    proc = refine(model_file, tmp_path / "m.npz", mhgan)
    assert proc.returncode != 0 and "needs --data" in proc.stderr
    proc = refine(model_file, tmp_path / "m.npz", mhgan, "--data", str(data_file))
    assert proc.returncode == 0, proc.stderr
    info = json.loads((tmp_path / "m.config.json").read_text())["info"]
    assert info["calibration"]["kind"] == "isotonic" and info["calibration"]["breakpoints"] >= 2
    assert info["calibration_evaluations"]["discriminator_forward"] == 2 * 100  # real rows and as many generated
    assert info["proposals"] == 20 * 64
    drs = {"kind": "drs", "discriminator": "raw", "burn_in": 200, "calibration_size": 100}
    assert refine(model_file, tmp_path / "d.npz", drs, "--data", str(data_file)).returncode == 0
    for name, per_sample in (("m", 20), ("d", None)):
        params = json.dumps({"labels": {"dataset": "25gaussians", "model": "wgan-gp", "source": "trained",
                                        "method": name}, "metrics": {"kde_bandwidth": 0.05, "mode_min_share": 0.1}})
        subprocess.run(cli("evaluate", "--samples", str(tmp_path / f"{name}.npz"), "--data", str(data_file),
                           "--params", params, "--out", str(tmp_path / f"{name}.json"), "--no-progress"), check=True)
        sampling = json.loads((tmp_path / f"{name}.json").read_text())["sampling"]
        assert 0 < sampling["acceptance_rate"] <= 1
        assert sampling["proposals_per_sample"] == per_sample if per_sample else sampling["proposals_per_sample"] >= 1
