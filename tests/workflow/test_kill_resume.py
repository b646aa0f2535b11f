"""Kill the whole `snakemake` process group at several points of a small suite (training, refinement,
evaluation), recover with `--unlock` + `--rerun-incomplete`, and end with the same table as an uninterrupted
run; no partial file is ever left under a final name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from fixtures.workflow import snakemake, tiny_config, write_config

pytestmark = pytest.mark.workflow


def small_config(dot_source: dict) -> dict:
    config = tiny_config(dot_source)
    config["datasets"].pop("swissroll")
    config["models"]["wgan-gp"].update(datasets=["25gaussians"], sources=["trained"])
    config["models"]["wgan-gp"]["train"].update(iterations=400, checkpoint_every=20)  # a few seconds
    # one row per kind of job the kill may hit (a fine-tuned discriminator, latent refinement, DOT)
    config["methods"] = {name: config["methods"][name] for name in ("base", "dgflow-kl", "dot")}
    return config


def start(workdir: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "--cores", "2", "--rerun-incomplete"]
    # a new session: the kill reaches snakemake and every job it started, like a node dying
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def kill_when(proc: subprocess.Popen, ready, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not ready():
        assert proc.poll() is None, "the run finished before the kill point"
        assert time.time() < deadline, "kill point never reached"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def no_torn_files(workdir: Path) -> None:
    """A killed writer may leave its hidden temp file, never a torn file under a final name."""
    leftovers = list((workdir / "results").rglob("*.tmp"))
    assert all(p.name.startswith(".") for p in leftovers), leftovers
    for path in (workdir / "results").rglob("*.npz"):
        with np.load(path) as data:
            for key in data.files:
                data[key]  # a truncated archive fails here


def test_killed_workflow_recovers_identically(tmp_path, dot_format_source):
    reference = tmp_path / "reference"
    write_config(reference, small_config(dot_format_source))
    assert snakemake(reference).returncode == 0

    workdir = tmp_path / "killed"
    write_config(workdir, small_config(dot_format_source))
    results = workdir / "results"
    kill_points = [
        lambda: (results / "models/25gaussians/wgan-gp/trained/train-state.pt").exists(),  # mid-training
        lambda: any((results / "samples").rglob("*.npz")),  # during refinement
        lambda: any((results / "metrics").rglob("*.json")),  # during evaluation
    ]
    for ready in kill_points:
        proc = start(workdir)
        kill_when(proc, ready)
        no_torn_files(workdir)
        assert snakemake(workdir, "--unlock").returncode == 0
    proc = snakemake(workdir, "--rerun-incomplete")
    assert proc.returncode == 0, proc.stderr[-3000:]
    pd.testing.assert_frame_equal(pd.read_csv(results / "tables/toy2d.csv"),
                                  pd.read_csv(reference / "results/tables/toy2d.csv"))
    assert "Nothing to be done" in snakemake(workdir, "-n").stdout
