"""The image suite end to end on a tiny CIFAR10 in the official binary layout: data -> narrow SN-DCGAN
(hinge) -> fine-tuning -> DGflow / DOT / DDLS -> FID / IS with the random-weight feature net -> table. Plus
the pieces the DAG relies on: the images modality's storage form and every registered image model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from conftest import REPO

from dgflow_bench.config import validate
from dgflow_bench.modalities import MODALITIES
from dgflow_bench.registry import MODELS
from test_data_images import N_CIFAR, make_cifar
from test_workflow import snakemake, write_config


def tiny_images_config(root) -> dict:
    """presets/images-tiny.yaml pointed at ``root``."""
    config = yaml.safe_load((REPO / "presets" / "images-tiny.yaml").read_text())
    config["datasets"]["cifar10"]["root"] = str(root)
    return config


def test_images_modality_round_trip():
    images = MODALITIES["images"]
    raw = np.arange(2 * 3 * 4 * 4, dtype=np.int64).reshape(2, 3, 4, 4).astype(np.uint8) * 2
    train = images.load_train(raw)
    assert train.dtype == torch.uint8
    x = images.to_model_input(train, images.data_info({"train": raw}))
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    np.testing.assert_array_equal(images.to_storage(x), raw)  # uint8 -> [-1, 1] -> uint8 is exact
    stored = images.to_storage(torch.tensor([-2.0, -1.0, 0.0, 1.0, 3.0]).view(1, 1, 1, 5).expand(1, 3, 1, 5))
    assert stored.dtype == np.uint8 and stored[0, 0, 0].tolist() == [0, 0, 128, 255, 255]


@pytest.mark.parametrize("model", ["sn-dcgan-hinge", "sn-dcgan-ns", "wgan-gp-dcgan"])
@pytest.mark.parametrize("size", [32, 48])
def test_image_models_follow_the_data_size(model, size):
    spec = validate({"datasets": {"cifar10": {}}, "models": {model: {"datasets": ["cifar10"], "arch": {
        "g_ch": 16, "d_ch": 16}}}, "methods": {"base": {"kind": "base"}}})["models"][model]
    assert spec["train"]["critic_steps"] == (5 if model == "wgan-gp-dcgan" else 1)
    entry = MODELS[model]
    generator, critic = entry.build(spec["arch"], {"image_size": size, "channels": 3})
    z = torch.randn(2, entry.latent(spec["arch"])["dim"])
    x = generator(z)
    assert x.shape == (2, 3, size, size) and critic(x).shape == (2,)
    assert generator.spec["bottom_width"] == size // 8


@pytest.mark.workflow
def test_images_suite_end_to_end(tmp_path):
    make_cifar(tmp_path / "cifar")
    workdir = tmp_path / "run"
    write_config(workdir, tiny_images_config(tmp_path / "cifar"))
    proc = snakemake(workdir)
    assert proc.returncode == 0, proc.stderr[-4000:]

    table = pd.read_csv(workdir / "results/tables/images_fid.csv")
    assert list(table["method"]) == ["base", "dgflow-kl", "dot", "ddls"]
    metric_columns = [c for c in table.columns if c.startswith(("fid", "is"))]
    # the reference is the 5 x 20-record training split; no real Inception weights -> flagged names
    assert metric_columns == [f"fid64_cifar10-train-ref{5 * N_CIFAR}_clean_RANDOM-WEIGHTS",
                              "is64_4splits_clean_RANDOM-WEIGHTS"]
    assert np.isfinite(table[metric_columns].to_numpy()).all()
    assert (table[metric_columns[0]] >= 0).all() and (table[metric_columns[1]] > 1 - 1e-6).all()

    samples = np.load(workdir / "results/samples/cifar10/sn-dcgan-hinge/trained/dgflow-kl.npz")
    assert samples["samples"].dtype == np.uint8 and samples["samples"].shape == (2, 64, 3, 32, 32)
    caption = (workdir / "results/tables/images_fid.md").read_text()
    assert "'clean' protocol" in caption and "RANDOM-WEIGHTS" in caption
    assert list((workdir / "results/data/cache").glob("images-*/cifar10-train-32px-*.npz"))
