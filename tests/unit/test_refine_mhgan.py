"""MH-GAN (refine/methods/mhgan.py) against exact answers: with proposal N(0, 1) and the exact log-ratio of
N(0.5, 0.8^2) as the logit, the chains sample the target from either start; the reference's start and restart rule
(demo_mhgan.py:155-187) on hand-made scores; snapshots at intermediate K are exactly the outputs of those K;
hand-counted passes."""

import dataclasses

import pytest
import torch

from dgflow_bench.refine.calibration import Calibration, CalibrationFit
from dgflow_bench.refine.methods.mhgan import run_mhgan
from dgflow_bench.refine.methods.mhgan import MHGANParams

from known_ratio import (F64, MU, S, Counting, assert_target_moments, base_latents, counts, gen_rng,
                         linear_tanh_generator, log_ratio, target_samples)

N = 20_000


def with_real_starts(params: MHGANParams, real_logits, calibration=Calibration("none")) -> MHGANParams:
    """The parameters as prepare() leaves them, with these real-row logits (no fit, no passes)."""
    logits = torch.as_tensor(real_logits, dtype=F64).reshape(-1)
    return dataclasses.replace(params, fitted=CalibrationFit(calibration, logits, counts()))


def test_defaults_are_the_references():
    params = MHGANParams()
    assert (params.k, params.start, params.calibration) == (640, "real", "isotonic") and params.steps == 640


@pytest.mark.parametrize("start", ["real", "base"])
def test_mhgan_chains_sample_the_target(start):
    # independence MH with w bounded by M ~ 1.77: the law after K steps is within (1 - 1/M)^K ~ 1e-22 of
    # the target in total variation, so only the sampling error counts; tolerance ~4 standard errors
    params = MHGANParams(calibration="none", k=60, start=start)
    if start == "real":
        params = with_real_starts(params, log_ratio()(target_samples(2_000)))
    res = run_mhgan(base_latents(N), None, log_ratio(), params, gen_rng(15), prior="normal")
    assert_target_moments(res.snapshots[60], MU, S)
    info = res.info
    assert info["proposals"] == 60 * N and info["k"] == 60 and info["calibration"] == {"kind": "none"}
    assert 0 < info["acceptance_rate"] < 1 and info["chains_never_moved"] < N // 100
    assert info["chains_restarted"] < N // 100  # a real start is rarely better than all 60 proposals


def test_mhgan_offset_b_cancels():
    z0 = base_latents(500)
    none = run_mhgan(z0, None, log_ratio(), MHGANParams(calibration="none", k=5, start="base"), gen_rng(16),
                     prior="normal")
    shifted = run_mhgan(z0, None, log_ratio(), MHGANParams(calibration="platt", platt=(1.0, 3.0), k=5, start="base"),
                        gen_rng(16), prior="normal")
    assert torch.equal(none.snapshots[5], shifted.snapshots[5])  # the acceptance uses c' - c only
    assert shifted.info["calibration"] == {"kind": "platt", "a": 1.0, "b": 3.0}
    with pytest.raises(ValueError, match="prepare"):
        run_mhgan(z0, None, log_ratio(), MHGANParams(k=5), gen_rng(), prior="normal")  # isotonic, unfitted
    with pytest.raises(ValueError, match="prepare"):  # a real start needs the real rows' logits
        run_mhgan(z0, None, log_ratio(), MHGANParams(calibration="none", k=5), gen_rng(), prior="normal")


def hopeless_after_first(x):
    """Logit 0 for the first call's samples, -1e4 afterwards: a state at 0 never accepts a later proposal."""
    hopeless_after_first.calls += 1
    return torch.full((x.shape[0],), 0.0 if hopeless_after_first.calls == 1 else -1e4, dtype=F64)


def test_a_chain_that_never_accepts_from_its_real_start_restarts_at_g_z0():
    n, gen = 8, linear_tanh_generator()
    z0 = base_latents(n, 2)
    # the real start scores 1e4: nothing is ever accepted, every chain restarts at its first generator sample
    # G(z0) (logit 0, the first proposal), and no later proposal (-1e4) beats that: the output is G(z0)
    hopeless_after_first.calls = 0
    params = with_real_starts(MHGANParams(calibration="none", k=4, snapshot_at=()), [1e4])
    res = run_mhgan(z0, gen, hopeless_after_first, params, gen_rng(18), prior="normal")
    assert res.info["chains_restarted"] == n and res.info["chains_never_moved"] == n
    assert res.info["acceptance_rate"] == 0.0
    assert torch.equal(res.final_latents, z0) and torch.equal(res.snapshots[4], res.snapshots[0])
    # a real start at -1e4 accepts its first proposal G(z0) at once: no restart, and then nothing beats it
    hopeless_after_first.calls = 0
    res = run_mhgan(z0, gen, hopeless_after_first, with_real_starts(params, [-1e4]), gen_rng(18), prior="normal")
    assert res.info["chains_restarted"] == 0 and res.info["chains_never_moved"] == 0
    assert res.info["acceptance_rate"] == pytest.approx(1 / 4)  # the first of 4 proposals, every chain
    assert torch.equal(res.final_latents, z0)


def test_restarted_chains_still_sample_the_target():
    # half the real starts score 50 (better than any proposal: those chains restart at G(z0)), half -50
    # (they move at once); either way the output must follow the target, and about half the chains restart
    params = with_real_starts(MHGANParams(calibration="none", k=60), [50.0, -50.0])
    res = run_mhgan(base_latents(N), None, log_ratio(), params, gen_rng(19), prior="normal")
    assert abs(res.info["chains_restarted"] - N / 2) < 4 * (N / 4) ** 0.5  # binomial(N, 1/2), 4 sd
    assert_target_moments(res.snapshots[60], MU, S)


def test_with_a_real_start_k_equal_one_returns_g_z0():
    z0 = base_latents(300)
    params = with_real_starts(MHGANParams(calibration="none", k=10, snapshot_at=(1,)),
                              log_ratio()(target_samples(100)))
    res = run_mhgan(z0, None, log_ratio(), params, gen_rng(20), prior="normal")
    assert torch.equal(res.snapshots[1], res.snapshots[0])


@pytest.mark.parametrize("start", ["real", "base"])
def test_each_snapshot_is_the_output_of_that_chain_length_and_charged_its_passes(start):
    n, kept = 16, (1, 3, 7)
    z0, gen = base_latents(n, 2), linear_tanh_generator()
    logit = lambda x: 2.0 * x.sum(1)  # noqa: E731
    params = MHGANParams(calibration="none", k=12, start=start, snapshot_at=kept + (12, 50))  # 12, 50: the end
    if start == "real":
        params = with_real_starts(params, torch.linspace(-3, 3, 40))
    res = run_mhgan(z0, gen, logit, params, gen_rng(21), prior="normal")
    assert list(res.snapshots) == [0, 1, 3, 7, 12]
    first = 0 if start == "real" else 1  # a real start's first proposal is G(z0): no forward of its own
    by_step = res.info["evaluations_by_step"]
    assert by_step[0] == counts(gf=n)
    for k in kept:
        alone = run_mhgan(z0, gen, logit, dataclasses.replace(params, k=k, snapshot_at=()), gen_rng(21),
                          prior="normal")
        assert torch.equal(res.snapshots[k], alone.snapshots[k])
        assert by_step[k] == alone.info["network_evaluations"] == counts(gf=n * (first + k), df=n * (first + k))
    assert res.info["network_evaluations"] == counts(gf=n * (first + 12), df=n * (first + 12))


def test_mhgan_network_evaluations_by_hand_and_latents():
    n, k = 4, 3
    z0 = base_latents(n, 2)
    gen, logit = Counting(linear_tanh_generator()), Counting(lambda x: x[:, 0])
    res = run_mhgan(z0, gen, logit, MHGANParams(calibration="none", k=k, start="base"), gen_rng(17), prior="uniform")
    # the starts G(z0) (also the step-0 snapshot) + K proposals per chain, all through G and d
    assert res.info["network_evaluations"] == counts(gf=16, df=16)
    assert gen.samples == 16 and logit.samples == 16
    assert all(x.shape[0] == n for x in res.snapshots.values())
    torch.testing.assert_close(gen.fn(res.final_latents), res.snapshots[3], rtol=0, atol=1e-12)
    torch.testing.assert_close(res.snapshots[0], gen.fn(z0), rtol=0, atol=1e-12)
    data = run_mhgan(z0, None, lambda x: x[:, 0], MHGANParams(calibration="none", k=k, start="base"), gen_rng(17),
                     prior="normal")
    assert data.info["network_evaluations"] == counts(df=16) and data.final_latents is None
    # the real start: K generator samples per chain, the first being G(z0); the fit's passes reported apart
    fitted = dataclasses.replace(MHGANParams(calibration="none", k=k),
                                 fitted=CalibrationFit(Calibration("none"), torch.zeros(5, dtype=F64), counts(df=5)))
    real = run_mhgan(z0, gen, logit, fitted, gen_rng(17), prior="uniform")
    assert real.info["network_evaluations"] == counts(gf=12, df=12)
    assert real.info["calibration_evaluations"] == counts(df=5)


def test_mhgan_is_deterministic_given_the_seed():
    z0, gen = base_latents(8, 2), linear_tanh_generator()
    params = with_real_starts(MHGANParams(calibration="platt", platt=(0.7, 0.1), k=10), [0.0, 1.0, 2.0],
                              Calibration("platt", platt=(0.7, 0.1)))
    a = run_mhgan(z0, gen, lambda x: 2 * x.sum(1), params, gen_rng(19), prior="normal")
    b = run_mhgan(z0, gen, lambda x: 2 * x.sum(1), params, gen_rng(19), prior="normal")
    c = run_mhgan(z0, gen, lambda x: 2 * x.sum(1), params, gen_rng(20), prior="normal")
    assert torch.equal(a.snapshots[10], b.snapshots[10]) and a.info == b.info
    assert not torch.equal(a.snapshots[10], c.snapshots[10])
