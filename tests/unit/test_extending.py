"""Extending the benchmark touches one module: a refinement method and a model family defined and registered
here, in this test module only, validate in a config and run through the real stages (data -> train ->
refine -> evaluate). The planner stays free of torch, so the Snakefile reads the registries cheaply."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from dgflow_bench import config as dg
from dgflow_bench.catalog import METHODS, MODELS
from dgflow_bench.io import read_json
from dgflow_bench.models.store import load_model_file
from dgflow_bench.refine.method_params import MethodParams, knob, method
from dgflow_bench.registry import ARCHITECTURES
from dgflow_bench.snapshots import open_snapshots
from dgflow_bench.stages import data as data_stage
from dgflow_bench.stages import evaluate as evaluate_stage
from dgflow_bench.stages import refine as refine_stage
from dgflow_bench.stages import train as train_stage
from dgflow_bench.training.family import ModelFamily


# ---- a toy refinement method: every latent moves by `shift` in one step ----
@dataclass(frozen=True)
class ShiftParams(MethodParams):
    shift: float = knob(0.5, "added to every latent coordinate", type="number")
    steps: int = knob(1, type="integer", minimum=0, maximum=1)
    snapshot_every: int = knob(1, type="integer", minimum=1)

    def run(self, z0, generator, logit_fn, rng, *, prior, progress=False):
        from dgflow_bench.refine.common import RefinementResult, to_data

        snapshots = {0: to_data(z0, generator)}
        if self.steps:
            snapshots[1] = to_data(z0 + self.shift, generator)
        return RefinementResult(snapshots=snapshots, info={"shift": self.shift}, final_latents=z0 + self.shift)


# ---- a toy model family: a linear generator fitted by matching the data mean (no critic) ----
class LinearGenerator(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.spec = {"arch": "toy_linear", "dim": dim}
        self.linear = nn.Linear(dim, dim)

    def forward(self, z):
        return self.linear(z)


@dataclass(frozen=True)
class MeanMatchingFamily(ModelFamily):
    def build(self, arch, data_info):
        return {"generator": LinearGenerator(data_info["dim"])}

    def train(self, nets, recipe, *, real_batch, latent_batch, rng, **unused):
        generator = nets["generator"]
        optimizer = torch.optim.SGD(generator.parameters(), lr=recipe["lr"])
        history = []
        for step in range(recipe["steps"]):
            gap = generator(latent_batch(256, rng)).mean(0) - real_batch(256, rng).mean(0)
            loss = gap.pow(2).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            history.append({"step": step, "loss": float(loss.detach())})
        return history


TOY_MODEL_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["datasets"],
    "properties": {
        "datasets": {"type": "array", "items": {"type": "string"}},
        "sources": {"type": "array", "items": {"enum": ["trained"]}, "default": ["trained"]},
        "arch": {"type": "object", "default": {}},
        "train": {"type": "object", "default": {"steps": 200, "lr": 0.1}},
    },
}


@pytest.fixture
def registered():
    method("toy-shift")(ShiftParams)
    MODELS.register("toy-linear", MeanMatchingFamily("toy2d", TOY_MODEL_SCHEMA, "normal", 2))
    ARCHITECTURES.register("toy_linear", lambda spec, rebuild: LinearGenerator(spec["dim"]))
    yield
    METHODS.unregister("toy-shift")
    MODELS.unregister("toy-linear")
    ARCHITECTURES.unregister("toy_linear")


def toy_config() -> dict:
    return dg.validate({
        "datasets": {"25gaussians": {"n_train": 2000, "n_heldout": 500}},
        "models": {"toy-linear": {"datasets": ["25gaussians"]}},
        "methods": {"base": {"kind": "base"}, "shifted": {"kind": "toy-shift", "shift": 0.25}},
        "refine": {"n_samples": 64, "batch_size": 64},
    })


def test_a_method_and_a_family_registered_here_run_through_the_stages(registered, tmp_path):
    config = toy_config()
    assert config["methods"]["shifted"] == {"kind": "toy-shift", "shift": 0.25, "steps": 1, "snapshot_every": 1}
    assert config["models"]["toy-linear"]["train"] == {"steps": 200, "lr": 0.1}  # the family's schema defaults

    data, model = str(tmp_path / "data.npz"), str(tmp_path / "model.pt")
    data_stage.run("25gaussians", dg.data_params(config, "25gaussians"), data)
    train_stage.run("25gaussians", "toy-linear", data, dg.train_params(config, "25gaussians", "toy-linear"), model,
                    str(tmp_path / "state.pt"), "cpu", progress=False)
    loaded = load_model_file(model)  # rebuilt through the architecture registered above
    assert isinstance(loaded["generator"], LinearGenerator) and "critic" not in loaded
    history = read_json(tmp_path / "model.config.json")
    assert history["stage"] == "train"
    with np.load(data) as arrays:
        real_mean = arrays["train"].mean(0)
    with torch.no_grad():
        fitted_mean = loaded["generator"](torch.randn(4000, 2, generator=torch.Generator().manual_seed(0))).mean(0)
    assert np.abs(fitted_mean.numpy() - real_mean).max() < 0.3  # its own loop did its job

    samples = {}
    for name in ("base", "shifted"):
        samples[name] = str(tmp_path / f"{name}.npz")
        refine_stage.run("25gaussians", model, None, dg.refine_params(config, name, "25gaussians", "toy-linear"), samples[name],
                         "cpu", progress=False)
        evaluate_stage.run(samples[name], data, dg.evaluate_params(config, "25gaussians", "toy-linear", "trained",
                                                                   name), str(tmp_path / f"{name}.json"), False)
    with open_snapshots(samples["shifted"]) as shifted, open_snapshots(samples["base"]) as base:
        assert shifted.steps == [0, 1] and base.steps == [0]
        np.testing.assert_array_equal(shifted.read(0), base.read(0))  # the same shared latents
        with torch.no_grad():
            expected = loaded["generator"](torch.from_numpy(shifted.latents) + 0.25).numpy()
        np.testing.assert_allclose(shifted.read(1), expected, rtol=0, atol=1e-6)
    metrics = read_json(tmp_path / "shifted.json")
    assert metrics["method"] == "shifted" and [r["step"] for r in metrics["per_step"]] == [0, 1]

    # a method that follows the model's own logit says what to do when the family has none
    flow = {"name": "flow", "method": {**METHODS["dgflow"]().as_dict(), "discriminator": "raw"}, "refine": config["refine"]}
    with pytest.raises(ValueError, match="holds none .*discriminator: finetuned"):
        refine_stage.run("25gaussians", model, None, flow, str(tmp_path / "flow.npz"), "cpu", progress=False)


def test_a_registered_method_is_validated_like_the_built_in_ones(registered):
    base = {"datasets": {"25gaussians": {}}, "models": {"wgan-gp": {"datasets": ["25gaussians"]}}}
    with pytest.raises(dg.ConfigError, match="methods.m.shift"):
        dg.validate({**base, "methods": {"m": {"kind": "toy-shift", "shift": "far"}}})
    with pytest.raises(dg.ConfigError, match="methods.m"):
        dg.validate({**base, "methods": {"m": {"kind": "toy-shift", "speed": 1}}})


def test_an_extension_that_is_not_importable_is_refused_with_the_fix():
    """The config's `extensions` are imported before validation (tests/workflow/test_extension.py runs one
    through Snakemake)."""
    base = {"datasets": {"25gaussians": {}}, "models": {"wgan-gp": {"datasets": ["25gaussians"]}},
            "methods": {"base": {"kind": "base"}}}
    with pytest.raises(dg.ConfigError, match=r"module 'no_such_package.shift' is not importable.*PYTHONPATH"):
        dg.validate({**base, "extensions": ["no_such_package.shift"]})
    with pytest.raises(dg.ConfigError, match="extensions"):
        dg.validate({**base, "extensions": "no_such_package"})
    assert dg.validate(base)["extensions"] == []


def test_unregistered_names_are_refused_with_the_registered_ones():
    with pytest.raises(ValueError, match="unknown refinement method kind 'toy-shift'; registered: base, ddls, dgflow"):
        METHODS["toy-shift"]
    with pytest.raises(ValueError, match="registered twice"):
        METHODS.register("dgflow", ShiftParams)


@pytest.mark.parametrize("modules", [
    "dgflow_bench.config, dgflow_bench.preflight, dgflow_bench.provenance, dgflow_bench.layout",
    "dgflow_bench.cli, dgflow_bench.stages.data, dgflow_bench.stages.evaluate, dgflow_bench.stages.report",
    "dgflow_bench.metrics.toy2d_suite, dgflow_bench.metrics.text_suite, dgflow_bench.report.toy2d",
])
def test_planning_and_the_stages_without_networks_import_no_torch(modules):
    """The Snakefile imports the planner on every plan (and every cluster job), and the CLI starts once per
    job; torch alone takes seconds to import. (The image metrics import it when they run.)"""
    code = f"import sys, {modules}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
