"""DGflow against exact answers: affine recurrences for Gaussian flows (data and latent space), the
f-divergence drift weights, plus the common method contract. Also run_base."""

import math

import pytest
import torch

from dgflow_bench.refine.common import RefinementDiverged, snapshot_steps
from dgflow_bench.refine.methods.dgflow import drift_weight, run_dgflow
from dgflow_bench.refine.methods.base import BaseParams
from dgflow_bench.refine.methods.dgflow import DGflowParams

F64 = torch.float64




def gen_rng(seed=0):
    return torch.Generator().manual_seed(seed)


def gauss_logratio_1d(m0, s0, m1, s1):
    """Exact d(x) = log N(x; m1, s1^2) - log N(x; m0, s0^2) for x of shape (N, 1)."""
    def d(x):
        x = x[:, 0]
        return -(x - m1) ** 2 / (2 * s1**2) + (x - m0) ** 2 / (2 * s0**2) + math.log(s0 / s1)
    return d


# ---------- drift weights ----------

def test_drift_weight_values_and_unknown_f():
    d = torch.tensor([-2.0, 0.0, 3.0], dtype=F64)
    assert torch.equal(drift_weight(d, "KL"), torch.ones(3, dtype=F64))
    assert torch.allclose(drift_weight(d, "JS"), 1 / (1 + torch.exp(-d)))
    assert torch.allclose(drift_weight(d, "logD"), 1 / (1 + torch.exp(d)))
    with pytest.raises(ValueError, match=r"'chi2'.*KL.*JS.*logD"):
        drift_weight(d, "chi2")


F_GENERATORS = {
    "KL": lambda r: r * torch.log(r),
    "JS": lambda r: r * torch.log(r) - (r + 1) * torch.log((r + 1) / 2),
    "logD": lambda r: (r + 1) * torch.log(r + 1) - 2 * math.log(2),
}


def smooth_logit(x):
    return torch.sin(x[:, 0]) + 0.5 * x[:, 1] ** 2 - x[:, 0] * x[:, 1]


def minus_grad_fprime(x, f_gen):
    """-grad_x f'(rho/mu) with rho/mu = exp(-d(x)), f' obtained from f by autograd."""
    x = x.clone().requires_grad_(True)
    r = torch.exp(-smooth_logit(x))
    (fprime,) = torch.autograd.grad(f_gen(r).sum(), r, create_graph=True)
    (g,) = torch.autograd.grad(fprime.sum(), x)
    return -g


@pytest.mark.parametrize("f", ["KL", "JS", "logD"])
def test_drift_weight_is_f_divergence_gradient(f):
    x = torch.randn(64, 2, generator=gen_rng(1), dtype=F64)
    xg = x.clone().requires_grad_(True)
    d = smooth_logit(xg)
    (grad_d,) = torch.autograd.grad(d.sum(), xg)
    lhs = drift_weight(d.detach(), f)[:, None] * grad_d
    assert torch.allclose(lhs, minus_grad_fprime(x, F_GENERATORS[f]), atol=1e-12)


@pytest.mark.parametrize("f", ["KL", "JS", "logD"])
def test_one_deterministic_step_follows_f_divergence_flow(f):
    x0 = torch.randn(64, 2, generator=gen_rng(2), dtype=F64)
    eta = 0.03
    res = run_dgflow(x0, None, smooth_logit, DGflowParams(f=f, space="data", eta=eta, gamma=0.0, steps=1,
                                                   snapshot_every=1), gen_rng(), prior="normal")
    expected = x0 + eta * minus_grad_fprime(x0, F_GENERATORS[f])
    assert torch.allclose(res.snapshots[1], expected, atol=1e-12)


# ---------- exact Gaussian recurrences ----------

M0, S0, M1, S1 = 0.0, 1.0, 1.5, 0.5
A_COEF = 1 / S0**2 - 1 / S1**2          # d'(x) = A_COEF * x + B_COEF
B_COEF = M1 / S1**2 - M0 / S0**2


def test_data_space_gaussian_mean_var_recurrence():
    n, eta, gamma, steps = 200_000, 0.05, 0.3, 20
    z0 = torch.randn(n, 1, generator=gen_rng(3), dtype=F64)
    generator = lambda z: M0 + S0 * z  # noqa: E731  rho0 = N(M0, S0^2)
    params = DGflowParams(f="KL", space="data", eta=eta, gamma=gamma, steps=steps, snapshot_every=5)
    res = run_dgflow(z0, generator, gauss_logratio_1d(M0, S0, M1, S1), params, gen_rng(4), prior="normal")
    c = 1 + eta * A_COEF
    mean, var = M0, S0**2
    for k in range(1, steps + 1):
        mean, var = c * mean + eta * B_COEF, c**2 * var + 2 * eta * gamma
        if k in res.snapshots:
            x = res.snapshots[k][:, 0]
            assert abs(x.mean().item() - mean) < 5 * math.sqrt(var / n), k
            assert abs(x.var().item() - var) < 5 * var * math.sqrt(2 / n), k
    # the flow moved the law far from rho0, toward (not onto: the ratio is stale) mu
    assert abs(mean - M0) > 0.5


def test_data_space_deterministic_matches_affine_map_per_particle():
    eta, steps = 0.05, 12
    x0 = torch.randn(1000, 1, generator=gen_rng(5), dtype=F64)
    params = DGflowParams(f="KL", space="data", eta=eta, gamma=0.0, steps=steps, snapshot_every=4)
    res = run_dgflow(x0, None, gauss_logratio_1d(M0, S0, M1, S1), params, gen_rng(), prior="normal")
    c = 1 + eta * A_COEF
    for k, x in res.snapshots.items():
        expected = c**k * x0 + eta * B_COEF * (1 - c**k) / (1 - c)
        assert torch.allclose(x, expected, atol=1e-12), k


A_LIN = torch.tensor([[1.0, 0.5], [-0.3, 0.8]], dtype=F64)
B_LIN = torch.tensor([0.2, -0.1], dtype=F64)
MU1 = torch.tensor([1.0, -0.5], dtype=F64)
SIG1 = torch.tensor([[0.5, 0.1], [0.1, 0.3]], dtype=F64)
C0 = A_LIN @ A_LIN.T  # law of G(z0) for z0 ~ N(0, I) is N(B_LIN, C0)
P_MAT = torch.linalg.inv(SIG1) - torch.linalg.inv(C0)  # grad_x d = -P x + h
H_VEC = torch.linalg.inv(SIG1) @ MU1 - torch.linalg.inv(C0) @ B_LIN


def linear_gen(z):
    return z @ A_LIN.T + B_LIN


def gauss_logratio_2d(x):
    """log N(x; MU1, SIG1) - log N(x; B_LIN, C0) up to a constant."""
    r1, r0 = x - MU1, x - B_LIN
    q1 = (r1 @ torch.linalg.inv(SIG1) * r1).sum(1)
    q0 = (r0 @ torch.linalg.inv(C0) * r0).sum(1)
    return -0.5 * q1 + 0.5 * q0


def latent_affine_map(eta):
    """z <- M z + c (+ noise) for grad_z d(A z + b) = A^T(-P (A z + b) + h)."""
    m = torch.eye(2, dtype=F64) - eta * A_LIN.T @ P_MAT @ A_LIN
    c = eta * A_LIN.T @ (H_VEC - P_MAT @ B_LIN)
    return m, c


def test_latent_linear_generator_mean_cov_recurrence():
    n, eta, gamma, steps = 100_000, 0.05, 0.2, 15
    z0 = torch.randn(n, 2, generator=gen_rng(6), dtype=F64)
    params = DGflowParams(f="KL", space="latent", eta=eta, gamma=gamma, steps=steps, snapshot_every=5)
    res = run_dgflow(z0, linear_gen, gauss_logratio_2d, params, gen_rng(7), prior="normal")
    m, c = latent_affine_map(eta)
    mean, cov = torch.zeros(2, dtype=F64), torch.eye(2, dtype=F64)
    for k in range(1, steps + 1):
        mean, cov = m @ mean + c, m @ cov @ m.T + 2 * eta * gamma * torch.eye(2, dtype=F64)
        if k in res.snapshots:  # snapshots are data space: x = A z + b
            x = res.snapshots[k]
            mean_x, cov_x = A_LIN @ mean + B_LIN, A_LIN @ cov @ A_LIN.T
            sd = torch.sqrt(torch.diag(cov_x))
            assert torch.all((x.mean(0) - mean_x).abs() < 5 * sd / math.sqrt(n)), k
            se_cov = torch.sqrt((torch.outer(sd**2, sd**2) + cov_x**2) / n)
            assert torch.all((torch.cov(x.T) - cov_x).abs() < 5 * se_cov), k


def test_latent_deterministic_snapshots_are_generator_of_exact_latents():
    eta, steps = 0.05, 10
    z0 = torch.randn(500, 2, generator=gen_rng(8), dtype=F64)
    params = DGflowParams(f="KL", space="latent", eta=eta, gamma=0.0, steps=steps, snapshot_every=3)
    res = run_dgflow(z0, linear_gen, gauss_logratio_2d, params, gen_rng(), prior="normal")
    m, c = latent_affine_map(eta)
    z = z0
    for k in range(steps + 1):
        if k in res.snapshots:
            assert torch.allclose(res.snapshots[k], linear_gen(z), atol=1e-12), k
        z = z @ m.T + c


# ---------- contract ----------

def tanh_gen(z):
    return torch.tanh(z @ torch.tensor([[1.0, 0.3, -0.2], [0.4, -1.0, 0.5]], dtype=z.dtype))


def bump_logit(x):
    return -(x**2).sum(1) + x[:, 0]


@pytest.mark.parametrize("space", ["latent", "data"])
def test_contract_keys_step0_determinism(space):
    z0 = torch.randn(50, 2, generator=gen_rng(9))
    params = DGflowParams(f="JS", space=space, eta=0.1, gamma=0.01, steps=7, snapshot_every=3)
    a = run_dgflow(z0, tanh_gen, bump_logit, params, gen_rng(10), prior="normal")
    b = run_dgflow(z0, tanh_gen, bump_logit, params, gen_rng(10), prior="normal")
    c = run_dgflow(z0, tanh_gen, bump_logit, params, gen_rng(11), prior="normal")
    assert list(a.snapshots) == snapshot_steps(7, 3) == [0, 3, 6, 7]
    assert torch.equal(a.snapshots[0], tanh_gen(z0))
    assert all(torch.equal(a.snapshots[k], b.snapshots[k]) for k in a.snapshots)
    assert not torch.equal(a.snapshots[7], c.snapshots[7])
    assert all(not s.requires_grad and s.shape == (50, 3) for s in a.snapshots.values())


def test_nan_logit_raises_with_method_and_step():
    z0 = torch.randn(10, 2, generator=gen_rng())
    nan_logit = lambda x: (x * float("nan")).sum(1)  # noqa: E731
    with pytest.raises(RefinementDiverged, match=r"dgflow diverged at step 1 \(eta=0.1\)"):
        run_dgflow(z0, tanh_gen, nan_logit, DGflowParams(eta=0.1, steps=5), gen_rng(), prior="normal")


def test_huge_step_on_steep_logit_raises():
    x0 = torch.full((4, 1), 1.0, dtype=torch.float32)
    steep = lambda x: 10 * (x**4).sum(1)  # noqa: E731
    with pytest.raises(RefinementDiverged, match=r"dgflow diverged at step [2-9]") as err:
        run_dgflow(x0, None, steep, DGflowParams(space="data", eta=1.0, gamma=0.0, steps=20), gen_rng(), prior="normal")
    assert err.value.method == "dgflow" and err.value.step_size == 1.0


def test_bad_params_rejected():
    z0 = torch.randn(4, 2)
    with pytest.raises(ValueError, match="'chi2'"):
        run_dgflow(z0, tanh_gen, bump_logit, DGflowParams(f="chi2"), gen_rng(), prior="normal")
    with pytest.raises(ValueError, match="'pixel'"):
        run_dgflow(z0, tanh_gen, bump_logit, DGflowParams(space="pixel"), gen_rng(), prior="normal")


def test_run_base_is_exactly_generator_output():
    z0 = torch.randn(20, 2, generator=gen_rng(12))
    res = BaseParams().run(z0, tanh_gen, bump_logit, gen_rng(), prior="uniform")
    assert list(res.snapshots) == [0]
    assert torch.equal(res.snapshots[0], tanh_gen(z0))


@pytest.mark.parametrize("kind", ["base", "dgflow", "dot", "ddls"])
def test_the_config_schema_defaults_are_the_parameter_classes_defaults(kind):
    """One home for defaults: the validated config of a bare method block is the parameter class's own
    defaults, and the typed object built from it equals the class's default instance."""
    from dgflow_bench.config import validate
    from dgflow_bench.registry import METHODS

    resolved = validate({"datasets": {"25gaussians": {}}, "models": {"wgan-gp": {"datasets": ["25gaussians"]}},
                         "methods": {"m": {"kind": kind}}})["methods"]["m"]
    params_class = METHODS[kind]
    assert params_class.from_config(resolved) == params_class()
    assert resolved == params_class().as_dict()
    with pytest.raises(ValueError, match="has no parameters"):
        params_class.from_config({**resolved, "not_a_knob": 1})


def test_dgflow_without_parameters_runs_the_schema_defaults():
    z0 = torch.randn(4, 2, generator=gen_rng(12))
    res = run_dgflow(z0, tanh_gen, bump_logit, DGflowParams(), gen_rng(13), prior="normal")
    assert sorted(res.snapshots) == [0, 5, 10, 15, 20, 25]  # steps 25, snapshot_every 5 by default
