"""Glow's training objective: negative log-likelihood in bits per dimension of 8-bit images under uniform
dequantisation (y0ast/Glow-PyTorch datasets.py, utils.py, model.py; openai/glow model.py)."""

from __future__ import annotations

import math

import torch


def dequantized(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Images in [-1, 1] (exact k / 127.5 - 1 for 8-bit k) -> 2 (k + u) / 256 - 1, u ~ U[0, 1) drawn from
    ``rng``: uniform dequantisation, as the reference's data pipeline does (scaled to [-1, 1])."""
    k = torch.round((x + 1) * 127.5)
    u = torch.rand(k.shape, generator=rng, device=k.device, dtype=k.dtype)
    return 2 * (k + u) / 256 - 1


def bits_per_dim(glow, x_dequantized: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood in bits per dimension of 8-bit images under uniform dequantisation:
    -(log p_x(x) + D log 2 - D log 256) / (D log 2); the D log 2 turns the density of x in [-1, 1] into that
    of y = x / 2 in [-0.5, 0.5], the reference's range."""
    d = glow.latent_dim
    log_py = glow.log_prob(x_dequantized) + d * math.log(2.0)
    return (-(log_py - d * math.log(256.0)) / (d * math.log(2.0))).mean()
