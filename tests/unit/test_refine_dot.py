"""DOT against exact answers: Lipschitz constants of linear critics, per-sample descent, the box and
sphere constraints, naive mode and the optimizer updates."""

import math

import pytest
import torch

from dgflow_bench.refine.common import RefinementDiverged, snapshot_steps
from dgflow_bench.refine.methods.dot import (dot_objective, estimate_k_eff, fresh_pairs_k_eff, run_dot,
                                             tangent_projection)
from dgflow_bench.runtime import latent_sampler
from dataclasses import replace
from dgflow_bench.refine.methods.dot import DOTParams

F64 = torch.float64
W = torch.tensor([3.0, -4.0], dtype=F64)  # |W| = 5




def gen_rng(seed=0):
    return torch.Generator().manual_seed(seed)


def linear_logit(x):
    return x @ W


def smooth_logit(x):
    c = torch.tensor([0.5, -0.2], dtype=x.dtype)
    return -((x - c) ** 2).sum(1) + 0.3 * torch.sin(2 * x[:, 0])


def cloud(n=400, dim=2, seed=1):
    return torch.randn(n, dim, generator=gen_rng(seed), dtype=F64)


# ---------- K_eff ----------

def test_k_eff_of_linear_critic_is_close_to_and_below_norm_w():
    x = cloud()
    k = estimate_k_eff(x, linear_logit(x), gen_rng(2), n_pairs=1000)
    assert 0.98 * 5.0 < k <= 5.0 + 1e-12
    k10 = estimate_k_eff(x, linear_logit(x), gen_rng(2), n_pairs=100, n_repeats=10)
    assert 0.9 * 5.0 < k10 <= 5.0 + 1e-12
    assert k10 == estimate_k_eff(x, linear_logit(x), gen_rng(2), n_pairs=100, n_repeats=10)


def test_k_eff_is_exact_max_over_the_drawn_pairs():
    # Two points only: every pair is (0, 1) or (1, 0), so the estimate is the single exact ratio.
    y = torch.tensor([[0.0, 0.0], [3.0, 4.0]], dtype=F64)
    d = torch.tensor([1.0, -9.0], dtype=F64)
    assert estimate_k_eff(y, d, gen_rng(), n_pairs=7, n_repeats=3) == pytest.approx(2.0, abs=1e-15)


def test_latent_k_eff_for_linear_generator_is_norm_of_At_w():
    a = torch.tensor([[1.0, 0.5], [-0.3, 0.8], [0.2, 2.0]], dtype=F64)
    w3 = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    lip = torch.linalg.norm(a.T @ w3).item()
    z0 = cloud(dim=2, seed=3)
    params = DOTParams(space="latent", steps=0, k_eff="auto", k_eff_pairs=2000)
    res = run_dot(z0, lambda z: z @ a.T, lambda x: x @ w3, params, gen_rng(4), prior="normal")
    assert res.info["k_eff_estimated"] is True
    assert 0.98 * lip < res.info["k_eff"] <= lip + 1e-12
    # data space: pairs of x = G(z) with d(x), Lipschitz |w3| (x lies in a 2-D plane, so only <=)
    res = run_dot(z0, lambda z: z @ a.T, lambda x: x @ w3, replace(params, space="data"), gen_rng(4), prior="normal")
    assert res.info["k_eff"] <= torch.linalg.norm(w3).item() + 1e-12


def test_explicit_k_eff_recorded_and_validated():
    x0 = cloud(20)
    res = run_dot(x0, None, linear_logit, DOTParams(space="data", k_eff=2.5, steps=1), gen_rng(), prior="normal")
    assert res.info["k_eff"] == 2.5 and res.info["k_eff_estimated"] is False
    for bad in (0, -1.0, "fast"):
        with pytest.raises(ValueError, match="k_eff"):
            run_dot(x0, None, linear_logit, DOTParams(space="data", k_eff=bad), gen_rng(), prior="normal")


def test_fresh_k_eff_is_dots_estimate_on_new_latent_pairs():
    # DOT.py:15-25 (eff_k): two fresh sets of 100 latents from the generator's prior, paired row by row, K the
    # largest |d(G(z2)) - d(G(z1))| / ||z2 - z1||; restated here directly on the same draws
    a = torch.tensor([[1.0, 0.5], [-0.3, 0.8], [0.2, 2.0]], dtype=F64)
    w3 = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    gen, logit = (lambda z: torch.tanh(z @ a.T)), (lambda x: x @ w3)
    z0 = cloud(40, dim=2, seed=3)
    for prior in ("uniform", "normal"):
        k = fresh_pairs_k_eff(gen, logit, z0, prior, gen_rng(8), "latent", n_pairs=100)
        z = latent_sampler(prior, 2, torch.device("cpu"))(200, gen_rng(8)).to(F64)
        d = logit(gen(z))
        direct = max(abs(float(d[100 + i] - d[i])) / float((z[100 + i] - z[i]).norm()) for i in range(100))
        assert k == pytest.approx(direct, rel=1e-12), prior
        if prior == "uniform":
            assert z.abs().max() <= 1.0
    # data space (DOT.py:27-37, eff_K): the same pairs measured by ||G(z2) - G(z1)||
    k = fresh_pairs_k_eff(gen, logit, z0, "normal", gen_rng(8), "data", n_pairs=100)
    z = latent_sampler("normal", 2, torch.device("cpu"))(200, gen_rng(8)).to(F64)
    x, d = gen(z), logit(gen(z))
    assert k == pytest.approx(max(abs(float(d[100 + i] - d[i])) / float((x[100 + i] - x[i]).norm())
                                  for i in range(100)), rel=1e-12)
    assert k <= torch.linalg.norm(w3).item() + 1e-12


def test_k_eff_sample_fresh_ignores_the_batch_and_batch_stays_the_default():
    a = torch.tensor([[1.0, 0.5], [-0.3, 0.8], [0.2, 2.0]], dtype=F64)
    w3 = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    gen, logit = (lambda z: torch.tanh(z @ a.T)), (lambda x: x @ w3)
    assert DOTParams().k_eff_sample == "batch"  # the 2-D default table is unchanged
    fresh = DOTParams(space="latent", steps=0, k_eff_sample="fresh", k_eff_repeats=1)
    batch = replace(fresh, k_eff_sample="batch")
    near, far = cloud(50, dim=2, seed=3) * 0.1, cloud(50, dim=2, seed=4) * 3.0
    k_near, k_far = (run_dot(z, gen, logit, fresh, gen_rng(9), prior="normal").info["k_eff"] for z in (near, far))
    assert k_near == k_far  # drawn from the prior, not from the batch
    assert run_dot(near, gen, logit, batch, gen_rng(9), prior="normal").info["k_eff"] != k_near
    # the fresh pairs are network passes of the run: 2 x 100 forwards of G and d instead of the batch's 50
    counts = {s: run_dot(near, gen, logit, p, gen_rng(9), prior="normal").info["network_evaluations"]
              for s, p in (("fresh", fresh), ("batch", batch))}
    assert counts["fresh"]["generator_forward"] - counts["batch"]["generator_forward"] == 200 - 50
    assert counts["fresh"]["discriminator_forward"] - counts["batch"]["discriminator_forward"] == 200 - 50
    with pytest.raises(ValueError, match="k_eff_sample 'fresh'.*needs the generator"):
        run_dot(near, None, logit, replace(fresh, space="data"), gen_rng(), prior="normal")


# ---------- objective and updates ----------

@pytest.mark.parametrize("optimizer,k_scale", [("sgd", 1.0), ("sgd", 0.3), ("adam", 1.0), ("adam", 0.3)])
def test_objective_decreases_for_every_sample(optimizer, k_scale):
    x0 = cloud(300)
    k = estimate_k_eff(x0, smooth_logit(x0), gen_rng(5), n_pairs=500) * k_scale
    params = DOTParams(space="data", optimizer=optimizer, lr=1e-4, steps=60, snapshot_every=20, k_eff=k, clip=None)
    res = run_dot(x0, None, smooth_logit, params, gen_rng(), prior="normal")
    start = dot_objective(x0, x0, smooth_logit(x0), k)
    end = dot_objective(res.snapshots[60], x0, smooth_logit(res.snapshots[60]), k)
    assert torch.all(end <= start)
    assert (start - end).mean() > 1e-4  # it really optimised
    assert res.info["objective_start"] == pytest.approx(start.mean().item(), rel=1e-12)
    assert res.info["objective_end"] == pytest.approx(end.mean().item(), rel=1e-12)


def test_naive_sgd_is_plain_gradient_ascent_on_d():
    x0 = cloud(50)
    lr, k, steps = 0.01, 2.0, 4
    params = DOTParams(space="data", optimizer="sgd", lr=lr, steps=steps, snapshot_every=1, k_eff=k, naive=True, clip=None)
    res = run_dot(x0, None, linear_logit, params, gen_rng(), prior="normal")
    for n, x in res.snapshots.items():
        assert torch.allclose(x, x0 + n * lr * W / k, atol=1e-12)
    # without naive the distance term pulls back: the step is lr * (w/K - unit(eps * 1)) at y = y0
    res = run_dot(x0, None, linear_logit, replace(params, naive=False, steps=1), gen_rng(), prior="normal")
    unit = torch.ones(2, dtype=F64) / math.sqrt(2)
    assert torch.allclose(res.snapshots[1], x0 + lr * (W / k - unit), atol=1e-12)


def test_adam_update_with_beta1_zero_is_sign_step():
    # constant gradient g = -w/K: with beta1 = 0 and bias correction each Adam step is lr * g / (|g| + 1e-8)
    x0 = cloud(10)
    lr, k = 0.05, 5.0
    params = DOTParams(space="data", optimizer="adam", betas=[0.0, 0.9], lr=lr, steps=3, snapshot_every=1,
                  k_eff=k, naive=True, clip=None)
    res = run_dot(x0, None, linear_logit, params, gen_rng(), prior="normal")
    g = W / k
    assert torch.allclose(res.snapshots[3], x0 + 3 * lr * g / (g.abs() + 1e-8), atol=1e-12)


def test_data_space_clip_keeps_box():
    x0 = cloud(200) * 0.3
    params = DOTParams(space="data", optimizer="adam", lr=0.1, steps=30, snapshot_every=10, clip=1.0, k_eff=1.0)
    res = run_dot(x0, None, linear_logit, params, gen_rng(), prior="normal")
    for k in (10, 20, 30):
        assert res.snapshots[k].abs().max() <= 1.0
    assert (res.snapshots[30].abs() == 1.0).any()


def test_latent_uniform_prior_clamps_to_unit_box():
    z0 = torch.rand(200, 2, generator=gen_rng(6), dtype=F64) * 2 - 1
    params = DOTParams(space="latent", optimizer="sgd", lr=0.2, steps=20, snapshot_every=5, k_eff=1.0)
    res = run_dot(z0, lambda z: 1.0 * z, linear_logit, params, gen_rng(), prior="uniform")
    assert all(s.abs().max() <= 1.0 for s in res.snapshots.values())
    assert (res.snapshots[20].abs() == 1.0).any()


def test_normal_prior_projects_gradient_on_sphere_tangent():
    z0 = cloud(200, dim=3, seed=7)
    w3 = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    k, lr = torch.linalg.norm(w3).item(), 1e-4
    logit = lambda x: x @ w3  # noqa: E731
    # one step: the move is exactly -lr * (tangent part of the objective gradient), orthogonal to z
    res = run_dot(z0, lambda z: 1.0 * z, logit, DOTParams(space="latent", optimizer="sgd", lr=lr, steps=1, k_eff=k),
                  gen_rng(), prior="normal")
    g = (torch.ones(3, dtype=F64) / math.sqrt(3) - w3 / k).expand(200, 3)
    step = res.snapshots[1] - z0
    assert torch.allclose(step, -lr * tangent_projection(g, z0), atol=1e-15)
    assert torch.allclose((step * z0).sum(1), torch.zeros(200, dtype=F64), atol=1e-15)
    # many steps: |z|^2 grows only at second order, <= steps * lr^2 * |g|^2 with |g| <= 2
    steps = 20
    res = run_dot(z0, lambda z: 1.0 * z, logit, DOTParams(space="latent", optimizer="sgd", lr=lr, steps=steps, k_eff=k),
                  gen_rng(), prior="normal")
    zn = res.snapshots[steps]
    change = (zn.pow(2).sum(1) - z0.pow(2).sum(1)).abs()
    assert change.max() <= steps * lr**2 * 4 + 1e-14
    assert (zn - z0).norm(dim=1).median() > 0.1 * steps * lr  # yet the samples moved at first order


# ---------- contract ----------

def tanh_gen(z):
    return torch.tanh(z @ torch.tensor([[1.0, 0.3, -0.2], [0.4, -1.0, 0.5]], dtype=z.dtype))


@pytest.mark.parametrize("space,prior", [("latent", "normal"), ("latent", "uniform"), ("data", "normal")])
def test_contract_keys_step0_determinism(space, prior):
    z0 = torch.rand(40, 2, generator=gen_rng(8)) * 2 - 1
    logit = lambda x: -(x**2).sum(1) + x[:, 0]  # noqa: E731
    params = DOTParams(space=space, steps=7, snapshot_every=3, lr=0.05)
    a = run_dot(z0, tanh_gen, logit, params, gen_rng(9), prior=prior)
    b = run_dot(z0, tanh_gen, logit, params, gen_rng(9), prior=prior)
    assert list(a.snapshots) == snapshot_steps(7, 3)
    assert torch.equal(a.snapshots[0], tanh_gen(z0))
    assert all(torch.equal(a.snapshots[k], b.snapshots[k]) for k in a.snapshots)
    assert a.info == b.info and a.info["k_eff_estimated"] is True
    assert not torch.equal(a.snapshots[7], a.snapshots[0])


def test_nan_logit_raises_with_method_and_step():
    z0 = torch.rand(10, 2, generator=gen_rng())
    nan_logit = lambda x: (x * float("nan")).sum(1)  # noqa: E731
    with pytest.raises(RefinementDiverged, match=r"dot diverged at step 1 \(lr=0.01\)"):
        run_dot(z0, tanh_gen, nan_logit, DOTParams(space="latent", k_eff=1.0, steps=3), gen_rng(), prior="normal")


def test_unknown_optimizer_rejected():
    with pytest.raises(ValueError, match="'rmsprop'"):
        run_dot(cloud(10), None, linear_logit, DOTParams(space="data", optimizer="rmsprop"), gen_rng(), prior="normal")
