"""The training loop: a run interrupted at a checkpoint and resumed ends bit-identical to an uninterrupted
run; SIGTERM checkpoints and stops; fine-tuning lowers the logistic loss."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch

from dgflow_bench.models.mlp import build_critic, build_generator
from dgflow_bench.runtime import array_sampler, latent_sampler
from dgflow_bench.training.density_ratio import finetune_logistic, logistic_loss
from dgflow_bench.training.loop import GanRecipe, TrainingInterrupted, train_gan

DATA = torch.from_numpy(np.random.default_rng(0).normal(size=(512, 2)).astype(np.float32))


def recipe(iterations: int, checkpoint_every: int = 5) -> GanRecipe:
    return GanRecipe(loss="wgan-gp", iterations=iterations, critic_steps=2, batch_size=32, lr_g=1e-3,
                     lr_d=1e-3, betas=(0.5, 0.9), gp_weight=10.0, checkpoint_every=checkpoint_every)


def fresh(seed: int = 0):
    torch.manual_seed(seed)
    return build_generator(hidden=16), build_critic(hidden=16), torch.Generator().manual_seed(seed + 1)


def train(G, D, rng, state, iterations, fp="fp", **kw):
    return train_gan(G, D, recipe=recipe(iterations, **kw), real_batch=array_sampler(DATA),
                     latent_batch=latent_sampler("uniform", 2, torch.device("cpu")), rng=rng,
                     checkpoint_path=str(state), fingerprint=fp, progress=False)


def weights(*nets):
    return torch.cat([p.detach().flatten() for n in nets for p in n.parameters()])


def test_resume_is_bit_identical(tmp_path):
    G1, D1, rng1 = fresh()
    train(G1, D1, rng1, tmp_path / "a.pt", 20)

    # Interrupted run: stop at step 10 (a checkpoint), then a new process-like start from scratch objects.
    G2, D2, rng2 = fresh()
    train(G2, D2, rng2, tmp_path / "b.pt", 10)
    G3, D3, rng3 = fresh(seed=99)  # different init: everything must come from the checkpoint
    history = train(G3, D3, rng3, tmp_path / "b.pt", 20)
    assert torch.equal(weights(G1, D1), weights(G3, D3))
    assert history[-1]["step"] == 20


def test_checkpoint_of_other_config_is_ignored(tmp_path):
    G1, D1, rng1 = fresh()
    train(G1, D1, rng1, tmp_path / "s.pt", 10, fp="one")
    G2, D2, rng2 = fresh()
    train(G2, D2, rng2, tmp_path / "s.pt", 10, fp="two")  # must start over, not resume
    G3, D3, rng3 = fresh()
    train(G3, D3, rng3, tmp_path / "t.pt", 10, fp="two")
    assert torch.equal(weights(G2, D2), weights(G3, D3))


def test_sigterm_checkpoints_and_stops(tmp_path):
    G, D, rng = fresh()
    real = array_sampler(DATA)
    calls = {"n": 0}

    def real_then_signal(n, g):
        calls["n"] += 1
        if calls["n"] == 7:  # mid-way through step 4's critic updates
            os.kill(os.getpid(), signal.SIGTERM)
        return real(n, g)

    with pytest.raises(TrainingInterrupted, match="step 4"):
        train_gan(G, D, recipe=recipe(50, checkpoint_every=1000), real_batch=real_then_signal,
                  latent_batch=latent_sampler("uniform", 2, torch.device("cpu")), rng=rng,
                  checkpoint_path=str(tmp_path / "c.pt"), fingerprint="fp", progress=False)
    state = torch.load(tmp_path / "c.pt", weights_only=True)
    assert state["step"] == 4
    # resuming from the SIGTERM checkpoint equals an uninterrupted run
    G2, D2, rng2 = fresh(seed=5)
    train(G2, D2, rng2, tmp_path / "c.pt", 12, checkpoint_every=1000)
    G3, D3, rng3 = fresh()
    train(G3, D3, rng3, tmp_path / "d.pt", 12, checkpoint_every=1000)
    assert torch.equal(weights(G2, D2), weights(G3, D3))


def test_logistic_finetune_learns_density_ratio():
    # real N(0,1) vs generator N(1,1) in 1-D: the optimal logit is log mu/rho = 0.5 - x
    torch.manual_seed(0)
    gen = torch.nn.Linear(1, 1)
    with torch.no_grad():
        gen.weight.fill_(1.0)
        gen.bias.fill_(1.0)
    disc = torch.nn.Sequential(torch.nn.Linear(1, 1), torch.nn.Flatten(0))
    real = torch.randn(20000, 1, generator=torch.Generator().manual_seed(1))
    rng = torch.Generator().manual_seed(2)
    stats = finetune_logistic(disc, gen, real_batch=array_sampler(real),
                              latent_batch=lambda n, g: torch.randn(n, 1, generator=g), steps=1500,
                              batch_size=512, lr=2e-2, betas=(0.9, 0.999), rng=rng, progress=False)
    w, b = disc[0].weight.item(), disc[0].bias.item()
    assert w == pytest.approx(-1.0, abs=0.15) and b == pytest.approx(0.5, abs=0.15)
    assert stats["history"][-1]["logistic_loss"] < 2 * np.log(2)


def test_logistic_loss_matches_bce():
    d_real, d_fake = torch.randn(50), torch.randn(50)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    expected = bce(d_real, torch.ones(50)) + bce(d_fake, torch.zeros(50))
    assert logistic_loss(d_real, d_fake).item() == pytest.approx(expected.item(), rel=1e-6)


def test_sample_grid_at_checkpoints_leaves_training_unchanged(tmp_path):
    from dgflow_bench.models.dcgan import DCGANGenerator, SNDCGANDiscriminator
    from dgflow_bench.suites.images import image_grid_writer

    images = torch.rand(64, 3, 16, 16) * 2 - 1

    def run(with_grid: bool):
        torch.manual_seed(0)
        G, D = DCGANGenerator(z_dim=8, bottom_width=2, ch=16), SNDCGANDiscriminator(bottom_width=2, ch=16)
        grid = image_grid_writer(G, {"prior": "normal", "dim": 8}, tmp_path / f"grid-{with_grid}.png")
        train_gan(G, D, recipe=GanRecipe(loss="hinge", iterations=4, critic_steps=1, batch_size=8, lr_g=1e-3,
                                         lr_d=1e-3, betas=(0.0, 0.9), gp_weight=0.0, checkpoint_every=2),
                  real_batch=array_sampler(images), latent_batch=latent_sampler("normal", 8, torch.device("cpu")),
                  rng=torch.Generator().manual_seed(1), checkpoint_path=str(tmp_path / f"s-{with_grid}.pt"),
                  fingerprint="fp", progress=False, on_checkpoint=grid if with_grid else None)
        return weights(G, D), {k: v.clone() for k, v in G.state_dict().items() if "running" in k}

    (w_plain, bn_plain), (w_grid, bn_grid) = run(False), run(True)
    assert torch.equal(w_plain, w_grid)
    assert all(torch.equal(bn_plain[k], bn_grid[k]) for k in bn_plain)  # eval-mode grid: BN stats untouched
    assert (tmp_path / "grid-True.png").read_bytes()[:4] == b"\x89PNG" and not (tmp_path / "grid-False.png").exists()
