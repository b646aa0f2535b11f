"""Latent support of bounded priors (refine/support.py) in DGflow and DDLS: clip keeps every latent in the
box, reflect folds it back, none lets it leave; the share of latents that hit the boundary is recorded per
snapshot, and the final latents come back with the result."""

import pytest
import torch

from dgflow_bench.refine.methods.ddls import run_ddls
from dgflow_bench.refine.methods.dgflow import run_dgflow
from dgflow_bench.refine.support import apply_support, reflect_into_box
from dgflow_bench.refine.methods.ddls import DDLSParams
from dgflow_bench.refine.methods.dgflow import DGflowParams

F64 = torch.float64
PUSH = torch.tensor([3.0, 0.0], dtype=F64)  # d(z) = 3 z_1: the drift pushes every latent towards z_1 = +1


def push(z):
    return z @ PUSH


def flow(support, prior="uniform", steps=6, eta=0.02, gamma=0.0):
    z0 = torch.linspace(-0.9, 0.9, 50, dtype=F64).reshape(25, 2)
    params = DGflowParams(f="KL", eta=eta, gamma=gamma, steps=steps, snapshot_every=2, support=support)
    return z0, run_dgflow(z0, None, push, params, torch.Generator().manual_seed(0), prior=prior)


def test_clip_keeps_latents_in_the_box_and_records_hits():
    z0, res = flow("clip")
    z = res.final_latents
    assert z.abs().max() <= 1.0
    # deterministic flow: z_1 moves by eta * 3 per step, so after k steps min(1, z_1 + 0.06 k) exactly
    for k, frac in res.info["boundary_hit_fraction"].items():
        expected = z0[:, 0] + 0.06 * k
        assert torch.allclose(res.snapshots[k][:, 0], expected.clamp(max=1.0))
        assert frac == pytest.approx(float((expected > 1.0).double().mean()))
    assert res.info["support"] == "clip"
    assert list(res.info["boundary_hit_fraction"]) == [0, 2, 4, 6]


def test_none_lets_latents_leave_and_counts_them():
    z0, res = flow("none")
    expected = z0[:, 0] + 0.06 * 6
    assert torch.allclose(res.final_latents[:, 0], expected)
    outside = float((expected > 1.0).double().mean())
    assert outside > 0 and res.info["boundary_hit_fraction"][6] == pytest.approx(outside)


def test_reflect_folds_back():
    z0, res = flow("reflect")
    expected = z0[:, 0]
    for _ in range(6):  # folded back after every step, then pushed on again
        expected = reflect_into_box(expected + 0.06)
    assert torch.allclose(res.final_latents[:, 0], expected)
    assert res.final_latents.abs().max() < 1.0


def test_normal_prior_is_unconstrained_and_records_nothing():
    z0, res = flow("clip", prior="normal")
    assert torch.allclose(res.final_latents[:, 0], z0[:, 0] + 0.06 * 6)
    assert "boundary_hit_fraction" not in res.info


def test_final_latents_make_the_final_snapshot():
    gen = torch.nn.Linear(2, 2).double()
    z0 = torch.rand(30, 2, dtype=F64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    res = run_dgflow(z0, gen, lambda x: x.sum(1), DGflowParams(f="KL", eta=0.05, gamma=0.01, steps=5, snapshot_every=5,
                                                        support="clip"),
                     torch.Generator().manual_seed(2), prior="uniform")
    with torch.no_grad():
        assert torch.allclose(gen(res.final_latents), res.snapshots[5])
    data = run_dgflow(z0, gen, lambda x: x.sum(1), DGflowParams(f="KL", space="data", eta=0.05, steps=2),
                      torch.Generator().manual_seed(2), prior="uniform")
    assert data.final_latents is None and "boundary_hit_fraction" not in data.info


def test_ddls_support_rule_is_configurable():
    z0 = torch.full((200, 2), 0.95, dtype=F64)
    for support in ("clip", "reflect", "none"):
        res = run_ddls(z0, None, push, DDLSParams(eps=0.05, steps=3, snapshot_every=3, support=support),
                       torch.Generator().manual_seed(4), prior="uniform")
        z = res.final_latents
        if support == "none":
            assert z.abs().max() > 1.0
        else:
            assert z.abs().max() <= 1.0
        if support == "clip":
            assert (z == 1.0).any()  # clipping puts mass on the faces, reflection does not
        assert res.info["boundary_hit_fraction"][3] > 0.5


def test_apply_support_unknown_rule():
    with pytest.raises(ValueError, match="'wrap'.*clip, reflect, none"):
        apply_support(torch.zeros(2, 2), "uniform", "wrap")
