"""Network evaluations per snapshot (refine/common.Counter): every method's info holds the samples that passed
through each pass of each network, in total and cumulatively at each snapshot step. Expected counts are
derived by hand from each algorithm (n samples, S steps, snapshots every 2), then checked against the methods
and, for DGflow and DOT, against an independent count by module hooks."""

import pytest
import torch

from dgflow_bench.refine.common import EVALUATION_KEYS, snapshot_steps
from dgflow_bench.refine.methods.base import BaseParams
from dgflow_bench.refine.methods.ddls import DDLSParams
from dgflow_bench.refine.methods.dgflow import DGflowParams
from dgflow_bench.refine.methods.dot import DOTParams
from dgflow_bench.refine.methods.drs import DRSParams
from dgflow_bench.refine.methods.mhgan import MHGANParams
from pass_hooks import Hooked

N, S, EVERY = 8, 4, 2  # snapshots at 0, 2, 4


def counts(gf=0, gb=0, df=0, db=0):
    return {"generator_forward": gf, "generator_backward": gb, "discriminator_forward": df,
            "discriminator_backward": db}


def networks():
    torch.manual_seed(0)
    generator = torch.nn.Linear(2, 2).requires_grad_(False)
    critic = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).requires_grad_(False)
    return generator, critic


def logit_of(critic):
    return lambda x: critic(x).reshape(-1)


def latents(prior="normal", seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(N, 2, generator=g) * 2 - 1 if prior == "uniform" else torch.randn(N, 2, generator=g)


def run(params, prior="normal", latent=True, logit=None):
    generator, critic = networks()
    return params.run(latents(prior), generator if latent else None, logit or logit_of(critic),
                      torch.Generator().manual_seed(2), prior=prior)


def check_contract(res):
    by_step = res.info["evaluations_by_step"]
    assert list(by_step) == sorted(res.snapshots)  # one entry per snapshot step, in order
    assert all(set(v) == set(EVALUATION_KEYS) for v in [res.info["network_evaluations"], *by_step.values()])
    steps = sorted(by_step)
    for a, b in zip(steps, steps[1:]):  # cumulative: never decreasing
        assert all(by_step[a][key] <= by_step[b][key] for key in EVALUATION_KEYS)
    assert by_step[steps[-1]] == res.info["network_evaluations"]  # the final entry is the run's totals


# ---------- hand counts ----------
# Iteration k (0-based) evaluates the iterate y_k; a snapshot at step k comes from that forward, so it
# holds k full iterations plus the generator forward of iteration k. Step 0 is x0 = G(z0), in latent space the
# first iteration's own forward: S steps cost S + 1 generator forwards per sample (G(z0) is never redone).

def test_dgflow_latent_counts():
    res = run(DGflowParams(space="latent", steps=S, snapshot_every=EVERY))
    # every iteration: G forward, d forward, d backward, G backward; the final G(z_S) one extra G forward
    assert res.info["evaluations_by_step"] == {
        0: counts(gf=N),
        2: counts(gf=N * (2 + 1), gb=N * 2, df=N * 2, db=N * 2),
        4: counts(gf=N * S + N, gb=N * S, df=N * S, db=N * S),
    }
    check_contract(res)


def test_dgflow_data_counts():
    res = run(DGflowParams(space="data", steps=S, snapshot_every=EVERY))
    # G only for x0; each iteration one d forward and one d backward; snapshots are the iterates themselves
    assert res.info["evaluations_by_step"] == {
        0: counts(gf=N),
        2: counts(gf=N, df=N * 2, db=N * 2),
        4: counts(gf=N, df=N * S, db=N * S),
    }
    check_contract(res)


def test_dot_latent_counts_with_and_without_the_k_estimate():
    params = DOTParams(space="latent", steps=S, snapshot_every=EVERY, k_eff_pairs=10, k_eff_repeats=2,
                       k_eff_scope="run")
    first = run(params)
    k_est = N  # K_eff: d(G(z0)) before the first iteration (G forward and d forward of the whole batch)
    # iterations as DGflow's (step 0: the first one's G forward alone, not the K estimate before it); at the
    # end G(z_S) and d(G(z_S)) for the closing objective
    assert first.info["evaluations_by_step"] == {
        0: counts(gf=N),
        2: counts(gf=k_est + N * (2 + 1), gb=N * 2, df=k_est + N * 2, db=N * 2),
        4: counts(gf=k_est + N * S + N, gb=N * S, df=k_est + N * S + N, db=N * S),
    }
    check_contract(first)
    # later batches of a run reuse the first batch's K: no estimate forwards
    later = run(params.after_first_batch(first.info))
    assert later.info["network_evaluations"] == counts(gf=N * S + N, gb=N * S, df=N * S + N, db=N * S)
    check_contract(later)


def test_dot_data_counts():
    res = run(DOTParams(space="data", steps=S, snapshot_every=EVERY, k_eff_pairs=10))
    # K estimate: d(x0) (no G); iterations: d forward + d backward; closing objective: d(x_S)
    assert res.info["evaluations_by_step"] == {
        0: counts(gf=N),
        2: counts(gf=N, df=N + N * 2, db=N * 2),
        4: counts(gf=N, df=N + N * S + N, db=N * S),
    }
    check_contract(res)


def test_ddls_counts():
    res = run(DDLSParams(steps=S, snapshot_every=EVERY))
    # the energy's d(G(z)) term and its gradient: one forward and one backward of each network per step
    assert res.info["evaluations_by_step"] == {
        0: counts(gf=N),
        2: counts(gf=N * (2 + 1), gb=N * 2, df=N * 2, db=N * 2),
        4: counts(gf=N * S + N, gb=N * S, df=N * S, db=N * S),
    }
    check_contract(res)


def test_ddls_mala_counts():
    res = run(DDLSParams(steps=S, snapshot_every=EVERY, mala=True))
    # the energy at z0 (its forward is step 0's G(z0)), then one evaluation per proposal; snapshots are the
    # cached states at the step's start
    start = N
    assert res.info["evaluations_by_step"] == {
        0: counts(gf=N),
        2: counts(gf=start + N * 2, gb=start + N * 2, df=start + N * 2, db=start + N * 2),
        4: counts(gf=start + N * S, gb=start + N * S, df=start + N * S, db=start + N * S),
    }
    check_contract(res)


def test_base_counts():
    res = run(BaseParams())
    assert res.info["evaluations_by_step"] == {0: counts(gf=N)}
    check_contract(res)
    assert run(BaseParams(), latent=False).info["network_evaluations"] == counts()


def test_drs_counts_with_burn_in_and_everything_accepted():
    burn_in = 5  # one chunk (chunks are n = 8 long)
    constant = lambda x: torch.zeros(x.shape[0])  # noqa: E731  (d = d_M: p = 1 - O(eps), all accepted)
    params = DRSParams(calibration="none", gamma_percentile=None, burn_in=burn_in, max_proposals_per_sample=3,
                       snapshot_at=())
    res = run(params, logit=constant)
    assert res.info["accepted"] == N and res.info["proposals"] == N
    # step 0 is G(z0), charged its forward only; the burn-in (after it) goes to the first refined snapshot
    assert res.info["evaluations_by_step"] == {
        0: counts(gf=N),
        3: counts(gf=burn_in + N, df=burn_in + N),
    }
    check_contract(res)


def test_drs_counts_when_the_budget_is_spent():
    budget = 3
    hopeless = lambda x: -40.0 + x[:, 0]  # noqa: E731  (p ~ 1e-17 against the fixed d_M = 0)
    res = run(DRSParams(calibration="none", gamma_percentile=None, max_logit=0.0, max_proposals_per_sample=budget,
                        snapshot_at=(1,)), logit=hopeless)
    assert res.info["filled_without_acceptance"] == N
    assert res.info["evaluations_by_step"] == {
        0: counts(gf=N),
        1: counts(gf=N, df=N),
        budget: counts(gf=N * budget, df=N * budget),
    }
    check_contract(res)


def test_mhgan_counts():
    k = 3
    res = run(MHGANParams(calibration="none", start="base", k=k, snapshot_at=(1,)))
    # the chains' starts G(z0) (step 0), their logits, then k proposals per chain, each G and d forward
    assert res.info["evaluations_by_step"] == {
        0: counts(gf=N),
        1: counts(gf=N * 2, df=N * 2),
        k: counts(gf=N * (1 + k), df=N * (1 + k)),
    }
    check_contract(res)
    data = run(MHGANParams(calibration="none", start="base", k=k), latent=False)
    assert data.info["network_evaluations"] == counts(df=N * (1 + k))


@pytest.mark.parametrize("params", [
    DGflowParams(steps=5, snapshot_every=2, gamma=0.0), DGflowParams(space="data", steps=0),
    DOTParams(steps=0, k_eff_pairs=10), DOTParams(steps=3, snapshot_every=5, k_eff=2.0),
    DDLSParams(steps=5, snapshot_every=3), DDLSParams(steps=0, mala=True),
], ids=["dgflow-5", "dgflow-0", "dot-0", "dot-3", "ddls-5", "mala-0"])
def test_every_snapshot_step_has_counts_and_the_last_is_the_total(params):
    res = run(params)
    assert sorted(res.snapshots) == snapshot_steps(params.steps, params.snapshot_every)
    check_contract(res)


# ---------- an independent count ----------


@pytest.mark.parametrize("params", [
    DGflowParams(space="latent", steps=S, snapshot_every=EVERY),
    DGflowParams(space="data", steps=S, snapshot_every=EVERY),
    DOTParams(space="latent", steps=S, snapshot_every=EVERY, k_eff_pairs=10),
    DOTParams(space="data", steps=S, snapshot_every=EVERY, k_eff_pairs=10),
], ids=["dgflow-latent", "dgflow-data", "dot-latent", "dot-data"])
def test_module_hooks_agree_with_the_reported_counts(params):
    generator, critic = networks()
    g_hooks, d_hooks = Hooked(generator), Hooked(critic)
    res = params.run(latents(), generator, logit_of(critic), torch.Generator().manual_seed(2), prior="normal")
    total = res.info["network_evaluations"]
    assert total["generator_forward"] == g_hooks.forward > 0
    assert total["discriminator_forward"] == d_hooks.forward > 0
    assert total["discriminator_backward"] == d_hooks.backward > 0
    # the generator's input needs no gradient in data space, so its hook fires only in latent space
    assert total["generator_backward"] == g_hooks.backward == (N * S if params.space == "latent" else 0)


@pytest.mark.parametrize("params", [
    DGflowParams(space="latent", steps=S, snapshot_every=EVERY), DOTParams(space="latent", steps=S, k_eff_pairs=10),
    DDLSParams(steps=S, snapshot_every=EVERY), DDLSParams(steps=S, snapshot_every=EVERY, mala=True),
], ids=["dgflow", "dot", "ddls", "mala"])
def test_the_base_snapshot_taken_from_the_first_step_is_exactly_g_of_z0(params):
    generator, _ = networks()
    res = run(params)
    with torch.no_grad():
        expected = generator(latents())
    assert torch.equal(res.snapshots[0], expected)
    assert res.info["network_evaluations"]["generator_forward"] == N * (S + 1) + (N if params.kind == "dot" else 0)
