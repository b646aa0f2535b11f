"""Glow (models/glow.py): exact inverse, log-determinant against autograd Jacobians, a normalised density,
spec / state_dict round trip with the ActNorm flag, and the generator interface used by refinement."""

from __future__ import annotations

import math

import pytest
import torch

from dgflow_bench.models.glow import ActNorm, Glow, ZeroConv, from_spec, squeeze, unsqueeze
from dgflow_bench.registry import ARCHITECTURES


def tiny(seed=0, dtype=torch.float64, n_init=16, **kw) -> Glow:
    """A small Glow, ActNorm-initialised on a batch, then the zero-initialised convs (coupling outputs,
    priors) given small random weights so that the tests do not pass on a trivial map."""
    torch.manual_seed(seed)
    args = dict(image_size=8, channels=3, hidden_channels=8, K=2, L=2)
    args.update(kw)
    model = Glow(**args).to(dtype)
    c, s = args["channels"], args["image_size"]
    model.train()
    model.encode(torch.rand(n_init, c, s, s, dtype=dtype) * 2 - 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, ZeroConv):
                m.conv.weight.normal_(0.0, 0.02)
                m.conv.bias.normal_(0.0, 0.1)
            if isinstance(m, ActNorm):
                m.bias.add_(0.1 * torch.randn_like(m.bias))
    return model.eval()


def test_shapes_and_latent_order():
    model = Glow(image_size=32, channels=3, hidden_channels=4, K=1, L=3)
    assert model.latent_dim == 3 * 32 * 32
    assert model.part_shapes == [(6, 16, 16), (12, 8, 8), (48, 4, 4)]
    assert sum(math.prod(s) for s in model.part_shapes) == model.latent_dim
    x = torch.randn(2, 5, 6, 4)
    assert torch.equal(unsqueeze(squeeze(x)), x)


@pytest.mark.parametrize("kw", [dict(), dict(coupling="additive", lu_decomposed=False),
                                dict(flow_permutation="shuffle", learn_top=False, channels=2)])
def test_exact_inverse_float64(kw):
    model = tiny(**kw)
    c = model.image_shape[0]
    x = torch.rand(4, c, 8, 8, dtype=torch.float64) * 2 - 1
    eps, _ = model.encode(x)
    assert eps.shape == (4, model.latent_dim)
    assert torch.allclose(model.decode(eps), x, atol=1e-10)
    e = torch.randn(4, model.latent_dim, dtype=torch.float64)
    assert torch.allclose(model.encode(model.decode(e))[0], e, atol=1e-9)


def test_exact_inverse_float32():
    model = tiny(dtype=torch.float32)
    x = torch.rand(4, 3, 8, 8) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(model.decode(model.encode(x)[0]), x, atol=1e-5)
        e = torch.randn(4, model.latent_dim)
        assert torch.allclose(model.encode(model.decode(e))[0], e, atol=1e-4)


@pytest.mark.parametrize("kw", [dict(), dict(coupling="additive", lu_decomposed=False)])
def test_logdet_matches_autograd_jacobian(kw):
    """encode's logdet is log|det d eps/dx| of the full map x in [-1, 1] -> standardised flat eps
    (rescaling, flow and standardisation); 2 channels x 4x4 = 32 dims, K=2, L=2."""
    model = tiny(channels=2, image_size=4, **kw)
    x = torch.rand(1, 2, 4, 4, dtype=torch.float64) * 2 - 1
    jac = torch.autograd.functional.jacobian(lambda v: model.encode(v.reshape(1, 2, 4, 4))[0].flatten(),
                                             x.flatten())
    assert jac.shape == (32, 32)
    expected = torch.log(torch.abs(torch.det(jac)))
    assert abs(model.encode(x)[1].item() - expected.item()) < 1e-6


def test_log_prob_is_change_of_variables_and_normalised():
    model = tiny(channels=2, image_size=4)
    x = torch.rand(1, 2, 4, 4, dtype=torch.float64) * 2 - 1
    eps = model.encode(x)[0]
    jac = torch.autograd.functional.jacobian(lambda v: model.encode(v.reshape(1, 2, 4, 4))[0].flatten(),
                                             x.flatten())
    normal = torch.distributions.Normal(0.0, 1.0).log_prob(eps).sum()
    assert abs(model.log_prob(x).item() - (normal + torch.linalg.slogdet(jac)[1]).item()) < 1e-6

    # integrates to one: importance sampling of a 4-dim model (1 channel, 2x2, one level) from a wide Gaussian
    small = tiny(channels=1, image_size=2, L=1, K=3, n_init=64)
    torch.manual_seed(1)
    q = torch.distributions.Normal(0.0, 1.0)  # wider than the model (std ~0.65 per pixel); s.e. ~0.006
    xs = q.sample((50_000, 1, 2, 2)).double()
    with torch.no_grad():
        log_w = small.log_prob(xs) - q.log_prob(xs).sum(dim=(1, 2, 3))
    assert abs(torch.exp(log_w).mean().item() - 1.0) < 0.03


def test_nll_bits_per_dim_is_dequantised_log_prob():
    model = tiny(n_bits=5)
    x8 = torch.randint(0, 256, (3, 3, 8, 8), dtype=torch.uint8)
    torch.manual_seed(7)
    bpd = model.nll_bits_per_dim(x8)
    torch.manual_seed(7)
    x = model.dequantize(x8)
    d = model.latent_dim
    assert torch.allclose(bpd, -model.log_prob(x) / (d * math.log(2)) - 1 + 5, atol=1e-10)
    # dequantised values sit inside their bin: k' / 32 <= x/2 + 0.5 < (k' + 1) / 32 with k' = k // 8
    k = torch.div(x8, 8, rounding_mode="floor").double()
    y = x / 2 + 0.5
    assert (y >= k / 32).all() and (y < (k + 1) / 32).all()
    assert torch.equal(model.quantize(2 * ((k + 0.5) / 32 - 0.5)), (k * 8).to(torch.uint8))


def test_spec_round_trip_restores_actnorm_flag(tmp_path):
    model = tiny(dtype=torch.float32, flow_permutation="shuffle")
    assert model.spec["arch"] == "glow" and model.spec["flow_permutation"] == "shuffle"
    torch.save(model.state_dict(), tmp_path / "glow.pt")
    again = from_spec(model.spec)
    assert not any(bool(m.initialized) for m in again.modules() if isinstance(m, ActNorm))
    again.load_state_dict(torch.load(tmp_path / "glow.pt"))
    norms = [m for m in again.modules() if isinstance(m, ActNorm)]
    assert norms and all(bool(m.initialized) for m in norms)
    # a reloaded model in training mode must not re-initialise on its first batch
    before = {k: v.clone() for k, v in again.state_dict().items()}
    again.train()
    x = torch.rand(5, 3, 8, 8) * 2 - 1
    with torch.no_grad():
        again.encode(x * 3 + 0.5)  # a batch with other statistics than the init batch
    assert all(torch.equal(before[k], v) for k, v in again.state_dict().items())
    again.eval()
    e = torch.randn(3, model.latent_dim)
    with torch.no_grad():
        assert torch.equal(again(e), model(e))
        assert torch.equal(again.encode(x)[0], model.encode(x)[0])
    built = ARCHITECTURES["glow"](model.spec, None)
    assert isinstance(built, Glow) and built.spec == model.spec


def test_uninitialised_actnorm_raises_in_eval_mode():
    model = Glow(image_size=4, channels=2, hidden_channels=4, K=1, L=1).eval()
    with pytest.raises(RuntimeError, match="not initialised"):
        model.encode(torch.zeros(2, 2, 4, 4))


def test_decode_is_differentiable_and_batch_independent():
    model = tiny(dtype=torch.float32)
    eps = torch.randn(6, model.latent_dim, requires_grad=True)
    out = model(eps)
    assert out.shape == (6, 3, 8, 8)
    out.square().sum().backward()
    assert eps.grad is not None and torch.isfinite(eps.grad).all() and eps.grad.abs().sum() > 0
    with torch.no_grad():
        alone = model(eps[2:3])
        assert torch.allclose(alone, out[2:3], atol=1e-6)
        assert torch.allclose(model.decode(eps[:3], temperature=0.0), model.decode(torch.zeros(3, model.latent_dim)))


# ---- the generator's latent: flat (ours, default) or top (y0ast's), models/glow_latent.py ----

def test_flat_default_is_todays_generator():
    """The default generator is the flat latent at T = 1: forward is decode(eps) (what forward was before the
    latent option), and a spec written before the option existed rebuilds the same model."""
    model = tiny(dtype=torch.float32)
    assert (model.latent, model.temperature, model.input_dim) == ("flat", 1.0, model.latent_dim)
    e = torch.randn(5, model.latent_dim)
    with torch.no_grad():
        assert torch.equal(model(e), model.decode(e))
        with model.particles(5, seed=3):  # no split noise to hold: a no-op
            assert torch.equal(model(e), model.decode(e))
    old_spec = {k: v for k, v in model.spec.items() if k not in ("latent", "temperature", "split_noise")}
    again = from_spec(old_spec)
    again.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(again.eval()(e), model(e))


def test_top_latent_sizes():
    from dgflow_bench.models.glow_latent import latent_size

    model = Glow(image_size=32, channels=3, hidden_channels=4, K=1, L=3, latent="top")
    assert (model.input_dim, model.split_dim) == (48 * 4 * 4, 1536 + 768) == (768, 2304)
    assert latent_size(3, 32, 3, "top") == 768 and latent_size(3, 32, 3, "flat") == 3072
    assert latent_size(3, 32, 1, "top") == 3072  # one level: no split, the top is everything
    with pytest.raises(ValueError, match="latent must be one of flat, top, got 'middle'"):
        Glow(image_size=8, hidden_channels=4, K=1, L=2, latent="middle")
    with pytest.raises(ValueError, match="temperature must be finite and >= 0"):
        Glow(image_size=8, hidden_channels=4, K=1, L=2, temperature=-0.5)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_top_decode_is_flat_decode_with_held_split_noise(temperature):
    """Inside a hold, G(z) = decode([xi | z], T) with xi the seeded draw of that particle, every call the same;
    encode inverts it at T: the flat eps it returns is T * [xi | z] (exactly [xi | z] at T = 1)."""
    model = tiny(latent="top", temperature=temperature)
    n, top = 4, model.input_dim
    assert top == 24 * 2 * 2 and model.split_dim == 6 * 4 * 4
    z = torch.randn(n, top, dtype=torch.float64)
    xi = torch.randn(n, model.split_dim, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    with model.particles(n, seed=11):
        x = model(z)
        assert x.shape == (n, 3, 8, 8)
        assert torch.equal(model(z), x)  # the same particles, the same noise
        assert torch.equal(x, model.decode(torch.cat([xi, z], 1), temperature))
        eps, _ = model.encode(x)
        assert torch.allclose(eps, temperature * torch.cat([xi, z], 1), atol=1e-9)
        assert not torch.equal(model(z[:3]), x[:3])  # other row counts are other samples: fresh noise
    with model.particles(n, seed=12):
        assert not torch.allclose(model(z), x)  # another seed, another draw


def test_top_latent_draws_fresh_split_noise_outside_a_hold():
    model = tiny(latent="top")
    z = torch.randn(3, model.input_dim, dtype=torch.float64)
    first, second = model(z), model(z)
    assert not torch.allclose(first, second)
    # same top latent, other split noise: only the split part of the latent differs
    e1, e2 = model.encode(first)[0], model.encode(second)[0]
    assert torch.allclose(e1[:, model.split_dim:], z, atol=1e-9) and torch.allclose(e2[:, model.split_dim:], z, atol=1e-9)
    assert not torch.allclose(e1[:, :model.split_dim], e2[:, :model.split_dim])
    fresh = tiny(latent="top", split_noise="fresh")
    with fresh.particles(3, seed=0):  # y0ast's sampling: a new draw on every decode, even in a hold
        assert not torch.allclose(fresh(z), fresh(z))
    with pytest.raises(ValueError, match=r"takes latents of shape \(N, 96\)"):
        model(torch.randn(2, model.latent_dim, dtype=torch.float64))


def test_refine_stage_holds_one_split_draw_per_particle_through_a_refinement():
    """DGflow on a top-latent Glow through the refine stage's hold: every snapshot is the decode of its
    particle's latent with the particle's one seeded split draw, so the flow refined a fixed G."""
    from types import SimpleNamespace

    from dgflow_bench.config import derive_seed
    from dgflow_bench.refine.methods.dgflow import DGflowParams
    from dgflow_bench.refine.driver import RefinementRun

    model = tiny(latent="top", dtype=torch.float32)
    critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 1))
    z0 = torch.randn(6, model.input_dim)
    method = DGflowParams(eta=0.05, gamma=0.0, steps=4, snapshot_every=2)
    with RefinementRun._particles(SimpleNamespace(generator=model), 6, seed=5, batch_index=2):
        result = method.run(z0, model, critic, torch.Generator().manual_seed(0), prior="normal")
    xi = torch.randn(6, model.split_dim, generator=torch.Generator().manual_seed(derive_seed(5, "particles", "2")))
    assert not torch.equal(result.final_latents, z0)  # it moved
    with torch.no_grad():
        assert torch.equal(result.snapshots[0], model.decode(torch.cat([xi, z0], 1)))
        assert torch.allclose(result.snapshots[4], model.decode(torch.cat([xi, result.final_latents], 1)), atol=1e-6)


def test_training_uses_y0asts_adamax_by_default(tmp_path):
    """The schema's recipe is y0ast train.py:145's Adamax(lr, weight_decay=5e-5); its state (exp_inf) is in
    the training checkpoint, so a resume continues it."""
    from dgflow_bench.catalog import MODELS
    from dgflow_bench.config import validate
    from dgflow_bench.runtime import array_sampler
    from dgflow_bench.training.flow_family import make_optimizer

    config = validate({"datasets": {"cifar10": {"root": "/nonexistent"}},
                       "models": {"glow": {"datasets": ["cifar10"], "arch": {"image_size": 8, "hidden_channels": 4,
                                                                              "K": 1, "L": 2, "latent": "top"}},
                                  "sn-dcgan-ns": {"datasets": ["cifar10"]}},
                       "methods": {"base": {"kind": "base"}}})
    spec = config["models"]["glow"]
    recipe = spec["train"]
    assert (recipe["optimizer"], recipe["lr"], recipe["weight_decay"]) == ("adamax", 5e-4, 5e-5)
    assert spec["arch"]["temperature"] == 1.0 and spec["arch"]["split_noise"] == "particle"
    family = MODELS["glow"]
    assert family.latent(spec["arch"]) == {"prior": "normal", "dim": 24 * 2 * 2}
    opt = make_optimizer([torch.nn.Parameter(torch.zeros(2))], recipe)
    assert isinstance(opt, torch.optim.Adamax) and opt.defaults["weight_decay"] == 5e-5
    assert isinstance(make_optimizer([torch.nn.Parameter(torch.zeros(2))], {**recipe, "optimizer": "adam"}),
                      torch.optim.Adam)

    torch.manual_seed(0)
    nets = family.build(spec["arch"], {"channels": 3, "image_size": 8})
    pixels = torch.randint(0, 256, (16, 3, 8, 8)).float() / 127.5 - 1
    family.train(nets, {**recipe, "iterations": 2, "batch_size": 4, "init_batches": 2, "checkpoint_every": 2},
                 real_batch=array_sampler(pixels), latent_batch=None, rng=torch.Generator().manual_seed(1),
                 checkpoint_path=str(tmp_path / "state.pt"), fingerprint="fp", progress=False)
    state = torch.load(tmp_path / "state.pt", weights_only=False)
    text = repr(state)
    assert "exp_inf" in text and "exp_avg_sq" not in text
