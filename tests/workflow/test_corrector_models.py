"""presets/images-corrector-tiny.yaml end to end: SN-ResNet-GAN, the VAE, Glow, MMDGAN and OCFGAN-GP trained
on a CIFAR10 fixture, refined along the SN-DCGAN NS discriminator alone (raw, logit_from) and along d_phi +
d_lambda (the corrector trained against each model's own samples), scored and tabulated."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
import yaml

from conftest import REPO

from dgflow_bench.models.corrected import CorrectedLogit
from dgflow_bench.models.store import load_model_file
from fixtures.images import make_cifar
from fixtures.workflow import snakemake, write_config

pytestmark = pytest.mark.workflow
BORROWERS = ("sn-resnet-gan", "glow", "mmdgan", "ocfgan-gp", "vae")


def test_corrector_tiny_preset_end_to_end(tmp_path):
    make_cifar(tmp_path / "cifar")
    config = yaml.safe_load((REPO / "presets" / "images-corrector-tiny.yaml").read_text())
    config["datasets"]["cifar10"]["root"] = str(tmp_path / "cifar")
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
    table = pd.read_csv(workdir / "results/tables/images_fid.csv")
    assert set(BORROWERS) <= set(table["model"])
    values = table[["Base", "DGflow-KL (dgflow-kl)", "DGflow-KL (dgflow-kl-ft)"]]
    assert values.notna().all().all()
