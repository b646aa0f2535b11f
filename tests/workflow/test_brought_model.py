"""A model you bring, through `python -m snakemake`: the user's package (examples/own-model/my_models: a
generator, a critic and a builder) is copied into a temporary folder, its weights saved there (nothing is
trained in the project), and a config naming them (`kind: builder`) runs every row on an image dataset:
base, DGflow on the raw critic and on its fine-tuned estimator, DOT, DDLS, DRS and MH-GAN, on a folder of
100 PNGs the test writes (a dataset you bring, kind image-folder). The rerun does
nothing; a plan whose builder is wrong stops before any job with the sentence that says so."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import REPO
from fixtures.image_folder import write_image_folder
from fixtures.workflow import TIMEOUT, job_counts

from dgflow_bench.io import read_json

pytestmark = pytest.mark.workflow

EXAMPLE = REPO / "examples" / "own-model"
ROWS = ["base", "dgflow-kl", "dgflow-kl-ft", "dot", "ddls", "drs", "mh-gan"]


def _user_folder(tmp_path: Path) -> Path:
    """The example's package, weights script and config under tmp_path/user, with its weights saved there."""
    user = tmp_path / "user"
    shutil.copytree(EXAMPLE, user, ignore=shutil.ignore_patterns("__pycache__", "weights"))
    (user / "weights").mkdir()
    subprocess.run([sys.executable, "save_weights.py", "weights/my-gan.pt"], cwd=user, check=True,
                   env={**os.environ, "PYTHONPATH": os.pathsep.join([str(user), os.environ.get("PYTHONPATH", "")])})
    write_image_folder(user / "data" / "images", n=100, size=32)  # the data the config names (image-folder)
    return user


def _snakemake(user: Path, workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(user), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(user / "config.yaml"), "--cores", "2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, env=env)


def test_a_model_you_bring_gets_every_row_and_a_bad_builder_stops_the_plan(tmp_path):
    user, workdir = _user_folder(tmp_path), tmp_path / "run"
    workdir.mkdir()
    proc = _snakemake(user, workdir)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "rule train" not in proc.stdout + proc.stderr  # imported, never trained

    fid = pd.read_csv(workdir / "results/tables/images_fid.csv")
    assert list(fid["model"]) == ["my-gan"]
    cost = pd.read_csv(workdir / "results/tables/images_cost.csv")
    assert set(cost["method"]) == set(ROWS)
    for method in ROWS:
        metrics = read_json(workdir / f"results/metrics/my-images/my-gan/builder/{method}.json")
        values = [v for step in metrics["per_step"] for k, v in step.items() if k != "step"]
        assert len(values) >= 2 and np.isfinite(values).all(), method
    # the -ft row follows the logistic fine-tune of the builder's own critic, the raw row that critic as is
    assert read_json(workdir / "results/samples/my-images/my-gan/builder/dgflow-kl-ft.config.json")["disc_file"] == \
        "results/models/my-images/my-gan/builder/disc-finetuned.pt"
    assert read_json(workdir / "results/samples/my-images/my-gan/builder/dgflow-kl.config.json")["disc_file"] is None
    columns = ["Base", "DGflow-KL (dgflow-kl)", "DGflow-KL (dgflow-kl-ft)", "DOT", "DDLS", "DRS", "MH-GAN"]
    assert np.isfinite(fid[columns].to_numpy(dtype=float)).all()  # one column per row (the paper's layout)

    # the model file records the builder and the weights' hash; the resolved config holds them too
    record = read_json(workdir / "results/models/my-images/my-gan/builder/model.config.json")
    weights_sha = record["params"]["sha256"]
    assert record["params"]["builder"] == "my_models.nets:build" and len(weights_sha) == 64
    assert record["files"]["weights"]["sha256"] == weights_sha
    resolved = read_json(workdir / "results/config.resolved.json")
    assert resolved["models"]["my-gan"]["sha256"] == weights_sha

    rerun = _snakemake(user, workdir)
    assert rerun.returncode == 0 and "Nothing to be done" in rerun.stdout + rerun.stderr, rerun.stderr[-2000:]

    # the images are inputs of the data job: one image edited in place rebuilds the dataset and its dependants
    image = sorted((user / "data" / "images").iterdir())[7]
    Image.fromarray(255 - np.asarray(Image.open(image))).save(image)
    edited = _snakemake(user, workdir, "-n")
    assert edited.returncode == 0, edited.stderr[-2000:]
    counts = job_counts(edited.stdout)
    assert counts.get("data") == 1 and counts.get("evaluate") == len(ROWS), counts

    # a builder returning images of the wrong size is refused while the plan is made, before any job
    nets = user / "my_models" / "nets.py"
    nets.write_text(nets.read_text().replace("nn.Upsample(scale_factor=2), nn.Conv2d(ch, 3,",
                                            "nn.Identity(), nn.Conv2d(ch, 3,"))  # same weights, 16 px out
    bad = _snakemake(user, workdir, "-n")
    said = bad.stdout + bad.stderr
    assert bad.returncode != 0
    assert ("models.my-gan.builder: the generator of my_models.nets:build() maps 2 latents to shape "
            "(2, 3, 16, 16), but my-images samples are float (n, 3, 32, 32); make it output that shape") in said
    assert "Traceback" not in said and "rule " not in said
