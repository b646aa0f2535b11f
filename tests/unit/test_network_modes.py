"""Generator BatchNorm mode and the spectral-norm modes, the refinement options recorded with results.

The release modes are checked step by step against a direct numpy re-statement of each release's power
iteration (torch 1.6's SpectralNorm.compute_weight for clear-nus/DGflow; AkinoriTanaka-phys/DOT's
snd/max_sv.py), on a tiny float64 network whose top two singular values are 1 and 0.9999, so that neither
5,000 nor 100 iterations converge and one iteration more, or the other order, shows."""

from __future__ import annotations

import pytest
import torch

from dgflow_bench.models.dcgan import DCGANGenerator, SNDCGANDiscriminator
import numpy as np
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from dgflow_bench.config import load_schema
from dgflow_bench.models.corrected import CorrectedLogit
from dgflow_bench.refine.network_modes import (SN_RELEASES, prepare_spectral_norm, set_generator_bn_mode,
                                               sn_layers_by_network, thermalise_spectral_norm)
from dgflow_bench.refine.method_params import SN_MODES
from dgflow_bench.refine.methods.dgflow import DGflowParams
from dgflow_bench.refine.methods.dot import DOTParams


def _generator() -> DCGANGenerator:
    torch.manual_seed(0)
    g = DCGANGenerator(z_dim=8, bottom_width=4, ch=16)
    g.train()
    with torch.no_grad():  # non-trivial running statistics, so 'eval' and 'batch' really differ
        for _ in range(3):
            g(torch.randn(32, 8) * 2 + 1)
    return g


def test_eval_mode_makes_samples_independent_of_their_batch():
    g = _generator()
    assert set_generator_bn_mode(g, "eval") == 4
    z = torch.randn(6, 8)
    with torch.no_grad():
        alone, together = g(z[:3]), g(z)[:3]
    torch.testing.assert_close(alone, together)


def test_batch_mode_uses_batch_statistics_and_never_changes_the_generator():
    g = _generator()
    before = {k: v.clone() for k, v in g.state_dict().items()}
    set_generator_bn_mode(g, "batch")
    z = torch.randn(6, 8)
    with torch.no_grad():
        alone, together = g(z[:3]), g(z)[:3]
    assert not torch.allclose(alone, together)  # samples interact through the batch mean and variance
    for key, value in g.state_dict().items():
        torch.testing.assert_close(value, before[key], msg=key)  # running statistics untouched
    with pytest.raises(ValueError, match="generator_bn"):
        set_generator_bn_mode(g, "train")


def test_thermalisation_converges_sigma_to_the_largest_singular_value():
    torch.manual_seed(1)
    d = SNDCGANDiscriminator(bottom_width=4, ch=16, spectral_norm=True).eval()
    layers = [m for m in d.modules() if hasattr(m, "parametrizations")]
    for layer in layers:  # stale power-iteration vectors, as after a copy at an arbitrary step
        sn = layer.parametrizations["weight"][0]
        sn._u.copy_(torch.nn.functional.normalize(torch.randn_like(sn._u), dim=0))
        sn._v.copy_(torch.nn.functional.normalize(torch.randn_like(sn._v), dim=0))

    @torch.no_grad()
    def worst_sigma_error() -> float:
        errors = []
        for layer in layers:
            sn = layer.parametrizations["weight"][0]
            matrix = sn._reshape_weight_to_matrix(layer.parametrizations["weight"].original)
            estimate = torch.dot(sn._u, torch.mv(matrix, sn._v))
            errors.append(float(abs(estimate / torch.linalg.matrix_norm(matrix, ord=2) - 1)))
        return max(errors)

    stale = worst_sigma_error()
    info = thermalise_spectral_norm(d, 0)
    assert info["sn_layers"] == len(layers) == 8 and worst_sigma_error() == stale  # 0 iterations: untouched
    info = thermalise_spectral_norm(d, 200)
    assert stale > 0.05 and worst_sigma_error() < 1e-3 and info["sn_sigma_max_rel_change"] > 0.05
    assert not d.training


# ---- spectral-norm modes -------------------------------------------------------------------------------------

def _with_singular_values(shape, values, rng) -> torch.Tensor:
    """A weight of ``shape`` whose (out, -1) matrix has the given singular values."""
    rows, cols = shape[0], int(np.prod(shape[1:]))
    left = np.linalg.qr(rng.standard_normal((rows, rows)))[0]
    right = np.linalg.qr(rng.standard_normal((cols, cols)))[0]
    matrix = left[:, :len(values)] @ np.diag(values) @ right[:, :len(values)].T
    return torch.from_numpy(matrix.reshape(shape))


class TinySN(nn.Module):
    """A conv (1 -> 4 channels, 2x2) and a linear layer (16 -> 2), both under torch's spectral-norm
    parametrization, output summed to (N,). Each forward records the (u, v) of both layers it ran with and
    whether it was a gradient pass."""

    def __init__(self, seed: int):
        super().__init__()
        rng = np.random.default_rng(seed)
        torch.manual_seed(seed)  # the biases
        conv, linear = nn.Conv2d(1, 4, 2).double(), nn.Linear(16, 2).double()
        with torch.no_grad():
            conv.weight.copy_(_with_singular_values((4, 1, 2, 2), [1.0, 0.9999, 0.6, 0.3], rng))
            linear.weight.copy_(_with_singular_values((2, 16), [1.0, 0.9999], rng))
        self.conv, self.linear = spectral_norm(conv), spectral_norm(linear)
        with torch.no_grad():  # stale vectors, far from the singular vectors
            for layer in (self.conv, self.linear):
                sn = layer.parametrizations["weight"][0]
                for buffer in (sn._u, sn._v):
                    buffer.copy_(torch.from_numpy(rng.standard_normal(buffer.shape)))
                    buffer.div_(buffer.norm())
        self.seen: list[tuple[bool, list]] = []

    def state(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(layer.parametrizations["weight"][0]._u.numpy().copy(),
                 layer.parametrizations["weight"][0]._v.numpy().copy()) for layer in (self.conv, self.linear)]

    def matrices(self) -> list[np.ndarray]:
        # never layer.weight here: in training mode that access runs a power iteration itself
        originals = [layer.parametrizations["weight"].original.detach().numpy() for layer in (self.conv, self.linear)]
        return [w.reshape(w.shape[0], -1) for w in originals]

    def forward(self, x):
        self.seen.append((torch.is_grad_enabled() and x.requires_grad, self.state()))
        return self.linear(nn.functional.leaky_relu(self.conv(x), 0.2).flatten(1)).sum(1)


class TinyGenerator(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(5)
        self.layer = nn.Linear(2, 9).double()

    def forward(self, z):
        return torch.tanh(self.layer(z)).reshape(-1, 1, 3, 3)


# numpy re-statements of one power iteration (W: (out, in), u: (out,), v: (in,))
def torch16_iteration(W, u, v, eps=1e-12):
    """torch 1.6 SpectralNorm.compute_weight: v = normalize(W^T u), then u = normalize(W v); normalize
    divides by max(norm, eps)."""
    v = W.T @ u
    v = v / max(np.linalg.norm(v), eps)
    u = W @ v
    return u / max(np.linalg.norm(u), eps), v


def chainer_iteration(W, u, v):
    """DOT snd/max_sv.py max_singular_value with row vectors: _v = l2n(u W), _u = l2n(_v W^T), where
    _l2normalize divides by sqrt(sum x^2) + 1e-12."""
    u_row = u[None, :]
    v_row = u_row @ W
    v_row = v_row / ((v_row ** 2).sum() ** 0.5 + 1e-12)
    u_row = v_row @ W.T
    u_row = u_row / ((u_row ** 2).sum() ** 0.5 + 1e-12)
    return u_row[0], v_row[0]


def parametrization_iteration(W, u, v, eps=1e-12):
    """torch >= 1.x parametrizations.spectral_norm _power_method (the 'frozen' thermalisation): u first."""
    u = W @ v
    u = u / max(np.linalg.norm(u), eps)
    v = W.T @ u
    return u, v / max(np.linalg.norm(v), eps)


def iterate(rule, matrices, state, times):
    out = []
    for W, (u, v) in zip(matrices, state):
        for _ in range(times):
            u, v = rule(W, u, v)
        out.append((u, v))
    return out


def _pair():
    """d_phi + d_lambda, the project's corrected network, each a TinySN with its own weights and stale vectors."""
    return CorrectedLogit(TinySN(1), TinySN(2))


def _refine(method: str, logit, steps: int, **extra):
    from dgflow_bench.refine.methods.dgflow import run_dgflow
    from dgflow_bench.refine.methods.dot import run_dot

    z0 = torch.randn(6, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    rng = torch.Generator().manual_seed(1)
    if method == "dgflow":
        params = DGflowParams(eta=0.05, gamma=0.01, steps=steps, snapshot_every=1, **extra)
        return run_dgflow(z0, TinyGenerator(), logit, params, rng, prior="normal")
    params = DOTParams(lr=0.05, steps=steps, snapshot_every=1, k_eff="auto", k_eff_pairs=10, k_eff_repeats=1,
                       **extra)
    return run_dot(z0, TinyGenerator(), logit, params, rng, prior="normal")


def _expected_calls(mode: str, method: str, steps: int, naive: bool) -> list[tuple[bool, int]]:
    """(gradient pass?, power iterations done since thermalisation) at each call of d during the run."""
    per_step = 0 if mode == "frozen" else (1 if naive or method == "dgflow" else 2)
    grads = [(True, k * per_step + (1 if per_step else 0)) for k in range(steps)]
    if method == "dgflow":
        return grads
    return [(False, 0)] + grads + [(False, steps * per_step)]  # DOT's K estimate and closing objective


CASES = [("frozen", "dgflow", False), ("frozen", "dot", False), ("dgflow-release", "dgflow", False),
         ("dot-release", "dot", False), ("dot-release", "dot", True)]


@pytest.mark.parametrize("mode, method, naive", CASES, ids=lambda c: str(c))
def test_u_vectors_follow_each_release_step_by_step(mode, method, naive):
    steps, frozen_iterations = 3, 7
    logit = _pair()
    nets = {"discriminator": logit.base, "corrector": logit.corrector}
    start = {name: net.state() for name, net in nets.items()}
    matrices = {name: net.matrices() for name, net in nets.items()}
    rule = {"frozen": parametrization_iteration, "dgflow-release": torch16_iteration,
            "dot-release": chainer_iteration}[mode]
    if mode == "frozen":
        thermalised, passes = ("discriminator", "corrector"), frozen_iterations
    else:
        thermalised, passes = SN_RELEASES[mode].thermalised, SN_RELEASES[mode].passes
    assert (mode, passes, thermalised) in {("frozen", 7, ("discriminator", "corrector")),
                                           ("dgflow-release", 5000, ("discriminator",)),
                                           ("dot-release", 100, ("discriminator", "corrector"))}

    refined, info = prepare_spectral_norm(logit, mode, frozen_iterations, naive=naive)
    assert info["spectral_norm"] == mode and info["sn_layers"] == 4 and info["sn_power_iterations"] == passes
    extra = {"naive": True} if naive else {}
    _refine(method, refined, steps, **extra)

    calls = _expected_calls(mode, method, steps, naive)
    for name, net in nets.items():
        after = iterate(rule, matrices[name], start[name], passes if name in thermalised else 0)
        assert [grad for grad, _ in net.seen] == [grad for grad, _ in calls], name
        step_rule = parametrization_iteration if mode == "frozen" else rule
        for (grad, done), (_, seen) in zip(calls, net.seen):
            want = iterate(step_rule, matrices[name], after, done)
            for (u, v), (u_seen, v_seen) in zip(want, seen):
                np.testing.assert_allclose(u_seen, u, rtol=0, atol=1e-11, err_msg=f"{name}: u at {done}")
                np.testing.assert_allclose(v_seen, v, rtol=0, atol=1e-11, err_msg=f"{name}: v at {done}")
        if mode != "frozen":  # the check can fail: one iteration more, or the other order, is far off
            _, last = net.seen[-1 if method == "dgflow" else -2]
            done = calls[-1 if method == "dgflow" else -2][1]
            other = parametrization_iteration if rule is not parametrization_iteration else torch16_iteration
            for wrong in (iterate(rule, matrices[name], after, done + 1),
                          iterate(other, matrices[name], iterate(other, matrices[name], start[name],
                                  passes if name in thermalised else 0), done)):
                assert max(abs(w[0] - s[0]).max() for w, s in zip(wrong, last)) > 1e-6, name


def test_frozen_is_todays_thermalisation_and_leaves_d_unwrapped():
    ours, theirs = _pair(), _pair()
    refined, info = prepare_spectral_norm(ours, "frozen", 5)
    assert refined is ours and not ours.training
    assert info == {"spectral_norm": "frozen", **thermalise_spectral_norm(theirs, 5)}
    for net_ours, net_theirs in ((ours.base, theirs.base), (ours.corrector, theirs.corrector)):
        for (u, v), (u2, v2) in zip(net_ours.state(), net_theirs.state()):
            assert np.array_equal(u, u2) and np.array_equal(v, v2)  # the same operations, bit for bit
    x = torch.rand(4, 1, 3, 3, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(refined(x), theirs(x))


def test_release_mode_restarts_and_leaves_passes_without_gradient_alone():
    logit = _pair()
    refined, info = prepare_spectral_norm(logit, "dgflow-release", 0)
    assert info["sn_layers_by_network"] == {"discriminator": 2, "corrector": 2}
    assert info["sn_thermalised_networks"] == ["discriminator"] and info["sn_updates_per_gradient_pass"] == 1
    thermalised = logit.corrector.state() + logit.base.state()
    x = torch.rand(4, 1, 3, 3, dtype=torch.float64)
    with torch.no_grad():
        refined(x)  # scoring, no gradient: u stays
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(logit.corrector.state() + logit.base.state(), thermalised))
    refined(x.requires_grad_(True)).sum().backward()
    assert not np.array_equal(logit.corrector.state()[0][0], thermalised[0][0])
    refined.restart()
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
               for a, b in zip(logit.corrector.state() + logit.base.state(), thermalised))


def test_a_raw_critic_is_all_discriminator_and_modes_are_declared_once():
    assert [role for role, _, _ in sn_layers_by_network(TinySN(3))] == ["discriminator", "discriminator"]
    schema = load_schema()["properties"]["refine"]["properties"]["spectral_norm"]
    assert schema["enum"] == list(SN_MODES) and schema["default"] == "frozen"
    assert set(SN_RELEASES) == set(SN_MODES) - {"frozen"}
    assert DGflowParams().sn_mode("dot-release") == "dot-release"
    assert DGflowParams(spectral_norm="dgflow-release").sn_mode("frozen") == "dgflow-release"
    with pytest.raises(ValueError, match="spectral_norm must be one of"):
        prepare_spectral_norm(TinySN(3), "train", 0)


# ---- the refine stage: per-batch restart, the record, and 'frozen' as before -----------------------------------

def _image_models(tmp_path):
    """A tiny DCGAN generator with an SN-DCGAN d_phi (model file) and d_phi + a d_lambda with stale vectors
    (discriminator file), 32 px."""
    from dgflow_bench.models.dcgan import DCGANGenerator, SNDCGANDiscriminator
    from dgflow_bench.models.store import save_model_file

    torch.manual_seed(0)
    generator, d_phi = DCGANGenerator(z_dim=4, bottom_width=4, ch=16), SNDCGANDiscriminator(bottom_width=4, ch=16)
    norms = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():  # running statistics of real use (fresh ones leave the samples near 0)
        for norm in norms:
            norm.momentum = None  # one cumulative average: this batch's statistics
        generator.train()(torch.randn(64, 4))
        for norm in norms:
            norm.momentum = 0.1
    d_lambda = SNDCGANDiscriminator(bottom_width=4, ch=16)
    rng = np.random.default_rng(0)
    with torch.no_grad():  # top singular values 1 and 0.999: its u moves for many iterations
        for layer in d_lambda.modules():
            if hasattr(layer, "parametrizations"):
                weight = layer.parametrizations["weight"].original
                rank = min(weight.shape[0], weight[0].numel())
                values = [1.0, 0.999, *np.linspace(0.9, 0.1, max(rank - 2, 0))][:rank]
                weight.copy_(_with_singular_values(tuple(weight.shape), values, rng).float())
                sn = layer.parametrizations["weight"][0]
                left, _, right = torch.linalg.svd(weight.reshape(weight.shape[0], -1), full_matrices=False)
                # stale, but not absurd: mostly the top two singular directions, sigma estimate near 1
                for buffer, vectors in ((sn._u, left), (sn._v, right.T)):
                    top = vectors[:, :2].sum(1) if vectors.shape[1] > 1 else vectors[:, 0]
                    buffer.copy_(nn.functional.normalize(top + 0.3 * torch.randn_like(buffer), dim=0))
    model, disc = tmp_path / "model.pt", tmp_path / "disc.pt"
    save_model_file(model, generator=generator, critic=d_phi, latent={"prior": "normal", "dim": 4})
    save_model_file(disc, critic=CorrectedLogit(d_phi, d_lambda))
    return str(model), str(disc)


def _stage(tmp_path, model, disc, name, batch, mode, iterations=0):
    from dgflow_bench.io import config_path_for, read_json
    from dgflow_bench.snapshots import open_snapshots
    from dgflow_bench.stages import refine

    method = {"kind": "dgflow", "discriminator": "finetuned", "eta": 50.0, "gamma": 0.0, "steps": 3,
              "snapshot_every": 1}
    common = {"n_samples": 8, "batch_size": batch, "seed": 3, "seeds": 1, "generator_bn": "eval",
              "divergence_bound": 1e6, "sn_power_iterations": iterations, "spectral_norm": mode}
    out = tmp_path / f"{name}.npz"
    refine.run("cifar10", model, disc, {"name": name, "method": method, "refine": common, "storage": "float32"},
               str(out), "cpu", False)
    with open_snapshots(out) as snaps:
        return snaps.final_latents.copy(), read_json(config_path_for(out))


def test_a_release_mode_starts_every_batch_from_the_thermalised_state(tmp_path, monkeypatch):
    model, disc = _image_models(tmp_path)
    one_batch, record = _stage(tmp_path, model, disc, "one", 8, "dgflow-release")
    two_batches, _ = _stage(tmp_path, model, disc, "two", 4, "dgflow-release")
    np.testing.assert_allclose(two_batches, one_batch, rtol=0, atol=1e-6)  # eval BN, no noise: per sample
    networks = record["networks"]
    assert networks["spectral_norm"] == "dgflow-release" and networks["sn_power_iterations"] == 5000
    assert networks["sn_layers_by_network"] == {"discriminator": 8, "corrector": 8}
    assert networks["sn_thermalised_networks"] == ["discriminator"] and networks["sn_update_rule"] == "torch-1.6"
    from dgflow_bench.refine import driver

    monkeypatch.setattr(driver, "restart_spectral_norm", lambda logit: None)  # the check can fail
    carried, _ = _stage(tmp_path, model, disc, "carried", 4, "dgflow-release")
    np.testing.assert_allclose(carried[:4], one_batch[:4], rtol=0, atol=1e-6)
    assert np.abs(carried[4:] - one_batch[4:]).max() > 1e-3  # the second batch sees u three steps on


def test_frozen_through_the_stage_is_the_refinement_it_always_was(tmp_path):
    from dgflow_bench.models.store import load_model_file
    from dgflow_bench.refine.common import sample_latents
    from dgflow_bench.refine.methods.dgflow import run_dgflow

    model, disc = _image_models(tmp_path)
    ours, record = _stage(tmp_path, model, disc, "frozen", 8, "frozen", iterations=4)
    # before the modes: thermalise_spectral_norm on d, then DGflow with it as it is
    generator, d = load_model_file(model)["generator"].requires_grad_(False), load_model_file(disc)["critic"]
    info = thermalise_spectral_norm(d.requires_grad_(False), 4)
    params = DGflowParams(eta=50.0, gamma=0.0, steps=3, snapshot_every=1, discriminator="finetuned")
    z0 = sample_latents("normal", 8, 4, 3)
    theirs = run_dgflow(z0, generator, d, params, torch.Generator().manual_seed(4), prior="normal").final_latents
    assert np.array_equal(ours, theirs.numpy())
    assert record["networks"] == {"generator_bn": "eval", "generator_batchnorm_layers": 4, "spectral_norm": "frozen",
                                  **info}
