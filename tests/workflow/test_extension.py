"""A user's method as one new file and an image dataset as one new row, in a package of their own, run through
`python -m snakemake`: the config names the modules in `extensions`, the planner and every job import them,
and nothing in the repository changes. (catalog.load_extensions; the in-process variants: a model family in
tests/unit/test_extending.py, an image dataset row through the stages in tests/unit/test_data_image_rows.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
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

# The dataset module, as a user would write it (the shape of the rows in src/dgflow_bench/data/image_rows.py): an
# image dataset is one row, here a folder holding one .npy of 16 px uint8 images, pooled to 8 px by the data
# stage, its seeded held-out subset and its training images the 'clean' protocol's FID reference.
DATASET_FILE = '''
from pathlib import Path

import numpy as np

from dgflow_bench.data.image_rows import ImageArchive, ImageDataset, ReferenceSet
from dgflow_bench.suites.images import register_image_dataset


def count(folder: Path, split: str) -> int:
    return int(np.load(folder / "images.npy", mmap_mode="r").shape[0])


def chunks(folder: Path, split: str, size: int):
    images = np.load(folder / "images.npy", mmap_mode="r")
    for start in range(0, len(images), size):
        yield np.ascontiguousarray(images[start:start + size]), None


ARCHIVE = ImageArchive("dotsset", "https://example.invalid/dotsset.tar.gz", "dotsset", {"all": ("images.npy",)},
                       16, count, chunks)
register_image_dataset("dots-8px", ImageDataset(
    ARCHIVE, resolution=8, resize="avgpool2", default_splits=("all",),
    references={"clean": ReferenceSet("all", ("all",), 48, "avgpool2")}))
'''
N_IMAGES = 48  # the images the test writes into the row's folder (16 px, RGB); the row's reference N


def _user_package(tmp_path: Path) -> Path:
    """The user's package (my_methods: shift.py, datasets.py) under tmp_path/userpkg; returns that folder."""
    package = tmp_path / "userpkg" / "my_methods"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "shift.py").write_text(textwrap.dedent(METHOD_FILE))
    (package / "datasets.py").write_text(textwrap.dedent(DATASET_FILE))
    return package.parent


def _snakemake(workdir: Path, userpkg: Path, *args: str) -> tuple[list[str], dict, subprocess.CompletedProcess]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(userpkg), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "--cores", "2"]
    return cmd, env, subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=TIMEOUT, env=env)


def test_a_method_in_a_users_own_package_runs_through_snakemake(tmp_path):
    userpkg = _user_package(tmp_path)
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
    cmd, env, proc = _snakemake(workdir, userpkg)
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


def test_an_image_dataset_row_and_a_method_in_a_users_own_package_run_through_snakemake(tmp_path):
    """The same package's datasets.py adds an image dataset (one row, its data a folder the test writes) and
    shift.py the method; a tiny SN-DCGAN is trained on it and refined by the base row and the user's method."""
    userpkg = _user_package(tmp_path)
    images = np.random.default_rng(0).integers(0, 256, (N_IMAGES, 3, 16, 16), dtype=np.uint8)
    (tmp_path / "dots" / "dotsset").mkdir(parents=True)
    np.save(tmp_path / "dots" / "dotsset" / "images.npy", images)
    workdir = tmp_path / "run"
    workdir.mkdir()
    config = {
        "seed": 5, "device": "cpu", "extensions": ["my_methods.datasets", "my_methods.shift"],
        "datasets": {"dots-8px": {"root": str(tmp_path / "dots"), "heldout_size": 8}},
        "models": {"sn-dcgan-hinge": {"datasets": ["dots-8px"], "arch": {"z_dim": 8, "g_ch": 16, "d_ch": 8},
                                      "train": {"iterations": 30, "batch_size": 8, "checkpoint_every": 10}}},
        "refine": {"n_samples": 16, "batch_size": 16, "seed": 3},
        "methods": {"base": {"kind": "base"}, "shifted": {"kind": "toy-shift", "shift": 0.25}},
        "evaluate": {"inception_weights": None, "is_splits": 2, "feature_batch_size": 16},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    _, _, proc = _snakemake(workdir, userpkg)
    assert proc.returncode == 0, proc.stderr[-4000:]

    with np.load(workdir / "results/data/dots-8px.npz") as data:  # the row's reader and resize ran in the job
        assert data["train"].shape == (N_IMAGES, 3, 8, 8) and data["heldout"].shape == (8, 3, 8, 8)
    fid = pd.read_csv(workdir / "results/tables/images_fid.csv")
    assert list(fid["dataset"]) == ["dots-8px"]
    assert list(fid["metric"]) == [f"fid16_dots-8px-all-ref{N_IMAGES}_clean_RANDOM-WEIGHTS"]
    assert {"Base", "Shift"} <= set(fid.columns) and np.isfinite(fid[["Base", "Shift"]].to_numpy(dtype=float)).all()
    assert (fid["Shift"] != fid["Base"]).all()  # the shifted latents gave other images
    record = read_json(workdir / "results/samples/dots-8px/sn-dcgan-hinge/trained/shifted.config.json")
    assert record["info"]["shift"] == 0.25  # the user's run() ran on the user's dataset

    rerun = _snakemake(workdir, userpkg)[2]
    assert rerun.returncode == 0 and "Nothing to be done" in rerun.stdout + rerun.stderr
