"""A user's method as one new file in a package of their own, run through `python -m snakemake`: the config
names the module in `extensions`, the planner and every job import it, and nothing in the repository changes.
(catalog.load_extensions; the in-process variant, with a model family too, is tests/unit/test_extending.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO
from fixtures.workflow import TIMEOUT

from dgflow_bench.io import read_json

pytestmark = pytest.mark.workflow

# The method file, as a user would write it (the shape of src/dgflow_bench/refine/methods/*.py): every latent
# moves by `shift` in one step; a paper-table column and a step-size name of its own.
METHOD_FILE = '''
from dataclasses import dataclass

from dgflow_bench.refine.method_params import MethodParams, knob, method


@method("toy-shift")
@dataclass(frozen=True)
class ShiftParams(MethodParams):
    step_size_name, column = "shift", "Shift"

    shift: float = knob(0.5, "added to every latent coordinate", type="number")
    steps: int = knob(1, type="integer", minimum=0, maximum=1)
    snapshot_every: int = knob(1, type="integer", minimum=1)

    def run(self, z0, generator, logit_fn, rng, *, prior, progress=False):
        from dgflow_bench.refine.common import Counter, RefinementResult, to_data

        nets = Counter(generator, logit_fn)
        snapshots = {0: to_data(z0, nets.generator)}
        nets.mark(0)
        if self.steps:
            snapshots[1] = to_data(z0 + self.shift, nets.generator)
        return RefinementResult(snapshots=snapshots, info={"shift": self.shift, **nets.info(self.steps)},
                                final_latents=z0 + self.shift)
'''

# DATASET ROW: when image datasets are rows of a suite's table (branch `datasetrows`), the same package gets a
# `datasets.py` adding a row, named in `extensions` too, and the config below a dataset of that name.


def test_a_method_in_a_users_own_package_runs_through_snakemake(tmp_path):
    package = tmp_path / "userpkg" / "my_methods"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "shift.py").write_text(textwrap.dedent(METHOD_FILE))
    workdir = tmp_path / "run"
    workdir.mkdir()
    config = {
        "seed": 3, "device": "cpu", "extensions": ["my_methods.shift"],
        "datasets": {"25gaussians": {"n_train": 2000, "n_heldout": 300}},
        "models": {"wgan-gp": {"datasets": ["25gaussians"], "sources": ["trained"],
                               "arch": {"generator": {"hidden": 16, "depth": 2}, "critic": {"hidden": 16, "depth": 2}},
                               "train": {"iterations": 20, "critic_steps": 2, "batch_size": 64, "lr": 1e-3,
                                         "checkpoint_every": 10}}},
        "refine": {"n_samples": 100, "batch_size": 100, "seed": 7},
        "methods": {"base": {"kind": "base"}, "shifted": {"kind": "toy-shift", "shift": 0.25}},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "userpkg"), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "--cores", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]

    table = pd.read_csv(workdir / "results/tables/toy2d.csv")
    assert set(table["method"]) == {"base", "shifted"}
    assert set(table.loc[table.method == "shifted", "step"]) == {1}
    record = read_json(workdir / "results/samples/25gaussians/wgan-gp/trained/shifted.config.json")
    assert record["params"]["method"] == {"kind": "toy-shift", "shift": 0.25, "steps": 1, "snapshot_every": 1}
    assert record["info"]["shift"] == 0.25  # the user's run() ran in the job

    # without the package on PYTHONPATH the plan stops at once, naming the module and the fix
    bad = subprocess.run([*cmd, "-n"], capture_output=True, text=True, timeout=TIMEOUT,
                         env={k: v for k, v in env.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(REPO / "src")})
    said = bad.stdout + bad.stderr
    assert bad.returncode != 0
    assert "extensions: module 'my_methods.shift' is not importable" in said and "PYTHONPATH" in said
