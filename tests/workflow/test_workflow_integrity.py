"""Nothing stale, nothing lost, fail before the work, end to end on a tiny 2-D run: a diverged method is a
table row that says so while the other rows stay as they were; a failed job is never followed by a
"Nothing to be done" over an old table; damaged intermediates are named or rebuilt with their dependants; a
failed or killed report leaves no table the next run takes
as current (the previous ones are kept aside in results/previous-report/); a metrics file deleted by hand is
rebuilt with the table; missing external inputs fail the dry run."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from conftest import REPO
from dgflow_bench.layout import sidecar
from fixtures.workflow import job_counts, snakemake, write_config

pytestmark = pytest.mark.workflow
TRAINED = "25gaussians/wgan-gp/trained"
TABLE = "results/tables/toy2d.csv"


def tiny_config() -> dict:
    return {
        "seed": 5,
        "device": "cpu",
        "datasets": {"25gaussians": {"n_train": 1500, "n_heldout": 200}},
        "models": {"wgan-gp": {
            "datasets": ["25gaussians"], "sources": ["trained"],
            "arch": {"generator": {"hidden": 16, "depth": 2}, "critic": {"hidden": 16, "depth": 2}},
            "train": {"iterations": 20, "critic_steps": 2, "batch_size": 64, "lr": 1e-3, "checkpoint_every": 10},
        }},
        "refine": {"n_samples": 150, "batch_size": 150, "seed": 7},
        "methods": {
            "base": {"kind": "base"},
            # data space: a latent flow with a uniform prior stays in the box (clip) and cannot leave the range
            "dgflow-kl": {"kind": "dgflow", "space": "data", "eta": 0.001, "steps": 4, "snapshot_every": 2},
            "ddls": {"kind": "ddls", "eps": 0.01, "steps": 4, "snapshot_every": 2},
        },
    }


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("integrity")
    write_config(workdir, tiny_config())
    proc = snakemake(workdir)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir


@pytest.fixture()
def run_copy(finished, tmp_path):
    """A private copy of the finished run (files and Snakemake's records), so each test may damage it."""
    workdir = tmp_path / "run"
    shutil.copytree(finished, workdir, symlinks=True)
    return workdir


def said(proc) -> str:
    return proc.stdout + proc.stderr


def with_eta(eta: float) -> dict:
    config = tiny_config()
    config["methods"]["dgflow-kl"]["eta"] = eta
    return config


def test_divergence_is_a_row_and_the_others_are_unchanged(run_copy, finished):
    write_config(run_copy, with_eta(1e6))
    proc = snakemake(run_copy)
    assert proc.returncode == 0, said(proc)[-4000:]
    before, after = pd.read_csv(finished / TABLE), pd.read_csv(run_copy / TABLE)
    row = after[after.method == "dgflow-kl"].iloc[0]
    assert row["status"].startswith("diverged at step"), row["status"]
    others = lambda t: t[t.method != "dgflow-kl"].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(others(before), others(after))
    assert "diverged at step" in (run_copy / "results/tables/toy2d.md").read_text()
    # back to the old eta: the table is rebuilt to what it was, never left as the diverged one
    write_config(run_copy, tiny_config())
    assert snakemake(run_copy).returncode == 0
    assert (run_copy / TABLE).read_bytes() == (finished / TABLE).read_bytes()


def test_a_failed_job_is_never_followed_by_an_old_table(run_copy, finished):
    model = run_copy / f"results/models/{TRAINED}/model.pt"
    data = bytearray(model.read_bytes())
    data[-100:-60] = bytes(40)  # same size, other bytes: only the checksum tells
    model.write_bytes(bytes(data))
    write_config(run_copy, with_eta(0.007))
    for attempt in range(2):  # the rerun fails the same way: no "Nothing to be done" over the old table
        proc = snakemake(run_copy)
        assert proc.returncode != 0, attempt
        assert "Nothing to be done" not in said(proc)
        assert f"{model.relative_to(run_copy)} is damaged" in said(proc)  # the failed job's log, shown
        assert (run_copy / TABLE).read_bytes() == (finished / TABLE).read_bytes()  # no table lost
    model.unlink()  # the fix the message gives: the model and everything made from it are rebuilt
    proc = snakemake(run_copy)
    assert proc.returncode == 0, said(proc)[-4000:]
    assert "rule train" in proc.stdout + proc.stderr
    proc = snakemake(run_copy, "-n")
    assert proc.returncode == 0 and "Nothing to be done" in said(proc)  # settled: no rerun loop


def test_truncated_intermediates_are_named_then_rebuilt(run_copy):
    """One of each kind at once: the plan fails naming all of them; deleted, they are rebuilt with their
    dependants."""
    damaged = {"data": "results/data/25gaussians.npz", "train": f"results/models/{TRAINED}/model.pt",
               "refine": f"results/samples/{TRAINED}/ddls.npz", "evaluate": f"results/metrics/{TRAINED}/base.json"}
    for path in damaged.values():
        target = run_copy / path
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    proc = snakemake(run_copy, "-n")
    assert proc.returncode != 0
    for path in damaged.values():
        assert path in said(proc)
    assert "delete" in said(proc)
    for path in damaged.values():
        (run_copy / path).unlink()
    proc = snakemake(run_copy, "-n")
    assert proc.returncode == 0, said(proc)[-3000:]
    counts = job_counts(proc.stdout)
    assert counts == {"data": 1, "train": 1, "refine": 3, "evaluate": 3, "report_toy2d": 1, "all": 1}, counts


PREVIOUS = "results/previous-report/tables/toy2d.csv"


@pytest.fixture(scope="module")
def clean_b(tmp_path_factory):
    """A clean run of config B (A with dgflow-kl's eta changed): what a rerun of B must end with."""
    workdir = tmp_path_factory.mktemp("clean-b")
    write_config(workdir, with_eta(0.002))
    proc = snakemake(workdir)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir


def kill_the_report(monkeypatch, folder):
    """A `dgflow-bench` first on PATH that SIGKILLs itself when asked for the report, as an OOM kill would."""
    real = shutil.which("dgflow-bench")
    wrapper = folder / "dgflow-bench"
    wrapper.write_text(f'#!/bin/sh\nif [ "$1" = report ]; then kill -9 $$; fi\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.parametrize("how", ["damaged-metrics", "sigkill"])
def test_a_failed_report_never_leaves_a_current_looking_table(run_copy, finished, clean_b, how, monkeypatch,
                                                               tmp_path):
    metrics = run_copy / f"results/metrics/{TRAINED}/base.json"
    if how == "damaged-metrics":
        data = bytearray(metrics.read_bytes())
        middle = len(data) // 2
        data[middle:middle + 16] = bytes(b ^ 0xFF for b in data[middle:middle + 16])  # same size, other bytes
        metrics.write_bytes(bytes(data))
    else:
        kill_the_report(monkeypatch, tmp_path)
    write_config(run_copy, with_eta(0.002))
    attempts = 2 if how == "damaged-metrics" else 1
    for attempt in range(attempts):  # a plain rerun without the fix fails again: never A's table as B's
        proc = snakemake(run_copy)
        assert proc.returncode != 0, attempt
        assert "Nothing to be done" not in said(proc)
        if how == "damaged-metrics":
            assert f"{metrics.relative_to(run_copy)} is damaged" in said(proc)
        assert not (run_copy / TABLE).exists()  # no table under the output name that could pass as B's
        assert (run_copy / PREVIOUS).read_bytes() == (finished / TABLE).read_bytes()  # A's, kept aside
        assert "results/previous-report" in said(proc)
    if how == "damaged-metrics":
        metrics.unlink()  # the fix the message gives
    else:
        monkeypatch.undo()
    proc = snakemake(run_copy)
    assert proc.returncode == 0, said(proc)[-4000:]
    assert (run_copy / TABLE).read_bytes() == (clean_b / TABLE).read_bytes()
    assert (run_copy / "results/tables/toy2d.md").read_bytes() == (clean_b / "results/tables/toy2d.md").read_bytes()
    assert not (run_copy / "results/previous-report").exists()  # nothing older left to be mistaken for it
    proc = snakemake(run_copy, "-n")
    assert proc.returncode == 0 and "Nothing to be done" in said(proc)  # settled


def test_a_metrics_file_deleted_by_hand_is_rebuilt_with_the_table(run_copy, finished):
    metrics = f"results/metrics/{TRAINED}/base.json"
    (run_copy / metrics).unlink()
    (run_copy / sidecar(metrics)).unlink()
    proc = snakemake(run_copy)
    assert proc.returncode == 0, said(proc)[-4000:]
    assert f"rebuilding {metrics}" in said(proc)
    assert "rule report_toy2d" in said(proc)
    assert (run_copy / metrics).exists()
    assert (run_copy / TABLE).read_bytes() == (finished / TABLE).read_bytes()


def test_missing_external_input_fails_the_dry_run(tmp_path):
    config = tiny_config()
    config["models"]["wgan-gp"]["sources"] = ["dot-pretrained"]
    config["sources"] = {"dot-pretrained": {"local_dir": "checkpoints/nowhere"}}
    write_config(tmp_path, config)
    proc = snakemake(tmp_path, "-n")
    assert proc.returncode != 0
    assert "sources.dot-pretrained.local_dir" in said(proc)
    assert str(tmp_path / "checkpoints" / "nowhere") in said(proc)  # relative to the config file's folder
    assert not (tmp_path / "results").exists()
    proc = snakemake(tmp_path, "--unlock")  # housekeeping runs no job: the check only warns
    assert proc.returncode == 0, said(proc)[-2000:]
    assert "warning: external inputs" in said(proc)


def test_relative_paths_follow_the_config_file_not_the_working_directory(tmp_path, dot_format_source):
    config = copy.deepcopy(tiny_config())
    config["models"]["wgan-gp"]["sources"] = ["dot-pretrained"]
    shutil.copytree(dot_format_source["local_dir"], tmp_path / "configs" / "ckpt")
    config["sources"] = {"dot-pretrained": {**dot_format_source, "local_dir": "ckpt"}}
    (tmp_path / "configs").mkdir(exist_ok=True)
    (tmp_path / "configs" / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "-n", "--snakefile", str(REPO / "Snakefile"), "--cores", "1",
           "--configfile", str(tmp_path / "configs" / "config.yaml")]
    for workdir in (tmp_path / "a", tmp_path / "b" / "c"):
        workdir.mkdir(parents=True)
        for extra in ([], ["--directory", str(workdir)]):  # run from the folder, or point at it
            proc = subprocess.run(cmd + extra, cwd=workdir if not extra else tmp_path, capture_output=True,
                                  text=True, timeout=300)
            assert proc.returncode == 0, said(proc)[-3000:]
            assert "import_checkpoint" in proc.stdout


def test_directory_without_configfile_uses_the_repository_config(tmp_path):
    cmd = [sys.executable, "-m", "snakemake", "-n", "--snakefile", str(REPO / "Snakefile"), "--directory",
           str(tmp_path), "--cores", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, said(proc)[-3000:]
    assert "report_toy2d" in proc.stdout


def test_a_samples_file_that_fails_its_evaluation_is_named_until_rebuilt(run_copy, finished):
    """Issue 25.2 as it happened: a samples file damaged in place (same size: only its checksum tells) fails the
    evaluate job that reads it, and Snakemake deletes that job's metrics file. Each rerun must fail the same
    way (never "Nothing to be done" over a table that still shows the row); after the `rm` the message gives,
    the samples, their metrics and the table are rebuilt, and back on the first config the table is the clean
    run's, byte for byte."""
    samples = run_copy / f"results/samples/{TRAINED}/dgflow-kl.npz"
    metrics = run_copy / f"results/metrics/{TRAINED}/dgflow-kl.json"
    data = bytearray(samples.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 16] = bytes(b ^ 0xFF for b in data[middle:middle + 16])
    samples.write_bytes(bytes(data))
    changed = tiny_config()
    changed["evaluate"] = {"kde_bandwidth": 0.07}  # every evaluation reruns; refinement does not
    write_config(run_copy, changed)
    for attempt in range(2):
        proc = snakemake(run_copy)
        assert proc.returncode != 0, attempt
        assert "Nothing to be done" not in said(proc)
        assert f"{samples.relative_to(run_copy)} is damaged" in said(proc), said(proc)[-3000:]
        assert not metrics.exists()  # the failed job's output, deleted by Snakemake: rebuilt on the next run
    samples.unlink()  # the fix the message gives
    proc = snakemake(run_copy)
    assert proc.returncode == 0, said(proc)[-4000:]
    assert "rule refine" in said(proc) and metrics.exists()
    write_config(run_copy, tiny_config())
    assert snakemake(run_copy).returncode == 0
    assert (run_copy / TABLE).read_bytes() == (finished / TABLE).read_bytes()
    proc = snakemake(run_copy, "-n")
    assert proc.returncode == 0 and "Nothing to be done" in said(proc)
