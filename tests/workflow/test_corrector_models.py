"""presets/images-corrector-tiny.yaml end to end: SN-ResNet-GAN, the VAE, Glow and MMDGAN trained
on a CIFAR10 fixture, refined along the SN-DCGAN NS discriminator alone (raw, logit_from) and along d_phi +
d_lambda (the corrector trained against each model's own samples), scored and tabulated; and OCFGAN-GP on
STL10 at 32 px judged by the 48 px discriminator through a bilinear resize, with the per-run override of its
refinement settings."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from conftest import REPO

from dgflow_bench.models.corrected import CorrectedLogit
from dgflow_bench.models.store import load_model_file
from fixtures.images import make_cifar, make_stl, stl_images
from fixtures.workflow import snakemake, write_config

pytestmark = pytest.mark.workflow
BORROWERS = ("sn-resnet-gan", "glow", "mmdgan", "vae")


def test_corrector_tiny_preset_end_to_end(tmp_path):
    make_cifar(tmp_path / "cifar")
    make_stl(tmp_path / "stl", stl_images(64))
    config = yaml.safe_load((REPO / "presets" / "images-corrector-tiny.yaml").read_text())
    config["datasets"]["cifar10"]["root"] = str(tmp_path / "cifar")
    for name in ("stl10-48", "stl10-32"):
        config["datasets"][name]["root"] = str(tmp_path / "stl")
    workdir = tmp_path / "run"
    write_config(workdir, config)
    proc = snakemake(workdir)
    assert proc.returncode == 0, proc.stderr[-4000:]

    models = workdir / "results/models/cifar10"
    d_phi = load_model_file(models / "sn-dcgan-ns/trained/model.pt")["critic"]
    for family in BORROWERS:
        model = load_model_file(models / f"{family}/trained/model.pt")
        # the non-GAN files keep the generator only: encoders and feature critics are training-only
        assert ("critic" in model) == (family == "sn-resnet-gan") and model["latent"]["prior"] == "normal"
        d = load_model_file(models / f"{family}/trained/disc-finetuned.pt")["critic"]
        assert isinstance(d, CorrectedLogit)
        assert all(torch.equal(d.base.state_dict()[k], v) for k, v in d_phi.state_dict().items())
        record = json.loads((workdir / f"results/samples/cifar10/{family}/trained/dgflow-kl.config.json").read_text())
        assert record["logit_model_file"] == "results/models/cifar10/sn-dcgan-ns/trained/model.pt"
    # sn-dcgan-ns keeps its own critic and its logistic fine-tune
    assert not isinstance(load_model_file(models / "sn-dcgan-ns/trained/disc-finetuned.pt")["critic"], CorrectedLogit)
    assert json.loads((workdir / "results/samples/cifar10/sn-dcgan-ns/trained/dgflow-kl.config.json").read_text()
                      )["logit_model_file"] is None
    resolved = (models / "vae/trained/disc-finetuned.config.json").read_text()
    assert '"kind": "corrector"' in resolved and "sn-dcgan-ns/trained/model.pt" in resolved
    # the corrector's resume checkpoint is scratch, removed once the job has finished
    assert not (models / "vae/trained/finetune-state.pt").exists()
    _check_stl32_rows(workdir)
    table = pd.read_csv(workdir / "results/tables/images_fid.csv")
    # every family of the paper's non-GAN models has its rows; sn-dcgan-ns has none on STL10 48 px
    assert set(zip(table["dataset"], table["model"])) == {("cifar10", m) for m in ("sn-dcgan-ns", *BORROWERS)} | {
        ("stl10-32", "ocfgan-gp")}
    values = table[["Base", "DGflow-KL (dgflow-kl)", "DGflow-KL (dgflow-kl-ft)"]]
    assert values.notna().all().all()


def _check_stl32_rows(workdir):
    """OCFGAN-GP on STL10 32 px: d_phi and d_lambda see its samples upsampled to 48 px, the 48 px critic being
    d_phi bit for bit; the raw row borrows that critic; the samples stay 32 px; the override set 1 step."""
    d_phi = load_model_file(workdir / "results/models/stl10-48/sn-dcgan-ns/trained/model.pt")["critic"]
    d = load_model_file(workdir / "results/models/stl10-32/ocfgan-gp/trained/disc-finetuned.pt")["critic"]
    assert isinstance(d, CorrectedLogit) and d.input_transform.size == (48, 48)
    assert all(torch.equal(d.base.state_dict()[k], v) for k, v in d_phi.state_dict().items())
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    resized = torch.nn.functional.interpolate(x, size=(48, 48), mode="bilinear", align_corners=True)
    torch.testing.assert_close(d(x), d.base(resized) + d.corrector(resized))
    samples = workdir / "results/samples/stl10-32/ocfgan-gp/trained"
    raw = json.loads((samples / "dgflow-kl.config.json").read_text())
    assert raw["logit_model_file"] == "results/models/stl10-48/sn-dcgan-ns/trained/model.pt"
    assert raw["params"]["method"]["steps"] == 1  # overrides[0], STL10 32 px only
    assert json.loads((samples / "dgflow-kl-ft.config.json").read_text())["params"]["method"]["steps"] == 2
    # overrides[1]: sn-dcgan-ns on STL10 48 px is trained (d_phi) but has no rows of its own
    assert not (workdir / "results/samples/stl10-48").exists()
    assert not (workdir / "results/models/stl10-48/sn-dcgan-ns/trained/disc-finetuned.pt").exists()
    with np.load(samples / "dgflow-kl.npz") as snapshots:
        assert list(snapshots["steps"]) == [0, 1]
        assert {snapshots[k].shape[1:] for k in snapshots.files if k.startswith("s")
                and k not in ("steps", "seed_indices")} == {(3, 32, 32)}
