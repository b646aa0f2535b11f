"""Discriminator fine-tuning: turn a critic into a density-ratio estimator.

A logistic discriminator D = sigmoid(d) trained with real = 1 and generator samples = 0 has, at its optimum,
d(x) = log mu(x) / rho(x): exactly the ratio DGflow needs. Starting from the WGAN critic keeps its features;
the logistic loss recalibrates its scale."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm


def logistic_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with logits, real = 1 and fake = 0, written with softplus for stability."""
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()


def finetune_logistic(
    discriminator: torch.nn.Module,
    generator: torch.nn.Module,
    *,
    real_batch: Callable[[int, torch.Generator], torch.Tensor],
    latent_batch: Callable[[int, torch.Generator], torch.Tensor],
    steps: int,
    batch_size: int,
    lr: float,
    betas: tuple[float, float],
    rng: torch.Generator,
    progress: bool = True,
) -> dict:
    """Fine-tune ``discriminator`` in place against samples of the frozen ``generator``."""
    generator.requires_grad_(False)
    opt = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=tuple(betas))
    history = []
    for step in tqdm(range(1, steps + 1), desc="finetune", disable=not progress, mininterval=2):
        real = real_batch(batch_size, rng)
        with torch.no_grad():
            fake = generator(latent_batch(batch_size, rng))
        d_real, d_fake = discriminator(real), discriminator(fake)
        loss = logistic_loss(d_real, d_fake)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps:
            acc = 0.5 * ((d_real > 0).float().mean() + (d_fake < 0).float().mean())
            history.append({"step": step, "logistic_loss": loss.item(), "accuracy": acc.item()})
    return {"history": history, "final": history[-1] if history else {}}
