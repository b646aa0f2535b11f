"""Shared pieces of every refinement method: the logit-function interface, seeded initial latents,
snapshot bookkeeping and the divergence guard.

A method is a function ``(z0, generator, logit_fn, params, rng, *, prior) -> RefinementResult`` with typed
``params`` (refine/params.py). It knows nothing of datasets, configs or files: the stages do that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from ..errors import RefinementDiverged  # noqa: F401  (raised here; defined light for the CLI)
from ..runtime import latent_sampler

# d(x): (N, ...) -> (N,). The one interface between discriminators and methods: a raw critic, a
# fine-tuned logistic discriminator and a d_phi + d_lambda corrector all look like this.
LogitFn = Callable[[torch.Tensor], torch.Tensor]
# G(z): (N, latent_dim) -> (N, ...); ``None`` means the method works in data space (identity map).
GeneratorFn = Optional[Callable[[torch.Tensor], torch.Tensor]]


@dataclass
class RefinementResult:
    """Data-space samples at each snapshot step (step 0 = the base model's samples) plus method facts, and the
    final latents of a method that moves latents (None for data-space methods and the base row)."""

    snapshots: dict[int, torch.Tensor]
    info: dict = field(default_factory=dict)
    final_latents: Optional[torch.Tensor] = None


def snapshot_steps(steps: int, every: int) -> list[int]:
    """0, every, 2*every, ... and always the final step."""
    if steps < 0 or every < 1:
        raise ValueError(f"need steps >= 0 and snapshot_every >= 1, got steps={steps}, every={every}")
    out = list(range(0, steps + 1, every))
    if out[-1] != steps:
        out.append(steps)
    return out


def sample_latents(prior: str, n: int, dim: int, seed: int) -> torch.Tensor:
    """Seeded initial latents (on the CPU), identical for every method that uses the same (prior, n, dim,
    seed); drawn by the one latent sampler the trainers use too (runtime.latent_sampler)."""
    return latent_sampler(prior, dim, torch.device("cpu"))(n, torch.Generator().manual_seed(seed))


def check_finite(x: torch.Tensor, method: str, step: int, step_size: float) -> None:
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).any(dim=tuple(range(1, x.dim()))).sum()) if x.dim() > 1 else -1
        raise RefinementDiverged(method, step, step_size, f"({bad} of {x.shape[0]} samples non-finite)")


def noise_std(eta: float, gamma: float) -> float:
    """Euler-Maruyama noise scale sqrt(2 * eta * gamma)."""
    return math.sqrt(2.0 * eta * gamma)


@torch.no_grad()
def to_data(y: torch.Tensor, generator: GeneratorFn) -> torch.Tensor:
    return (generator(y) if generator is not None else y).detach().clone()


SPACE_CHOICES = ("latent", "data")


def check_space(space: str) -> str:
    if space not in SPACE_CHOICES:
        raise ValueError(f"unknown space {space!r}: choose one of {', '.join(SPACE_CHOICES)}")
    return space


def randn_from(like: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """N(0, I) noise shaped like ``like``, drawn from ``rng`` on the generator's own device (so a CPU
    generator works with CUDA tensors) and moved to ``like``'s device."""
    noise = torch.randn(like.shape, generator=rng, device=rng.device, dtype=like.dtype)
    return noise.to(like.device)


def uniform_from(n: int, like: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """n draws of U[0, 1) from ``rng``, on ``like``'s device and dtype."""
    return torch.rand(n, generator=rng, device=rng.device, dtype=like.dtype).to(like.device)


def data_logit_and_grad(
    y: torch.Tensor, generator: GeneratorFn, logit_fn: LogitFn
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(G(y), d(G(y)), grad_y d(G(y))), all detached, from ONE forward and ONE backward. Returning G(y)
    lets callers take snapshots without an extra generator forward. torch.autograd.grad (not
    .backward) so no gradient accumulates in the networks' parameters."""
    y = y.detach().requires_grad_(True)
    with torch.enable_grad():
        x = generator(y) if generator is not None else y
        d = logit_fn(x).reshape(-1)
        (grad,) = torch.autograd.grad(d.sum(), y)
    x = x.detach()
    if generator is None:  # x is y itself: copy so a snapshot never aliases the iterate
        x = x.clone()
    return x, d.detach(), grad


def per_sample(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape a (N,) vector to broadcast against (N, ...)."""
    return v.reshape(-1, *([1] * (like.dim() - 1)))
