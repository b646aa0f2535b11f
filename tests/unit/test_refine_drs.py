"""DRS (refine/methods/drs.py) against exact answers: with proposal N(0, 1) and the exact log-ratio of N(0.5, 0.8^2) as
the logit, gamma = 0 must sample the target and accept 1 / M; the default shift is the 95th percentile of F
over the batch (the reference's, mh.py:96); the budget snapshots are exactly the outputs of smaller budgets;
passes are hand-counted (the burn-in charged to the first refined snapshot, not to the base sample)."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from dgflow_bench.refine.methods.drs import drs_score, run_drs
from dgflow_bench.refine.methods.drs import DRSParams

from known_ratio import (F64, MU, S, Counting, assert_target_moments, base_latents, counts, gen_rng,
                         linear_tanh_generator, log_max_ratio, log_ratio)

N = 20_000
EXACT = DRSParams(calibration="none", gamma_percentile=None)  # exact rejection sampling against d


def test_drs_score_is_exact_rejection_sampling_with_gamma_zero():
    # sigmoid(F) = r / (1 + r (1 - e^-eps)), r = exp(d - d_M): relative error below r * eps
    d_max, eps = 1.3, 1e-6
    d = d_max - torch.cat([torch.zeros(1), torch.logspace(-8, 1.5, 200)]).to(F64)
    p = torch.sigmoid(drs_score(d, d_max, eps))
    torch.testing.assert_close(p, torch.exp(d - d_max), rtol=2e-6, atol=0)


def test_defaults_are_the_references():
    params = DRSParams()
    assert (params.gamma_percentile, params.calibration, params.eps) == (95.0, "isotonic", 1e-6)
    assert params.max_proposals_per_sample == 640 and params.steps == 640


def test_drs_with_true_max_samples_the_target_and_accepts_one_over_m():
    log_m = log_max_ratio()
    params = dataclasses.replace(EXACT, max_logit=log_m, max_proposals_per_sample=50)
    res = run_drs(base_latents(N), None, log_ratio(), params, gen_rng(2), prior="normal")
    info = res.info
    assert info["filled_without_acceptance"] == 0 and info["accepted"] == N
    assert info["max_logit"] == log_m  # no proposal beats the true maximum
    assert_target_moments(res.snapshots[50], MU, S)
    # acceptance events over all proposals: binomial, tolerance 4 standard errors
    rate, q = info["acceptance_rate"], math.exp(-log_m)
    assert abs(rate - q) < 4 * math.sqrt(q * (1 - q) / info["proposals"])
    assert info["proposals"] == N * math.ceil(info["proposals_per_sample"])


def test_drs_with_burn_in_estimate_is_still_close():
    log_m = log_max_ratio()
    params = dataclasses.replace(EXACT, burn_in=5_000, max_proposals_per_sample=50)
    res = run_drs(base_latents(N), None, log_ratio(), params, gen_rng(3), prior="normal")
    info = res.info
    assert info["burn_in_samples"] == 5_000
    # the estimate is a sample maximum (never above the truth) near the flat top of a quadratic
    assert log_m - 1e-3 < info["max_logit"] <= log_m
    assert_target_moments(res.snapshots[50], MU, S)
    q = math.exp(-log_m)
    assert abs(info["acceptance_rate"] - q) < 4 * math.sqrt(q * (1 - q) / info["proposals"]) + 1e-3
    # the stage fixes the estimate for later batches
    assert params.after_first_batch(info).max_logit == info["max_logit"]


def test_the_default_shift_is_the_95th_percentile_of_f_over_the_batch():
    # a budget of one batch: the proposals are G(z0) itself, so F is known by hand
    z0, d_max = base_latents(1_000, seed=4), 10.0
    logit = lambda x: 1.5 * x.reshape(-1) - 1.0  # noqa: E731  (max over z0 below d_max = 10)
    res = run_drs(z0, None, logit, DRSParams(calibration="none", max_logit=d_max, max_proposals_per_sample=1),
                  gen_rng(5), prior="normal")
    f = drs_score(logit(z0), d_max, 1e-6).numpy()
    assert res.info["gamma"] == pytest.approx(float(np.percentile(f, 95)), rel=1e-12)  # mh.py:123-125
    # after the shift about 5% of proposals have p >= 1/2: the top of F
    p = torch.sigmoid(torch.from_numpy(f) - res.info["gamma"])
    assert int((p >= 0.5).sum()) == 50


def test_drs_gamma_percentile_shifts_acceptance_monotonically():
    mu, s = 1.0, 0.5  # M ~ 3.9: most proposals have r < 1/2, so F's median is negative
    log_m = log_max_ratio(mu, s)

    def rate(pct):
        params = DRSParams(calibration="none", max_logit=log_m, gamma_percentile=pct, max_proposals_per_sample=50)
        info = run_drs(base_latents(5_000), None, log_ratio(mu, s), params, gen_rng(4), prior="normal").info
        return info["acceptance_rate"], info["gamma"]

    exact, gamma_none = rate(None)
    median, gamma_median = rate(50.0)
    assert gamma_none == 0.0 and gamma_median < 0  # subtracting a negative gamma raises every p
    assert median > exact
    # a higher percentile means a larger gamma, so fewer acceptances
    assert rate(20.0)[0] > median > rate(80.0)[0] > rate(95.0)[0]


# ---------- counts, budget, snapshots ----------

def test_drs_network_evaluations_by_hand_when_everything_is_accepted():
    n = 4
    z0 = base_latents(n, 2)
    gen, logit = Counting(linear_tanh_generator()), Counting(lambda x: torch.zeros(x.shape[0], dtype=F64))
    params = dataclasses.replace(EXACT, burn_in=10, max_proposals_per_sample=3)  # d = d_M: p = 1 - O(eps)
    res = run_drs(z0, gen, logit, params, gen_rng(5), prior="normal")
    # G(z0) (step 0, its forward only), burn-in 10 (chunks 4 + 4 + 2), then the batch G(z0) judged by d
    assert res.info["evaluations_by_step"] == {0: counts(gf=4), 2: counts(gf=14, df=14), 3: counts(gf=14, df=14)}
    assert res.info["network_evaluations"] == counts(gf=14, df=14)  # no gradients
    assert res.info["calibration_evaluations"] == counts()  # nothing fitted
    assert gen.samples == 14 and logit.samples == 14
    assert res.info["proposals"] == 4 and res.info["accepted"] == 4 and res.info["acceptance_rate"] == 1.0
    torch.testing.assert_close(res.snapshots[3], res.snapshots[0], rtol=0, atol=0)  # proposal order
    torch.testing.assert_close(res.final_latents, z0, rtol=0, atol=0)


def test_drs_budget_spent_fills_with_the_most_likely_proposals():
    n = 4
    z0 = base_latents(n, 2)
    gen = Counting(linear_tanh_generator())
    # d_M fixed at 0 and logits -40 + x_0 (|x_0| < 1): p ~ 1e-17, nothing is accepted; p still ranks the
    # proposals for the fill
    logit = Counting(lambda x: -40.0 + x[:, 0])
    params = DRSParams(calibration="none", gamma_percentile=None, max_logit=0.0, max_proposals_per_sample=3,
                       snapshot_at=())
    res = run_drs(z0, gen, logit, params, gen_rng(6), prior="normal")
    info = res.info
    assert info["evaluations_by_step"] == {0: counts(gf=4), 3: counts(gf=12, df=12)}
    assert gen.samples == 12 and logit.samples == 12
    assert info["burn_in_samples"] == 0 and info["proposals"] == 12
    assert info["accepted"] == 0 and info["acceptance_rate"] == 0.0 and info["filled_without_acceptance"] == 4
    assert res.snapshots[3].shape == res.snapshots[0].shape == (n, 3)
    out = res.snapshots[3][:, 0]
    assert torch.all(out[:-1] >= out[1:])  # highest acceptance probability first
    torch.testing.assert_close(gen.fn(res.final_latents), res.snapshots[3], rtol=0, atol=1e-12)


def test_each_budget_snapshot_is_the_output_of_that_budget_and_charged_its_passes():
    n, budgets = 64, (1, 2, 5)
    z0, gen = base_latents(n, 2), linear_tanh_generator()
    logit = lambda x: 3.0 * x.sum(1)  # noqa: E731  (acceptance spread over (0, 1))
    params = DRSParams(calibration="none", gamma_percentile=80.0, burn_in=50, max_proposals_per_sample=40,
                       snapshot_at=budgets + (900,))  # 900: past the budget, dropped
    res = run_drs(z0, gen, logit, params, gen_rng(8), prior="normal")
    assert list(res.snapshots) == [0, 1, 2, 5, 40]
    by_step = res.info["evaluations_by_step"]
    assert by_step[0] == counts(gf=n)  # the base sample: no burn-in
    for b in budgets:
        alone = run_drs(z0, gen, logit, dataclasses.replace(params, max_proposals_per_sample=b, snapshot_at=()),
                        gen_rng(8), prior="normal")
        assert torch.equal(res.snapshots[b], alone.snapshots[b])
        assert by_step[b] == alone.info["network_evaluations"]
        assert res.info["filled_by_step"][b] == alone.info["filled_without_acceptance"]
    assert by_step[1] == counts(gf=50 + n, df=50 + n)  # the burn-in, charged to the first refined snapshot
    assert res.info["filled_by_step"][1] > res.info["filled_by_step"][5] >= res.info["filled_without_acceptance"]
    # budget 1 is G(z0) reordered: the accepted first, then the rest by acceptance probability
    assert sorted(res.snapshots[1][:, 0].tolist()) == sorted(res.snapshots[0][:, 0].tolist())


def test_budgets_past_a_full_output_repeat_it_at_its_final_counts():
    z0 = base_latents(8, 2)
    constant = lambda x: torch.zeros(x.shape[0], dtype=F64)  # noqa: E731  (all accepted in the first batch)
    res = run_drs(z0, linear_tanh_generator(), constant, dataclasses.replace(EXACT, burn_in=8), gen_rng(9),
                  prior="normal")
    assert list(res.snapshots) == [0, 2, 8, 32, 640] and res.info["proposals_per_sample"] == 1
    for b in (2, 8, 32, 640):
        assert torch.equal(res.snapshots[b], res.snapshots[640])
        assert res.info["evaluations_by_step"][b] == counts(gf=16, df=16)


def test_drs_data_space_counts_no_generator_and_has_no_latents():
    res = run_drs(base_latents(4), None, lambda x: torch.zeros(x.shape[0], dtype=F64),
                  DRSParams(calibration="none", burn_in=10), gen_rng(7), prior="normal")
    assert res.info["network_evaluations"] == counts(df=14)
    assert res.final_latents is None and res.snapshots[640].shape == (4, 1)


def test_drs_partial_acceptance_keeps_n_samples_and_latents_map_to_them():
    n = 64
    z0 = base_latents(n, 2)
    gen = linear_tanh_generator()
    logit = lambda x: 3.0 * x.sum(1)  # noqa: E731  (acceptance spread over (0, 1))
    for budget in (1, 2, 100):  # one batch, a spent budget, plenty
        params = dataclasses.replace(EXACT, burn_in=50, max_proposals_per_sample=budget)
        res = run_drs(z0, gen, logit, params, gen_rng(8), prior="normal")
        info = res.info
        assert all(x.shape[0] == n for x in res.snapshots.values()) and max(res.snapshots) == budget
        assert info["accepted"] + info["filled_without_acceptance"] == n
        torch.testing.assert_close(gen(res.final_latents), res.snapshots[budget], rtol=0, atol=1e-12)
        torch.testing.assert_close(res.snapshots[0], gen(z0), rtol=0, atol=1e-12)
        assert info["network_evaluations"]["generator_forward"] == 50 + info["proposals"]
    assert info["filled_without_acceptance"] == 0


def test_drs_is_deterministic_given_the_seed():
    z0, gen = base_latents(32, 2), linear_tanh_generator()
    logit = lambda x: 2.0 * x[:, 0]  # noqa: E731
    params = DRSParams(calibration="platt", platt=(0.7, 0.2), burn_in=100, gamma_percentile=90.0)
    a = run_drs(z0, gen, logit, params, gen_rng(9), prior="uniform")
    b = run_drs(z0, gen, logit, params, gen_rng(9), prior="uniform")
    c = run_drs(z0, gen, logit, params, gen_rng(10), prior="uniform")
    assert torch.equal(a.snapshots[640], b.snapshots[640]) and torch.equal(a.final_latents, b.final_latents)
    assert a.info == b.info and a.info["calibration"] == {"kind": "platt", "a": 0.7, "b": 0.2}
    assert not torch.equal(a.snapshots[640], c.snapshots[640])


def test_drs_refuses_non_finite_logits_and_an_unfitted_calibration():
    with pytest.raises(ValueError, match="non-finite logits"):
        run_drs(base_latents(4), None, lambda x: torch.full((x.shape[0],), float("nan")),
                DRSParams(calibration="none", burn_in=4), gen_rng(), prior="normal")
    with pytest.raises(ValueError, match="prepare"):
        run_drs(base_latents(4), None, log_ratio(), DRSParams(burn_in=4), gen_rng(), prior="normal")
