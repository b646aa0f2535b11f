"""The image suite end to end on a tiny CIFAR10 in the official binary layout: data -> narrow SN-DCGAN
(hinge) -> fine-tuning -> DGflow / DOT / DDLS -> FID / IS with the random-weight feature net -> table. Plus
the pieces the DAG relies on: the images modality's storage form and every registered image model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from matplotlib import image as mpimg

from conftest import REPO

from dgflow_bench.config import validate
from dgflow_bench.catalog import SUITES
from dgflow_bench.catalog import MODELS
from dgflow_bench.snapshots import open_snapshots
from fixtures.images import N_CIFAR, make_cifar
from fixtures.workflow import snakemake, write_config


def tiny_images_config(root) -> dict:
    """presets/images-tiny.yaml pointed at ``root``."""
    config = yaml.safe_load((REPO / "presets" / "images-tiny.yaml").read_text())
    config["datasets"]["cifar10"]["root"] = str(root)
    return config


def test_images_modality_round_trip():
    images = SUITES["images"].modality
    raw = np.arange(2 * 3 * 4 * 4, dtype=np.int64).reshape(2, 3, 4, 4).astype(np.uint8) * 2
    train = images.load_train(raw)
    assert train.dtype == torch.uint8
    x = images.to_model_input(train, images.data_info({"train": raw}))
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    np.testing.assert_array_equal(images.to_storage(x, "uint8"), raw)  # uint8 -> [-1, 1] -> uint8 is exact
    legacy = images.to_storage(x * 0.999, "float32")  # the legacy protocol's form: float, never rounded
    assert legacy.dtype == np.float32 and not np.array_equal(legacy, np.round(legacy))
    np.testing.assert_allclose(legacy, (raw / 127.5 - 1) * 0.999 * 127.5 + 127.5, atol=1e-3)
    with pytest.raises(ValueError, match="uint8' or 'float32"):
        images.to_storage(x, "float16")
    stored = images.to_storage(torch.tensor([-2.0, -1.0, 0.0, 1.0, 3.0]).view(1, 1, 1, 5).expand(1, 3, 1, 5))
    assert stored.dtype == np.uint8 and stored[0, 0, 0].tolist() == [0, 0, 128, 255, 255]


@pytest.mark.parametrize("model", ["sn-dcgan-hinge", "sn-dcgan-ns", "wgan-gp-dcgan"])
@pytest.mark.parametrize("size", [32, 48])
def test_image_models_follow_the_data_size(model, size):
    spec = validate({"datasets": {"cifar10": {}}, "models": {model: {"datasets": ["cifar10"], "arch": {
        "g_ch": 16, "d_ch": 16}}}, "methods": {"base": {"kind": "base"}}})["models"][model]
    assert spec["train"]["critic_steps"] == (5 if model == "wgan-gp-dcgan" else 1)
    entry = MODELS[model]
    generator, critic = entry.build(spec["arch"], {"image_size": size, "channels": 3}).values()
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

    fid = pd.read_csv(workdir / "results/tables/images_fid.csv")
    inception = pd.read_csv(workdir / "results/tables/images_is.csv")
    # the paper's layout: one row per dataset x model x source, one column (+ its paper column) per method;
    # the reference is the 5 x 20-record training split; no real Inception weights -> flagged names
    assert list(fid["metric"]) == [f"fid64_cifar10-train-ref{5 * N_CIFAR}_clean_RANDOM-WEIGHTS"]
    assert list(inception["metric"]) == ["is64_4splits_clean_RANDOM-WEIGHTS"]
    # two KL rows (the raw logit and the -ft variant) fill one paper column, told apart by their row names
    kl_fid = ["DGflow-KL (dgflow-kl)", "DGflow-KL (dgflow-kl-ft)"]
    kl_is = ["DGflow (dgflow-kl)", "DGflow (dgflow-kl-ft)"]
    # the rejection baselines follow the paper's columns
    fid_columns, is_columns = ["Base", "DOT", *kl_fid, "DDLS", "DRS", "MH-GAN"], ["Base", "DDLS", "DOT", *kl_is, "DRS", "MH-GAN"]
    for table, columns in ((fid, fid_columns), (inception, is_columns)):
        assert [c for c in columns if c in table.columns] == columns
        assert np.isfinite(table[columns].to_numpy(dtype=float)).all()
        assert table[[f"{c} paper" for c in columns]].isna().all().all()  # never beside RANDOM-WEIGHTS numbers
    assert (fid[["Base", *kl_fid]].to_numpy() >= 0).all() and (inception["Base"] > 1 - 1e-6).all()
    for figure in ("images_cifar10_sn-dcgan-hinge_trained_samples.png", "images_cifar10_fid_steps.png"):
        assert (workdir / "results/figures" / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    grid = mpimg.imread(workdir / "results/models/cifar10/sn-dcgan-hinge/trained/samples.png")  # training's look
    assert grid.shape[:2] == (8 * 32, 8 * 32) and grid[..., :3].std() > 0
    with open_snapshots(workdir / "results/samples/cifar10/sn-dcgan-hinge/trained/dgflow-kl.npz") as snaps:
        assert snaps.steps == [0, 2] and snaps.n_samples == 64
        final = snaps.read(2)
        assert final.dtype == np.uint8 and final.shape == (64, 3, 32, 32)
    caption = (workdir / "results/tables/images_fid.md").read_text()
    assert "protocol 'clean'" in caption and "RANDOM-WEIGHTS" in caption
    # the one-off fit of the -ft estimator shared out over the rows that read it (DRS and MH-GAN read it too)
    cost = pd.read_csv(workdir / "results/tables/images_cost.csv").set_index("method")
    readers = ["dgflow-kl-ft", "drs", "mh-gan"]
    assert (cost.loc[readers, "tuning_passes_per_sample"] > 0).all()
    assert cost.loc[readers, "tuning_passes_per_sample"].nunique() == 1  # one fit, one share per sample
    assert cost.loc[["base", "dgflow-kl"], "tuning_passes_per_sample"].isna().all()
    settings = pd.read_csv(workdir / "results/tables/images_settings.csv")
    assert set(settings["setting"]) <= {"official", "variant"} and len(settings) >= len(fid_columns)
    assert list((workdir / "results/data/cache").glob("images-*/cifar10-train-32px-*.npz"))
