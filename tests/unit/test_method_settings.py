"""The per-method settings that let a row reproduce its own release: DOT's radial rule and once-per-run K
(DOT.py / execute_dot.py), a method's generator BatchNorm mode and latent prior, and a raw logit borrowed
from another model (clear-nus/DGflow configs/cifar10-snresnet.yml)."""

from __future__ import annotations

import math

import pytest
import torch

from dgflow_bench.catalog import MODELS
from dgflow_bench.config import ConfigError, refine_params, validate
from dgflow_bench.io import config_path_for, read_json
from dgflow_bench.models.store import save_model_file
from dgflow_bench.refine.methods.dot import DOT_RELEASE_RADIAL_SCALE, dot_release_radial, tangent_projection
from dgflow_bench.refine.methods.dot import DOTParams
from dgflow_bench.snapshots import open_snapshots
from dgflow_bench.stages import refine

ARCH = {"generator": {"hidden": 16, "depth": 2}, "critic": {"hidden": 16, "depth": 2}}


def mlp_model(path, seed: int, prior: str = "normal"):
    torch.manual_seed(seed)
    generator, critic = MODELS["wgan-gp"].build(ARCH, {}).values()
    save_model_file(path, generator=generator, critic=critic, latent={"prior": prior, "dim": 2})
    return str(path)


def run_method(tmp_path, model, method: dict, name="m", n=8, batch=4, **kwargs):
    config = validate({"datasets": {"25gaussians": {}}, "models": {"wgan-gp": {"datasets": ["25gaussians"]}},
                       "methods": {name: method}, "refine": {"n_samples": n, "batch_size": batch, "seed": 3}})
    out = tmp_path / f"{name}.npz"
    refine.run("25gaussians", model, None, refine_params(config, name, "25gaussians", "wgan-gp"), str(out), "cpu",
               False, **kwargs)
    return out, read_json(config_path_for(out))


def test_dot_release_radial_rule_scales_the_radial_part_and_keeps_the_tangent_part():
    z = torch.randn(5, 128, generator=torch.Generator().manual_seed(0))
    g = torch.randn(5, 128, generator=torch.Generator().manual_seed(1))
    out = dot_release_radial(g, z)
    tangent = tangent_projection(g, z)
    radial_in, radial_out = g - tangent, out - tangent
    torch.testing.assert_close(tangent_projection(out, z), tangent)  # the tangent part is untouched
    scale = 1 - (z * z).sum(1, keepdim=True) / DOT_RELEASE_RADIAL_SCALE  # |z|^2 ~ 128: about -10
    torch.testing.assert_close(radial_out, scale * radial_in, rtol=1e-4, atol=1e-5)
    assert DOT_RELEASE_RADIAL_SCALE == pytest.approx(math.sqrt(128), abs=0.01)


def test_k_eff_once_per_run_is_the_first_batchs_estimate(tmp_path):
    model = mlp_model(tmp_path / "model.pt", 0)
    dot = {"kind": "dot", "space": "latent", "steps": 2, "snapshot_every": 1, "k_eff_pairs": 20, "k_eff_repeats": 1}
    _, per_batch = run_method(tmp_path, model, {**dot, "k_eff_scope": "batch"}, "per-batch")
    _, per_run = run_method(tmp_path, model, {**dot, "k_eff_scope": "run"}, "per-run")
    assert per_run["info"]["k_eff"][0] == per_batch["info"]["k_eff"][0]  # the same first estimate
    assert per_run["info"]["k_eff"][1] == per_run["info"]["k_eff"][0]  # ... kept for the second batch
    assert per_run["info"]["k_eff_estimated"] == [True, False]
    assert per_batch["info"]["k_eff"][1] != per_batch["info"]["k_eff"][0]
    assert DOTParams(k_eff=2.0, k_eff_scope="run").after_first_batch({"k_eff": 5.0}).k_eff == 2.0  # fixed K stays


def test_a_method_draws_its_own_prior_and_sets_its_own_batchnorm_mode(tmp_path):
    model = mlp_model(tmp_path / "model.pt", 0)
    dot = {"kind": "dot", "space": "latent", "steps": 1, "snapshot_every": 1, "k_eff": 1.0}
    own, own_record = run_method(tmp_path, model, dot, "own")
    uniform, record = run_method(tmp_path, model, {**dot, "latent_prior": "uniform", "generator_bn": "batch"}, "unif")
    with open_snapshots(own) as a, open_snapshots(uniform) as b:
        assert b.latents.min() >= -1 and b.latents.max() <= 1 and a.latents.min() < -1  # normal draws leave the box
    assert record["networks"]["generator_bn"] == "batch" and own_record["networks"]["generator_bn"] == "eval"
    assert record["latents_sha256"] != own_record["latents_sha256"]


def test_a_borrowed_raw_logit_is_the_other_models_critic(tmp_path):
    from dgflow_bench.models.store import load_model_file

    model, other = mlp_model(tmp_path / "model.pt", 0), mlp_model(tmp_path / "other.pt", 1)
    # the same generator with the other model's critic, stored as one file: what the borrowed run must equal
    mine, theirs = load_model_file(model), load_model_file(other)
    composite = tmp_path / "composite.pt"
    save_model_file(composite, generator=mine["generator"], critic=theirs["critic"], latent=mine["latent"])
    flow = {"kind": "dgflow", "space": "data", "eta": 0.05, "gamma": 0.0, "steps": 2, "snapshot_every": 2}
    own, _ = run_method(tmp_path, model, flow, "own")
    borrowed, record = run_method(tmp_path, model, flow, "borrowed", logit_model_file=other)
    expected, _ = run_method(tmp_path, str(composite), flow, "expected")
    with open_snapshots(own) as a, open_snapshots(borrowed) as b, open_snapshots(expected) as c:
        assert (a.read(0) == b.read(0)).all()  # same generator, same latents
        assert not (a.read(2) == b.read(2)).all()  # another logit moved them differently ...
        assert (b.read(2) == c.read(2)).all()  # ... exactly as the other model's critic does
    assert record["logit_model_file"] == other


def test_a_borrowed_logit_must_come_from_a_model_that_runs_on_the_same_data():
    config = {"datasets": {"cifar10": {"root": "x", "url": "y"}},
              "models": {"sn-resnet-gan": {"datasets": ["cifar10"], "logit_from": {"model": "sn-dcgan-ns"}}},
              "methods": {"m": {"kind": "dgflow"}}}
    with pytest.raises(ConfigError, match="models.sn-resnet-gan.logit_from: .*critic of sn-dcgan-ns trained on cifar10.*is not configured"):
        validate(config)
    config["models"]["sn-dcgan-ns"] = {"datasets": ["cifar10"]}
    assert validate(config)["models"]["sn-resnet-gan"]["logit_from"] == {"model": "sn-dcgan-ns", "source": "trained"}
