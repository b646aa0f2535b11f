"""DRS and MH-GAN with each calibration on a known ratio: proposal N(0, 1), target N(0.5, 0.8^2), and as the
discriminator a deliberately mis-scaled log-ratio d = 2 log(p_data / p_G) + 1. The calibration is fitted as
the refine stage fits it (``prepare`` on real rows against as many generator samples); after it, exact DRS
(gamma = 0) and MH-GAN (real start, the reference's) must sample the target (KS test), and without it (none)
they must not: the test sees the calibration at work, not just the sampler."""

import dataclasses
import math

import pytest
import torch
from scipy import stats

from dgflow_bench.refine.methods.drs import DRSParams
from dgflow_bench.refine.methods.mhgan import MHGANParams

from known_ratio import MU, S, base_latents, gen_rng, log_ratio, target_samples

N, M = 2_000, 50_000  # outputs; calibration rows (isotonic's error falls as M^(-1/3): 50,000 keeps it below KS's reach)
TRUE = log_ratio()


def miscaled(x):
    return 2.0 * TRUE(x) + 1.0


def run(params, calibration):
    params = dataclasses.replace(params, calibration=calibration, calibration_size=M)
    params = params.prepare(target_samples(M), None, miscaled, gen_rng(4), prior="normal", latent_dim=1)
    res = params.run(base_latents(N), None, miscaled, gen_rng(5), prior="normal")
    return res, stats.kstest(res.snapshots[max(res.snapshots)].reshape(-1).numpy(), stats.norm(MU, S).cdf).pvalue


SAMPLERS = {"drs": DRSParams(gamma_percentile=None, burn_in=5_000), "mh-gan": MHGANParams(k=60)}


@pytest.mark.parametrize("calibration", ["platt", "isotonic"])
@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_after_calibration_the_output_follows_the_target(sampler, calibration):
    res, p = run(SAMPLERS[sampler], calibration)
    assert p > 0.01, f"{sampler} with {calibration}: KS p = {p:.2g}"
    assert res.info["calibration"]["kind"] == calibration
    # the fit's passes, apart from the refinement's: M real and M generated rows through d (data space)
    assert res.info["calibration_evaluations"]["discriminator_forward"] == 2 * M
    if calibration == "platt":  # d = 2 t + 1 with t the true log odds: a = 1/2, b = -1/2
        assert abs(res.info["calibration"]["a"] - 0.5) < 0.02 and abs(res.info["calibration"]["b"] + 0.5) < 0.02


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_without_calibration_the_miscaled_logit_misses_the_target(sampler):
    res, p = run(SAMPLERS[sampler], "none")
    assert p < 1e-6, f"{sampler} with none: KS p = {p:.2g}"
    # MH-GAN still reads the real rows for its chain starts (their logits: M passes), DRS reads nothing
    expected = M if sampler == "mh-gan" else 0
    assert res.info["calibration_evaluations"]["discriminator_forward"] == expected


def test_the_reference_drs_shift_is_not_exact_but_the_exact_row_is():
    # the 95th-percentile shift trades exactness for acceptance: on the true ratio it misses the target
    # that gamma = 0 hits (the exact row stays available as gamma_percentile: null)
    shifted, p_shifted = run(DRSParams(burn_in=5_000), "platt")
    exact, p_exact = run(DRSParams(burn_in=5_000, gamma_percentile=None), "platt")
    assert p_exact > 0.01 and p_shifted < 1e-6
    assert shifted.info["proposals_per_sample"] > exact.info["proposals_per_sample"] > 1
    assert math.isfinite(shifted.info["gamma"]) and exact.info["gamma"] == 0.0
