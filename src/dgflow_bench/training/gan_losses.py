"""GAN objectives, one entry per loss. Each returns (critic_loss, generator_loss) callables so the
training loop is the same for every loss."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """WGAN-GP's two-sided penalty (|grad D(x_hat)| - 1)^2 on random interpolates (Gulrajani et al. 2017)."""
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    alpha = torch.rand(shape, generator=rng, device=real.device, dtype=real.dtype)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    # a critic may offer a forward whose double backward skips its activations' zero second derivative
    # (models/mlp.py: the same values and gradients); not past hooks on the critic's own call
    hooked = getattr(critic, "_forward_hooks", None) or getattr(critic, "_forward_pre_hooks", None)
    forward = critic if hooked else getattr(critic, "penalty_forward", critic)
    (grad,) = torch.autograd.grad(forward(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


def wgan_gp_critic_loss(critic, real, fake, rng, gp_weight: float) -> torch.Tensor:
    return critic(fake).mean() - critic(real).mean() + gp_weight * gradient_penalty(critic, real, fake, rng)


def wgan_generator_loss(critic, fake) -> torch.Tensor:
    return -critic(fake).mean()


def hinge_critic_loss(critic, real, fake, rng, gp_weight: float) -> torch.Tensor:
    return F.relu(1.0 - critic(real)).mean() + F.relu(1.0 + critic(fake)).mean()


def ns_critic_loss(critic, real, fake, rng, gp_weight: float) -> torch.Tensor:
    return F.softplus(-critic(real)).mean() + F.softplus(critic(fake)).mean()


def ns_generator_loss(critic, fake) -> torch.Tensor:
    return F.softplus(-critic(fake)).mean()


LOSSES: dict[str, tuple[Callable, Callable]] = {
    "wgan-gp": (wgan_gp_critic_loss, wgan_generator_loss),
    "hinge": (hinge_critic_loss, wgan_generator_loss),
    "ns": (ns_critic_loss, ns_generator_loss),
}


def get_loss(name: str) -> tuple[Callable, Callable]:
    if name not in LOSSES:
        raise ValueError(f"unknown GAN loss {name!r}; choose one of {sorted(LOSSES)}")
    return LOSSES[name]
