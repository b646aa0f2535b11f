"""DRS and MH-GAN (refine/rejection.py) against exact answers: with proposal N(0, 1) and the exact log density
ratio of a narrower Gaussian target N(mu, s^2) as the logit, both must sample the target (moments within ~4
standard errors), DRS's acceptance rate must be 1 / M, and its score must reduce to exp(d - d_M). Plus Platt
scaling on known log-odds, hand-counted network evaluations, the budget's fill, determinism and latents."""

import math

import pytest
import torch

from dgflow_bench.refine.params import DRSParams, MHGANParams
from dgflow_bench.refine.rejection import drs_score, fit_platt, fit_platt_on, run_drs, run_mhgan

F64 = torch.float64
N = 20_000
MU, S = 0.5, 0.8  # target N(MU, S^2): s < 1 keeps the ratio to N(0, 1) bounded


def gen_rng(seed=0):
    return torch.Generator().manual_seed(seed)


def log_ratio(mu, s):
    """d(x) = log N(x; mu, s^2) - log N(x; 0, 1), exactly: the optimal discriminator's logit."""
    return lambda x: -math.log(s) - (x.reshape(-1) - mu) ** 2 / (2 * s * s) + x.reshape(-1) ** 2 / 2


def log_max_ratio(mu, s):
    """log M: the ratio's maximum, at x* = mu / (1 - s^2)."""
    x_star = torch.tensor([mu / (1 - s * s)], dtype=F64)
    return float(log_ratio(mu, s)(x_star))


def base_latents(n=N, dim=1, seed=1):
    return torch.randn(n, dim, generator=gen_rng(seed), dtype=F64)


def assert_target_moments(x, mu, s, k=4.0):
    """Mean within k * s / sqrt(n), variance within k * s^2 sqrt(2 / (n - 1)) (k = 4: ~4 standard errors)."""
    x = x.reshape(-1)
    n = x.numel()
    assert abs(float(x.mean()) - mu) < k * s / math.sqrt(n)
    assert abs(float(x.var()) - s * s) < k * s * s * math.sqrt(2 / (n - 1))


def linear_tanh_generator():
    weight = torch.tensor([[1.0, -0.5, 0.3], [0.2, 0.8, -1.1]], dtype=F64)
    return lambda z: torch.tanh(z @ weight)


class Counting:
    """Wraps a network and counts the samples it sees, independently of the method's own count."""

    def __init__(self, fn):
        self.fn, self.samples = fn, 0

    def __call__(self, x):
        self.samples += x.shape[0]
        return self.fn(x)


# ---------- DRS: exact answers ----------

def test_drs_score_is_exact_rejection_sampling_with_gamma_zero():
    # sigmoid(F) = r / (1 + r (1 - e^-eps)), r = exp(d - d_M): relative error below r * eps
    d_max, eps = 1.3, 1e-6
    d = d_max - torch.cat([torch.zeros(1), torch.logspace(-8, 1.5, 200)]).to(F64)
    p = torch.sigmoid(drs_score(d, d_max, eps))
    torch.testing.assert_close(p, torch.exp(d - d_max), rtol=2e-6, atol=0)


def test_drs_with_true_max_samples_the_target_and_accepts_one_over_m():
    log_m = log_max_ratio(MU, S)
    params = DRSParams(max_logit=log_m, max_proposals_per_sample=50)
    res = run_drs(base_latents(), None, log_ratio(MU, S), params, gen_rng(2), prior="normal")
    info = res.info
    assert info["filled_without_acceptance"] == 0 and info["accepted"] == N
    assert info["max_logit"] == log_m  # no proposal beats the true maximum
    assert_target_moments(res.snapshots[1], MU, S)
    # acceptance events over all proposals: binomial, tolerance 4 standard errors
    rate, q = info["acceptance_rate"], math.exp(-log_m)
    assert abs(rate - q) < 4 * math.sqrt(q * (1 - q) / info["proposals"])
    assert info["proposals"] == N * math.ceil(info["proposals_per_sample"])


def test_drs_with_burn_in_estimate_is_still_close():
    log_m = log_max_ratio(MU, S)
    params = DRSParams(burn_in=5_000, max_proposals_per_sample=50)
    res = run_drs(base_latents(), None, log_ratio(MU, S), params, gen_rng(3), prior="normal")
    info = res.info
    assert info["burn_in_samples"] == 5_000
    # the estimate is a sample maximum (never above the truth) near the flat top of a quadratic
    assert log_m - 1e-3 < info["max_logit"] <= log_m
    assert_target_moments(res.snapshots[1], MU, S)
    q = math.exp(-log_m)
    assert abs(info["acceptance_rate"] - q) < 4 * math.sqrt(q * (1 - q) / info["proposals"]) + 1e-3
    # the stage fixes the estimate for later batches
    assert params.after_first_batch(info).max_logit == info["max_logit"]


def test_drs_gamma_percentile_shifts_acceptance_monotonically():
    mu, s = 1.0, 0.5  # M ~ 3.9: most proposals have r < 1/2, so F's median is negative
    log_m = log_max_ratio(mu, s)

    def rate(pct):
        params = DRSParams(max_logit=log_m, gamma_percentile=pct, max_proposals_per_sample=50)
        info = run_drs(base_latents(5_000), None, log_ratio(mu, s), params, gen_rng(4), prior="normal").info
        return info["acceptance_rate"], info["gamma"]

    exact, gamma_none = rate(None)
    median, gamma_median = rate(50.0)
    assert gamma_none == 0.0 and gamma_median < 0  # subtracting a negative gamma raises every p
    assert median > exact
    # a higher percentile means a larger gamma, so fewer acceptances
    assert rate(20.0)[0] > median > rate(80.0)[0]


# ---------- DRS: counts, budget, bookkeeping ----------

def test_drs_network_evaluations_by_hand_when_everything_is_accepted():
    n = 4
    z0 = base_latents(n, 2)
    gen, logit = Counting(linear_tanh_generator()), Counting(lambda x: torch.zeros(x.shape[0], dtype=F64))
    params = DRSParams(burn_in=10, max_proposals_per_sample=3)  # constant logit: d = d_M, p = 1 - O(eps)
    res = run_drs(z0, gen, logit, params, gen_rng(5), prior="normal")
    # burn-in 10 (chunks 4 + 4 + 2) + one proposal batch G(z0), which is also the step-0 snapshot
    assert res.info["network_evaluations"] == {"generator_forward": 14, "discriminator_forward": 14,
                                          "generator_backward": 0, "discriminator_backward": 0}  # no gradients
    assert gen.samples == 14 and logit.samples == 14
    assert res.info["proposals"] == 4 and res.info["accepted"] == 4 and res.info["acceptance_rate"] == 1.0
    torch.testing.assert_close(res.snapshots[1], res.snapshots[0], rtol=0, atol=0)  # proposal order
    torch.testing.assert_close(res.final_latents, z0, rtol=0, atol=0)


def test_drs_budget_spent_fills_with_the_most_likely_proposals():
    n = 4
    z0 = base_latents(n, 2)
    gen = Counting(linear_tanh_generator())
    # d_M fixed at 0 and logits -40 + x_0 (|x_0| < 1): p ~ 1e-17, nothing is accepted; p still ranks the
    # proposals for the fill
    logit = Counting(lambda x: -40.0 + x[:, 0])
    params = DRSParams(max_logit=0.0, max_proposals_per_sample=3)
    res = run_drs(z0, gen, logit, params, gen_rng(6), prior="normal")
    info = res.info
    assert info["network_evaluations"] == {"generator_forward": 12, "discriminator_forward": 12,
                                          "generator_backward": 0, "discriminator_backward": 0}  # no gradients
    assert gen.samples == 12 and logit.samples == 12
    assert info["burn_in_samples"] == 0 and info["proposals"] == 12
    assert info["accepted"] == 0 and info["acceptance_rate"] == 0.0 and info["filled_without_acceptance"] == 4
    assert res.snapshots[1].shape == res.snapshots[0].shape == (n, 3)
    out = res.snapshots[1][:, 0]
    assert torch.all(out[:-1] >= out[1:])  # highest acceptance probability first
    torch.testing.assert_close(gen.fn(res.final_latents), res.snapshots[1], rtol=0, atol=1e-12)


def test_drs_data_space_counts_no_generator_and_has_no_latents():
    res = run_drs(base_latents(4), None, lambda x: torch.zeros(x.shape[0], dtype=F64), DRSParams(burn_in=10),
                  gen_rng(7), prior="normal")
    assert res.info["network_evaluations"] == {"generator_forward": 0, "discriminator_forward": 14,
                                          "generator_backward": 0, "discriminator_backward": 0}  # no gradients
    assert res.final_latents is None and res.snapshots[1].shape == (4, 1)


def test_drs_partial_acceptance_keeps_n_samples_and_latents_map_to_them():
    n = 64
    z0 = base_latents(n, 2)
    gen = linear_tanh_generator()
    logit = lambda x: 3.0 * x.sum(1)  # noqa: E731  (acceptance spread over (0, 1))
    for budget in (1, 2, 100):  # one batch, a spent budget, plenty
        res = run_drs(z0, gen, logit, DRSParams(burn_in=50, max_proposals_per_sample=budget), gen_rng(8),
                      prior="normal")
        info = res.info
        assert all(x.shape[0] == n for x in res.snapshots.values()) and set(res.snapshots) == {0, 1}
        assert info["accepted"] + info["filled_without_acceptance"] == n
        torch.testing.assert_close(gen(res.final_latents), res.snapshots[1], rtol=0, atol=1e-12)
        torch.testing.assert_close(res.snapshots[0], gen(z0), rtol=0, atol=1e-12)
        assert info["network_evaluations"]["generator_forward"] == 50 + info["proposals"]
    assert info["filled_without_acceptance"] == 0


def test_drs_is_deterministic_given_the_seed():
    z0, gen = base_latents(32, 2), linear_tanh_generator()
    logit = lambda x: 2.0 * x[:, 0]  # noqa: E731
    params = DRSParams(burn_in=100, gamma_percentile=90.0)
    a = run_drs(z0, gen, logit, params, gen_rng(9), prior="uniform")
    b = run_drs(z0, gen, logit, params, gen_rng(9), prior="uniform")
    c = run_drs(z0, gen, logit, params, gen_rng(10), prior="uniform")
    assert torch.equal(a.snapshots[1], b.snapshots[1]) and torch.equal(a.final_latents, b.final_latents)
    assert a.info == b.info
    assert not torch.equal(a.snapshots[1], c.snapshots[1])


def test_drs_raises_on_non_finite_logits():
    with pytest.raises(ValueError, match="non-finite logits"):
        run_drs(base_latents(4), None, lambda x: torch.full((x.shape[0],), float("nan")), DRSParams(burn_in=4),
                gen_rng(), prior="normal")


# ---------- Platt scaling ----------

def test_fit_platt_recovers_known_coefficients():
    # labels drawn from sigmoid(1.7 d - 0.4), d ~ N(0, 1.5^2), n = 20,000: the fit's standard errors (inverse
    # Fisher information) are 0.024 for a and 0.020 for b; tolerances ~4 standard errors
    rng = gen_rng(11)
    d = 1.5 * torch.randn(N, generator=rng, dtype=F64)
    label = torch.rand(N, generator=rng, dtype=F64) < torch.sigmoid(1.7 * d - 0.4)
    a, b = fit_platt(d[label], d[~label])
    assert isinstance(a, float) and isinstance(b, float)
    assert abs(a - 1.7) < 0.10 and abs(b + 0.4) < 0.08
    assert (a, b) == fit_platt(d[label], d[~label])  # deterministic


def test_fit_platt_on_two_gaussians():
    # real d ~ N(1, 1), generated d ~ N(0, 1), equal sizes: true log-odds d - 1/2, so (a, b) = (1, -0.5);
    # standard errors ~0.02 each at 20,000 per side, tolerance 0.1
    real = 1.0 + torch.randn(N, 1, generator=gen_rng(12), dtype=F64)
    identity_logit = lambda x: x.reshape(-1)  # noqa: E731
    a, b = fit_platt_on(real, None, identity_logit, gen_rng(13), prior="normal", latent_dim=1)
    assert abs(a - 1.0) < 0.1 and abs(b + 0.5) < 0.1
    assert (a, b) == fit_platt_on(real, None, identity_logit, gen_rng(13), prior="normal", latent_dim=1)


def test_fit_platt_on_with_a_generator_and_prepare():
    real = torch.tanh(base_latents(300, 2) @ torch.tensor([[1.0, -0.5, 0.3], [0.2, 0.8, -1.1]], dtype=F64) + 0.3)
    gen = linear_tanh_generator()
    gen32 = lambda z: gen(z.to(F64))  # noqa: E731  (the prior draws come in the default dtype)
    logit = lambda x: x.sum(1)  # noqa: E731
    params = MHGANParams().prepare(real, gen32, logit, gen_rng(14), prior="normal", latent_dim=2)
    a, b = params.platt
    assert a > 0 and math.isfinite(b)  # real samples have the larger logits here
    assert MHGANParams(calibration="none").prepare(real, gen32, logit, gen_rng(14), prior="normal",
                                                   latent_dim=2).platt is None


# ---------- MH-GAN ----------

def test_mhgan_chains_sample_the_target():
    # independence MH with w bounded by M ~ 1.77: the law after K steps is within (1 - 1/M)^K ~ 1e-22 of
    # the target in total variation, so only the sampling error counts; tolerance ~4 standard errors
    params = MHGANParams(calibration="none", k=60)
    res = run_mhgan(base_latents(), None, log_ratio(MU, S), params, gen_rng(15), prior="normal")
    assert_target_moments(res.snapshots[1], MU, S)
    info = res.info
    assert info["proposals"] == 60 * N and info["k"] == 60 and info["platt"] == (1.0, 0.0)
    assert 0 < info["acceptance_rate"] < 1 and info["chains_never_moved"] < N // 100


def test_mhgan_offset_b_cancels_and_platt_is_required():
    z0 = base_latents(500)
    none = run_mhgan(z0, None, log_ratio(MU, S), MHGANParams(calibration="none", k=5), gen_rng(16), prior="normal")
    shifted = run_mhgan(z0, None, log_ratio(MU, S), MHGANParams(platt=(1.0, 3.0), k=5), gen_rng(16),
                        prior="normal")
    assert torch.equal(none.snapshots[1], shifted.snapshots[1])  # the acceptance uses c' - c only
    assert shifted.info["platt"] == (1.0, 3.0) and shifted.info["calibration"] == "platt"
    with pytest.raises(ValueError, match="prepare"):
        run_mhgan(z0, None, log_ratio(MU, S), MHGANParams(k=5), gen_rng(), prior="normal")


def test_mhgan_network_evaluations_by_hand_and_latents():
    n, k = 4, 3
    z0 = base_latents(n, 2)
    gen, logit = Counting(linear_tanh_generator()), Counting(lambda x: x[:, 0])
    res = run_mhgan(z0, gen, logit, MHGANParams(calibration="none", k=k), gen_rng(17), prior="uniform")
    # the starts G(z0) (also the step-0 snapshot) + K proposals per chain
    assert res.info["network_evaluations"] == {"generator_forward": 16, "discriminator_forward": 16,
                                          "generator_backward": 0, "discriminator_backward": 0}  # no gradients
    assert gen.samples == 16 and logit.samples == 16
    assert all(x.shape[0] == n for x in res.snapshots.values())
    torch.testing.assert_close(gen.fn(res.final_latents), res.snapshots[1], rtol=0, atol=1e-12)
    torch.testing.assert_close(res.snapshots[0], gen.fn(z0), rtol=0, atol=1e-12)
    data = run_mhgan(z0, None, lambda x: x[:, 0], MHGANParams(calibration="none", k=k), gen_rng(17), prior="normal")
    assert data.info["network_evaluations"] == {"generator_forward": 0, "discriminator_forward": 16,
                                          "generator_backward": 0, "discriminator_backward": 0}  # no gradients
    assert data.final_latents is None


def test_mhgan_never_moves_when_proposals_are_hopeless_and_is_deterministic():
    z0 = base_latents(8, 2)
    gen = linear_tanh_generator()
    # the starts score 0, every proposal -1e4: acceptance exp(-1e4) = 0
    first = {"done": False}

    def logit(x):
        if not first["done"]:
            first["done"] = True
            return torch.zeros(x.shape[0], dtype=F64)
        return torch.full((x.shape[0],), -1e4, dtype=F64)

    res = run_mhgan(z0, gen, logit, MHGANParams(calibration="none", k=4), gen_rng(18), prior="normal")
    assert res.info["chains_never_moved"] == 8 and res.info["acceptance_rate"] == 0.0
    assert torch.equal(res.final_latents, z0) and torch.equal(res.snapshots[1], res.snapshots[0])

    params = MHGANParams(platt=(0.7, 0.1), k=10)
    a = run_mhgan(z0, gen, lambda x: 2 * x.sum(1), params, gen_rng(19), prior="normal")
    b = run_mhgan(z0, gen, lambda x: 2 * x.sum(1), params, gen_rng(19), prior="normal")
    assert torch.equal(a.snapshots[1], b.snapshots[1]) and a.info == b.info
