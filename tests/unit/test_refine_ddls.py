"""DDLS against exact answers: the unadjusted Langevin variance recurrence and stationary law for a
Gaussian energy, MALA's exact invariance, the reflected chain on the uniform box, and exact single steps."""

import math

import pytest
import torch

from dgflow_bench.refine.common import RefinementDiverged, snapshot_steps
from dgflow_bench.refine.methods.ddls import run_ddls
from dgflow_bench.refine.support import reflect_into_box
from dgflow_bench.refine.methods.ddls import DDLSParams

F64 = torch.float64
N_CHAINS, DIM = 50_000, 2




def gen_rng(seed=0):
    return torch.Generator().manual_seed(seed)


def quad_logit(a):
    """d(z) = -a |z|^2 / 2 with G = identity: E(z) = (1 + a) |z|^2 / 2 under the normal prior."""
    return lambda z: -0.5 * a * (z**2).sum(1)


def var_tol(var, n=N_CHAINS * DIM, k=5):
    return k * var * math.sqrt(2 / n)


# ---------- normal prior ----------

def test_unadjusted_langevin_variance_recurrence_and_stationary_law():
    a, eps, steps = 1.0, 0.4, 60
    lam = 1 + a
    z0 = torch.randn(N_CHAINS, DIM, generator=gen_rng(1), dtype=F64)
    res = run_ddls(z0, None, quad_logit(a), DDLSParams(eps=eps, steps=steps, snapshot_every=5), gen_rng(2), prior="normal")
    r = 1 - eps * lam / 2  # z <- r z + sqrt(eps) xi
    var = 1.0
    for k in range(1, steps + 1):
        var = r**2 * var + eps
        if k in res.snapshots:
            z = res.snapshots[k]
            assert abs(z.var().item() - var) < var_tol(var), k
            assert z.mean().abs().item() < 5 * math.sqrt(var / (N_CHAINS * DIM)), k
    stationary = 1 / (lam * (1 - eps * lam / 4))
    assert var == pytest.approx(stationary, rel=1e-12)
    assert res.snapshots[steps].var().item() > 1 / lam + 0.1  # ULA is biased: 0.625 vs 1/lambda = 0.5
    assert "acceptance_rate" not in res.info


def test_mala_keeps_the_exact_target_invariant():
    a, eps, steps = 1.0, 0.4, 40
    lam = 1 + a
    z0 = torch.randn(N_CHAINS, DIM, generator=gen_rng(3), dtype=F64) / math.sqrt(lam)  # exact target
    res = run_ddls(z0, None, quad_logit(a), DDLSParams(eps=eps, steps=steps, snapshot_every=20, mala=True),
                   gen_rng(4), prior="normal")
    for k in (20, 40):
        assert abs(res.snapshots[k].var().item() - 1 / lam) < var_tol(1 / lam), k
    assert 0.5 < res.info["acceptance_rate"] < 1.0


def test_mala_converges_to_target_from_far_start():
    a, eps, steps = 1.0, 0.4, 150
    lam = 1 + a
    z0 = 2.0 + torch.randn(N_CHAINS, DIM, generator=gen_rng(5), dtype=F64)
    res = run_ddls(z0, None, quad_logit(a), DDLSParams(eps=eps, steps=steps, snapshot_every=150, mala=True),
                   gen_rng(6), prior="normal")
    z = res.snapshots[steps]
    assert abs(z.var().item() - 1 / lam) < 0.03
    assert z.mean().abs().item() < 0.03


def test_one_step_exact_normal_prior_with_generator():
    z0 = torch.randn(30, 2, generator=gen_rng(7), dtype=F64)
    a_mat = torch.tensor([[1.0, 0.2, -0.5], [0.3, -0.7, 0.4]], dtype=F64)
    gen = lambda z: torch.tanh(z @ a_mat)  # noqa: E731
    logit = lambda x: torch.sin(x).sum(1)  # noqa: E731
    eps = 0.05
    res = run_ddls(z0, gen, logit, DDLSParams(eps=eps, steps=1), gen_rng(8), prior="normal")
    zg = z0.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(logit(gen(zg)).sum(), zg)
    xi = torch.randn(30, 2, generator=gen_rng(8), dtype=F64)
    z1 = z0 - 0.5 * eps * (z0 - g) + math.sqrt(eps) * xi
    assert torch.allclose(res.snapshots[1], gen(z1), atol=1e-12)


# ---------- uniform prior: reflection ----------

def test_reflect_into_box_exact_values():
    z = torch.tensor([0.3, -1.0, 1.0, 1.3, -1.2, 3.5, -4.5, 7.0], dtype=F64)
    expected = torch.tensor([0.3, -1.0, 1.0, 0.7, -0.8, -0.5, -0.5, -1.0], dtype=F64)
    assert torch.allclose(reflect_into_box(z), expected, atol=1e-12)


def assert_uniform_on_box(z):
    n = z.numel()
    assert z.abs().max() <= 1.0 and not (z.abs() == 1.0).any()  # reflection leaves no atoms on the faces
    assert abs(z.mean().item()) < 5 * math.sqrt(1 / 3 / n)
    assert abs(z.var().item() - 1 / 3) < 5 * math.sqrt(4 / 45 / n)  # Var[(U - 1/3)^2] = 4/45
    counts = torch.histc(z.float(), bins=10, min=-1, max=1) / n
    assert (counts - 0.1).abs().max() < 5 * math.sqrt(0.09 / n)


def test_reflected_chain_keeps_uniform_law_with_zero_logit():
    z0 = torch.rand(N_CHAINS, DIM, generator=gen_rng(9), dtype=F64) * 2 - 1
    zero = lambda z: 0.0 * z.sum(1)  # noqa: E731
    res = run_ddls(z0, None, zero, DDLSParams(eps=0.1, steps=50, snapshot_every=25), gen_rng(10), prior="uniform")
    for k in (25, 50):
        assert_uniform_on_box(res.snapshots[k])
    assert res.info["support"] == "reflect"


def test_reflected_chain_forgets_point_mass_start():
    z0 = torch.full((N_CHAINS, DIM), 0.9, dtype=F64)
    zero = lambda z: 0.0 * z.sum(1)  # noqa: E731
    res = run_ddls(z0, None, zero, DDLSParams(eps=0.1, steps=150, snapshot_every=150), gen_rng(11), prior="uniform")
    assert_uniform_on_box(res.snapshots[150])


def test_one_step_exact_uniform_prior():
    z0 = torch.rand(40, 2, generator=gen_rng(12), dtype=F64) * 2 - 1
    w = torch.tensor([2.0, -1.0], dtype=F64)
    eps = 0.3
    res = run_ddls(z0, None, lambda z: z @ w, DDLSParams(eps=eps, steps=1), gen_rng(13), prior="uniform")
    xi = torch.randn(40, 2, generator=gen_rng(13), dtype=F64)
    assert torch.allclose(res.snapshots[1], reflect_into_box(z0 + 0.5 * eps * w + math.sqrt(eps) * xi), atol=1e-12)


def test_mala_with_uniform_prior_not_implemented():
    z0 = torch.rand(4, 2)
    with pytest.raises(NotImplementedError, match="normal prior"):
        run_ddls(z0, None, lambda z: z.sum(1), DDLSParams(mala=True), gen_rng(), prior="uniform")
    with pytest.raises(ValueError, match="'laplace'"):
        run_ddls(z0, None, lambda z: z.sum(1), DDLSParams(), gen_rng(), prior="laplace")


# ---------- contract ----------

def tanh_gen(z):
    return torch.tanh(z @ torch.tensor([[1.0, 0.3, -0.2], [0.4, -1.0, 0.5]], dtype=z.dtype))


@pytest.mark.parametrize("prior,mala", [("normal", False), ("normal", True), ("uniform", False)])
def test_contract_keys_step0_determinism(prior, mala):
    z0 = torch.rand(40, 2, generator=gen_rng(14)) * 2 - 1
    logit = lambda x: -(x**2).sum(1) + x[:, 0]  # noqa: E731
    params = DDLSParams(eps=0.05, steps=7, snapshot_every=3, mala=mala)
    a = run_ddls(z0, tanh_gen, logit, params, gen_rng(15), prior=prior)
    b = run_ddls(z0, tanh_gen, logit, params, gen_rng(15), prior=prior)
    assert list(a.snapshots) == snapshot_steps(7, 3)
    assert torch.equal(a.snapshots[0], tanh_gen(z0))
    assert all(torch.equal(a.snapshots[k], b.snapshots[k]) for k in a.snapshots)
    assert not torch.equal(a.snapshots[7], a.snapshots[0])


@pytest.mark.parametrize("mala", [False, True])
def test_nan_logit_raises_with_method_and_step(mala):
    z0 = torch.randn(10, 2, generator=gen_rng())
    nan_logit = lambda x: (x * float("nan")).sum(1)  # noqa: E731
    with pytest.raises(RefinementDiverged, match=r"ddls diverged at step [01] \(eps=0.01\)"):
        run_ddls(z0, tanh_gen, nan_logit, DDLSParams(eps=0.01, steps=3, mala=mala), gen_rng(), prior="normal")
