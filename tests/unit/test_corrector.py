"""The d_phi + d_lambda density-ratio corrector against exact answers: a 1-D Gaussian pair whose log-ratio
is known in closed form, plus the frozen-base, zero-init, input-gradient, transform, determinism and
DGflow-compatibility contracts."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from dgflow_bench.refine.methods.dgflow import run_dgflow
from dgflow_bench.refine.methods.dgflow import DGflowParams
from dgflow_bench.models.corrected import CorrectedLogit, upsample_bilinear
from dgflow_bench.training.corrector import train_corrector, zero_last_layer


def linear_logit(slope, intercept):
    layer = nn.Linear(1, 1)
    with torch.no_grad():
        layer.weight.fill_(slope)
        layer.bias.fill_(intercept)
    return nn.Sequential(layer, nn.Flatten(0))


def shift_generator(z):  # model rho = N(1, 1) from z ~ N(0, 1)
    return z + 1.0


def normal_batch(n, gen):
    return torch.randn(n, 1, generator=gen)


def gaussian_corrector(seed=0):
    """d_phi = 0.2 - 0.3 x is WRONG for mu = N(0,1) vs rho = N(1,1), whose exact log-ratio is 0.5 - x."""
    torch.manual_seed(seed)
    return CorrectedLogit(linear_logit(-0.3, 0.2), nn.Sequential(nn.Linear(1, 1), nn.Flatten(0)))


def train_gaussian(corrected, seed=1, steps=800):
    return train_corrector(
        corrected, shift_generator, real_batch=normal_batch, latent_batch=normal_batch,
        steps=steps, batch_size=1024, lr=0.02, betas=(0.5, 0.999),
        rng=torch.Generator().manual_seed(seed), progress=False,
    )


@pytest.fixture(scope="module")
def trained_gaussian():
    corrected = gaussian_corrector()
    base_before = {k: v.clone() for k, v in corrected.base.state_dict().items()}
    stats = train_gaussian(corrected)
    return corrected, base_before, stats


def test_gaussian_sum_reaches_exact_log_ratio_and_base_is_untouched(trained_gaussian):
    corrected, base_before, stats = trained_gaussian
    x = torch.tensor([[0.0], [1.0]])
    with torch.no_grad():
        d0, d1 = corrected(x).tolist()
    intercept, slope = d0, d1 - d0  # the sum of two linear logits is linear
    assert slope == pytest.approx(-1.0, abs=0.06)
    assert intercept == pytest.approx(0.5, abs=0.06)
    for k, v in corrected.base.state_dict().items():
        assert torch.equal(v, base_before[k]), k
    # the corrector did the work: d_lambda ~ 0.3 - 0.7 x
    lam = corrected.corrector[0]
    assert lam.weight.item() == pytest.approx(-0.7, abs=0.06)
    assert lam.bias.item() == pytest.approx(0.3, abs=0.06)
    assert stats["final"]["step"] == 800 and len(stats["history"]) == 16
    assert stats["final"]["mean_abs_correction"] > 0.3


def test_zero_init_starts_exactly_at_d_phi():
    corrected = gaussian_corrector()
    x = torch.randn(64, 1, generator=torch.Generator().manual_seed(3))
    assert not torch.equal(corrected(x), corrected.base(x))  # random init: a correction is there
    train_gaussian(corrected, steps=0)  # init='zero' happens before the first step
    assert torch.equal(corrected(x), corrected.base(x))
    # also for a deeper corrector: zeroing the last layer makes the whole output 0
    deep = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1), nn.Flatten(0))
    zero_last_layer(deep)
    assert torch.equal(deep(torch.randn(5, 3)), torch.zeros(5))


def test_unknown_init_is_rejected():
    with pytest.raises(ValueError, match="'random'.*zero.*keep"):
        train_corrector(gaussian_corrector(), shift_generator, real_batch=normal_batch,
                        latent_batch=normal_batch, steps=1, batch_size=4, lr=1e-3, betas=(0.5, 0.999),
                        rng=torch.Generator().manual_seed(0), progress=False, init="random")


def test_base_stays_frozen_and_in_eval_mode():
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(1, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 1), nn.Flatten(0))
    with torch.no_grad():  # non-trivial running stats, so train-mode BatchNorm would visibly differ
        base[1].running_mean.fill_(0.3)
        base[1].running_var.fill_(2.0)
    corrected = CorrectedLogit(base, nn.Sequential(nn.Linear(1, 4), nn.Tanh(), nn.Linear(4, 1), nn.Flatten(0)))
    before = {k: v.clone() for k, v in base.state_dict().items()}
    lam_before = [p.clone() for p in corrected.corrector.parameters()]
    x = torch.randn(32, 1, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        eval_out = base(x)
    corrected.train()
    assert corrected.training and corrected.corrector.training
    assert not any(m.training for m in base.modules())
    assert all(not p.requires_grad for p in base.parameters())
    # eval mode: dropout off and BatchNorm uses running stats, so outputs are repeatable
    with torch.no_grad():
        assert torch.equal(corrected.base(x), eval_out)
        assert torch.equal(corrected.base(x), eval_out)

    train_corrector(corrected, shift_generator, real_batch=normal_batch, latent_batch=normal_batch,
                    steps=20, batch_size=64, lr=1e-2, betas=(0.5, 0.999),
                    rng=torch.Generator().manual_seed(2), progress=False)
    assert corrected.training  # mode restored to what it was
    assert not any(m.training for m in base.modules())
    assert all(p.grad is None for p in base.parameters())
    for k, v in base.state_dict().items():  # incl. BatchNorm running stats and num_batches_tracked
        assert torch.equal(v, before[k]), k
    assert not all(torch.equal(p, q) for p, q in zip(corrected.corrector.parameters(), lam_before))
    assert all(p.grad is None for p in corrected.corrector.parameters())  # no stale gradients left


def test_input_gradient_is_sum_of_both_parts():
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1), nn.Flatten(0))
    lam = nn.Sequential(nn.Linear(3, 16), nn.Softplus(), nn.Linear(16, 1), nn.Flatten(0))
    corrected = CorrectedLogit(base, lam)
    x = torch.randn(10, 3, dtype=torch.float64)
    corrected.double()
    xs = [x.clone().requires_grad_(True) for _ in range(3)]
    (g_sum,) = torch.autograd.grad(corrected(xs[0]).sum(), xs[0])
    (g_phi,) = torch.autograd.grad(base(xs[1]).sum(), xs[1])
    (g_lam,) = torch.autograd.grad(lam(xs[2]).sum(), xs[2])
    assert g_phi.abs().sum() > 0 and g_lam.abs().sum() > 0
    torch.testing.assert_close(g_sum, g_phi + g_lam)
    assert all(p.grad is None for p in base.parameters())


class Recorder(nn.Module):
    """Logit = sum of a fixed conv map; remembers the input it was given."""

    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 1, 3)
        self.seen = None

    def forward(self, x):
        self.seen = x
        return self.conv(x).flatten(1).sum(1)


def test_input_transform_is_seen_by_both_parts():
    base, lam = Recorder(0), Recorder(1)
    corrected = CorrectedLogit(base, lam, input_transform=upsample_bilinear((6, 6)))
    x = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0), requires_grad=True)
    out = corrected(x)
    expected_input = F.interpolate(x, size=(6, 6), mode="bilinear", align_corners=True)
    assert out.shape == (2,)
    torch.testing.assert_close(base.seen, expected_input, rtol=0, atol=0)
    torch.testing.assert_close(lam.seen, expected_input, rtol=0, atol=0)
    torch.testing.assert_close(out, base.conv(expected_input).flatten(1).sum(1)
                               + lam.conv(expected_input).flatten(1).sum(1))
    (g,) = torch.autograd.grad(out.sum(), x)  # gradient flows back through the upsampling
    assert g.shape == x.shape and g.abs().sum() > 0


def test_same_seeds_give_identical_corrector_weights():
    global_seeds = iter([100, 200, 300])

    def run(seed):
        torch.manual_seed(0)
        base = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1), nn.Flatten(0))
        lam = nn.Sequential(nn.Linear(1, 8), nn.Dropout(0.2), nn.Tanh(), nn.Linear(8, 1), nn.Flatten(0))
        corrected = CorrectedLogit(base, lam)
        torch.manual_seed(next(global_seeds))  # global RNG state must not matter: dropout draws from rng
        train_corrector(corrected, shift_generator, real_batch=normal_batch, latent_batch=normal_batch,
                        steps=30, batch_size=64, lr=1e-2, betas=(0.5, 0.999),
                        rng=torch.Generator().manual_seed(seed), progress=False)
        return corrected.corrector.state_dict()

    a, b, c = run(7), run(7), run(8)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_trained_corrector_drives_dgflow_toward_real_data(trained_gaussian):
    corrected, _, _ = trained_gaussian
    corrected.eval()
    z0 = torch.randn(4000, 1, generator=torch.Generator().manual_seed(5))
    params = DGflowParams(f="KL", space="data", eta=0.05, gamma=0.0, steps=5, snapshot_every=5)
    result = run_dgflow(z0, shift_generator, corrected, params, torch.Generator().manual_seed(6), prior="normal")
    start, end = result.snapshots[0].mean().item(), result.snapshots[5].mean().item()
    assert start == pytest.approx(1.0, abs=0.05)
    # KL flow with d = 0.5 - x moves every particle by eta * d'(x) = -0.05 per step: 5 steps -> -0.25
    assert start - end == pytest.approx(0.25, abs=0.02)
    assert all(p.grad is None for p in corrected.parameters())


def test_heldout_selection_survives_a_resume(tmp_path):
    """With a held-out sample the kept d_lambda is the best evaluated one; a run killed after a checkpoint
    resumes with its best weights and ends with the same kept step and weights as an uninterrupted run."""
    from dgflow_bench.training.density_ratio import make_heldout

    real = torch.randn(500, 1, generator=torch.Generator().manual_seed(3))
    heldout = make_heldout((real, lambda rows: rows), shift_generator, normal_batch, seed=4)

    def run(steps, checkpoint):
        corrected = gaussian_corrector()
        stats = train_corrector(corrected, shift_generator, real_batch=normal_batch, latent_batch=normal_batch,
                                steps=steps, batch_size=64, lr=0.3, betas=(0.5, 0.999),
                                rng=torch.Generator().manual_seed(5), heldout=heldout, eval_every=2,
                                progress=False, checkpoint_path=str(checkpoint), fingerprint="f",
                                checkpoint_every=4)
        return corrected.corrector.state_dict(), stats

    straight, stats = run(12, tmp_path / "a.pt")
    losses = {h["step"]: h["heldout_logistic_loss"] for h in stats["history"]}
    assert list(losses) == [0, 2, 4, 6, 8, 10, 12]
    assert stats["final"]["step"] == min(losses, key=losses.get)
    run(4, tmp_path / "b.pt")
    resumed, resumed_stats = run(12, tmp_path / "b.pt")
    assert resumed_stats["final"] == stats["final"]
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
