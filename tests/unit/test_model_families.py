"""The non-GAN image families (VAE, Glow, MMDGAN, OCFGAN-GP) through the ModelFamily interface: they build
from their schema defaults, their generators decode N(0, I) latents to images, training lowers their
objective where a few steps can show it, and a run interrupted at a checkpoint and resumed ends
bit-identical to an uninterrupted one."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from dgflow_bench.catalog import MODELS
from dgflow_bench.config import validate
from dgflow_bench.runtime import array_sampler, latent_sampler

SIZE = 16
# 8-bit images as the image suite feeds them (k / 127.5 - 1): Glow's dequantisation relies on that grid
PIXELS = torch.from_numpy(np.random.default_rng(0).integers(0, 256, size=(64, 3, SIZE, SIZE))).float() / 127.5 - 1
TINY = {
    "vae": ({"z_dim": 4, "ngf": 8, "ndf": 8}, {}),
    "glow": ({"image_size": SIZE, "hidden_channels": 8, "K": 2, "L": 2}, {"init_batches": 2, "iterations_per_epoch": 2}),
    "mmdgan": ({"z_dim": 4, "critic_dim": 4, "ngf": 8, "ndf": 8}, {"critic_steps_heavy": 2, "heavy_until": 1}),
    "ocfgan-gp": ({"z_dim": 4, "critic_dim": 4, "ngf": 8, "ndf": 8}, {"critic_steps": 2}),
}


def resolved(model: str) -> dict:
    """The model's block with the schema's defaults and the tiny overrides."""
    # sn-dcgan-ns: their default raw logit (logit_from) and corrector base
    config = validate({"datasets": {"cifar10": {"root": "/nonexistent"}},
                       "models": {model: {"datasets": ["cifar10"], "arch": TINY[model][0]},
                                  "sn-dcgan-ns": {"datasets": ["cifar10"]}},
                       "methods": {"base": {"kind": "base"}}})
    return config["models"][model]


def build(model: str, seed: int = 0):
    family = MODELS[model]
    spec = resolved(model)
    torch.manual_seed(seed)
    nets = family.build(spec["arch"], {"channels": 3, "image_size": SIZE})
    return family, spec, nets


def train(model: str, state, iterations: int, *, seed: int = 0, progress=False):
    family, spec, nets = build(model, seed)
    recipe = {**spec["train"], **TINY[model][1], "iterations": iterations, "batch_size": 8, "checkpoint_every": 2}
    latent = family.latent(spec["arch"])
    history = family.train(nets, recipe, real_batch=array_sampler(PIXELS),
                           latent_batch=latent_sampler(latent["prior"], latent["dim"], torch.device("cpu")),
                           rng=torch.Generator().manual_seed(1), checkpoint_path=str(state), fingerprint="fp",
                           progress=progress)
    return nets, history


def state_of(nets: dict) -> list[torch.Tensor]:
    return [t for net in nets.values() for t in net.state_dict().values()]


@pytest.mark.parametrize("model", sorted(TINY))
def test_generator_decodes_normal_latents_to_images(model):
    family, spec, nets = build(model)
    latent = family.latent(spec["arch"])
    assert latent["prior"] == "normal"
    assert "critic" not in nets  # no logit of their own: d comes from another model
    generator = nets["generator"].eval()
    if model == "glow":  # ActNorm initialises on the first data it encodes
        generator.train()
        with torch.no_grad():
            generator.encode(PIXELS[:16])
        generator.eval()
    x = generator(torch.randn(5, latent["dim"]))
    assert x.shape == (5, 3, SIZE, SIZE) and torch.isfinite(x).all()
    if model != "glow":  # tanh / mapped sigmoid outputs
        assert x.abs().max() <= 1


@pytest.mark.parametrize("model", sorted(TINY))
def test_resume_is_bit_identical(model, tmp_path):
    straight, history = train(model, tmp_path / "a.pt", 4)
    train(model, tmp_path / "b.pt", 2)
    resumed, resumed_history = train(model, tmp_path / "b.pt", 4, seed=99)  # other init: all from the checkpoint
    assert all(torch.equal(a, b) for a, b in zip(state_of(straight), state_of(resumed)))
    assert resumed_history[-1] == history[-1]


def _objective(model: str, nets: dict) -> float:
    """The family's training objective on the 8 training images, with fixed noise."""
    from dgflow_bench.training.flow_loss import bits_per_dim, dequantized
    from dgflow_bench.training.vae_loss import elbo_terms

    rng = torch.Generator().manual_seed(7)
    with torch.no_grad():
        if model == "vae":
            return float(elbo_terms(nets["encoder"], nets["generator"], PIXELS[:8], rng)["loss"])
        return float(bits_per_dim(nets["generator"], dequantized(PIXELS[:8], rng)))


@pytest.mark.parametrize("model", ["vae", "glow"])
def test_likelihood_families_lower_their_objective(model, tmp_path):
    family, spec, nets = build(model)
    recipe = {**spec["train"], **TINY[model][1], "iterations": 150, "batch_size": 8, "checkpoint_every": 150,
              "lr": 2e-3}
    latent = family.latent(spec["arch"])
    train_kw = dict(real_batch=array_sampler(PIXELS[:8]),
                    latent_batch=latent_sampler("normal", latent["dim"], torch.device("cpu")),
                    rng=torch.Generator().manual_seed(1), checkpoint_path=str(tmp_path / "s.pt"), fingerprint="fp",
                    progress=False)
    if model == "glow":  # initialise ActNorm as training's first step does, to score the untrained flow
        family.train(nets, {**recipe, "iterations": 1}, **{**train_kw, "checkpoint_path": str(tmp_path / "i.pt")})
    before = _objective(model, nets)
    family.train(nets, recipe, **train_kw)
    after = _objective(model, nets)
    assert after < before - 0.05 * abs(before), (before, after)


def test_glow_refuses_an_architecture_that_is_not_the_data():
    family = MODELS["glow"]
    spec = copy.deepcopy(resolved("glow"))
    with pytest.raises(ValueError, match="arch.image_size: 16"):
        family.build({**spec["arch"], "image_size": 32}, {"channels": 3, "image_size": SIZE})
