"""The fine-tuned discriminator is a density-ratio estimator: on two Gaussians whose log-ratio is known in
closed form, the pipeline's critic-shaped network fine-tuned with the pipeline's routine recovers
log mu / rho on held-out points; and the weights kept are those of the lowest held-out loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dgflow_bench.models.mlp import build_critic
from dgflow_bench.runtime import array_sampler, latent_sampler
from dgflow_bench.training.density_ratio import HeldOut, finetune_logistic, make_heldout

MU_MEAN, MU_STD = torch.tensor([0.4, 0.0]), 0.5  # real data mu
RHO_MEAN, RHO_STD = torch.tensor([-0.4, 0.2]), 0.7  # the "generator" rho


def true_log_ratio(x: torch.Tensor) -> torch.Tensor:
    """log N(x; m1, s1^2 I) - log N(x; m2, s2^2 I) in 2-D, with its constant 2 log(s2 / s1)."""
    return (-((x - MU_MEAN) ** 2).sum(1) / (2 * MU_STD**2) + ((x - RHO_MEAN) ** 2).sum(1) / (2 * RHO_STD**2)
            + 2 * math.log(RHO_STD / MU_STD))


class AffineGenerator(torch.nn.Module):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return RHO_MEAN + RHO_STD * z


def fit(steps: int, lr: float, seed: int = 0, eval_every: int = 100):
    torch.manual_seed(seed)
    real = MU_MEAN + MU_STD * torch.randn(40_000, 2, generator=torch.Generator().manual_seed(seed + 1))
    generator = AffineGenerator()
    latents = latent_sampler("normal", 2, torch.device("cpu"))
    heldout = make_heldout((real[:2000], lambda rows: rows), generator, latents, seed=seed + 2)
    critic = build_critic(2, 64, 3)
    stats = finetune_logistic(critic, generator, real_batch=array_sampler(real[2000:]), latent_batch=latents,
                              steps=steps, batch_size=256, lr=lr, betas=(0.5, 0.9),
                              rng=torch.Generator().manual_seed(seed + 3), heldout=heldout,
                              eval_every=eval_every, progress=False)
    return critic.eval(), stats, heldout


@pytest.fixture(scope="module")
def fitted():
    return fit(steps=1500, lr=1e-3)


def test_learnt_logit_is_the_true_log_ratio(fitted):
    critic, _, _ = fitted
    # fresh points from the mixture (mu + rho) / 2, where both densities have mass
    gen = torch.Generator().manual_seed(11)
    x = torch.cat([MU_MEAN + MU_STD * torch.randn(2000, 2, generator=gen),
                   RHO_MEAN + RHO_STD * torch.randn(2000, 2, generator=gen)])
    truth = true_log_ratio(x)
    bulk = truth.abs() < 4  # the tails hold too few samples for any estimator
    with torch.no_grad():
        learnt = critic(x)
    err = (learnt - truth)[bulk]
    # a wrong sign gives errors of about twice |log-ratio| (mean ~2), a missing constant a mean error of
    # 2 log(0.7 / 0.5) = 0.67; an overfit or untrained net a correlation far from 1
    assert abs(float(err.mean())) < 0.15, float(err.mean())
    assert float(err.abs().mean()) < 0.25, float(err.abs().mean())
    assert float(np.corrcoef(learnt[bulk].numpy(), truth[bulk].numpy())[0, 1]) > 0.97


def test_heldout_loss_approaches_the_bayes_optimum(fitted):
    _, stats, heldout = fitted
    # the loss of the true log-ratio on the same held-out sample is the floor a perfect estimator reaches
    floor = heldout.score(true_log_ratio)["heldout_logistic_loss"]
    kept = stats["final"]["heldout_logistic_loss"]
    start = stats["history"][0]["heldout_logistic_loss"]
    assert floor <= kept + 0.01 and kept < floor + 0.02 < start, (floor, kept, start)
    assert stats["final"]["heldout_accuracy"] > 0.6


def test_kept_weights_are_those_of_the_lowest_heldout_loss():
    # a learning rate far too large makes the held-out loss jump around: the kept step must be its argmin,
    # and the network must hold exactly that step's weights (scoring it again gives the recorded loss)
    critic, stats, heldout = fit(steps=400, lr=0.05, eval_every=20)
    losses = {h["step"]: h["heldout_logistic_loss"] for h in stats["history"]}
    best = min(losses, key=losses.get)
    assert stats["final"]["step"] == best == stats["validation"]["kept_step"]
    assert best != max(losses)  # the run did not simply end at its best step
    assert heldout.score(critic)["heldout_logistic_loss"] == pytest.approx(losses[best], abs=1e-6)


def test_heldout_scores_in_chunks_equal_one_pass():
    gen = torch.Generator().manual_seed(3)
    real, latents = torch.randn(1001, 2, generator=gen), torch.randn(1001, 2, generator=gen)
    critic = build_critic(2, 8, 2).eval()
    scores = [HeldOut(real, latents, AffineGenerator(), chunk=c).score(critic) for c in (1, 7, 2000)]
    for s in scores[1:]:
        assert s == pytest.approx(scores[0], abs=1e-6)
