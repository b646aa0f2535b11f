"""Shared pieces of every refinement method: the logit-function interface, seeded initial latents,
snapshot bookkeeping and the divergence guard.

A method's algorithm is a function ``(z0, generator, logit_fn, params, rng, *, prior) -> RefinementResult``
with typed ``params`` (its module in refine/methods/). It knows nothing of datasets, configs or files: the
stages do that.

Every method reports its cost in ``info`` through one ``Counter`` (below): ``network_evaluations`` (totals) and
``evaluations_by_step`` (cumulative at each snapshot step), each a dict of ``EVALUATION_KEYS``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from ..errors import RefinementDiverged  # noqa: F401  (raised here; defined light for the CLI)
from ..runtime import latent_sampler
from .method_params import EVALUATION_KEYS, snapshot_steps  # noqa: F401  (snapshot_steps: re-exported)

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


def sample_latents(prior: str, n: int, dim: int, seed: int) -> torch.Tensor:
    """Seeded initial latents (on the CPU), identical for every method that uses the same (prior, n, dim,
    seed); drawn by the one latent sampler the trainers use too (runtime.latent_sampler)."""
    return latent_sampler(prior, dim, torch.device("cpu"))(n, torch.Generator().manual_seed(seed))


def check_finite(x: torch.Tensor, params, step: int) -> None:
    """Raise RefinementDiverged, naming the method's step-size knob and its value, where ``x`` is not finite."""
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).any(dim=tuple(range(1, x.dim()))).sum()) if x.dim() > 1 else -1
        name = params.step_size_name
        raise RefinementDiverged(params.kind, step, float(getattr(params, name)), f"({bad} of {x.shape[0]} samples "
                                 "non-finite)", step_size_name=name)


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


class Counter:
    """G and d behind one door that counts the samples (rows, not calls) through each pass of each network.

    ``generator`` / ``logit`` are drop-in replacements for the networks (``generator`` is None when the method
    has no generator). Forwards are counted on every call; a backward (one vector-Jacobian product through the
    network) is counted by a hook on a view of the network's input, which fires only when autograd actually
    propagates a gradient out through that network. The view and the hook leave every value unchanged."""

    def __init__(self, generator: GeneratorFn, logit_fn: LogitFn):
        self.counts = dict.fromkeys(EVALUATION_KEYS, 0)
        self.by_step: dict[int, dict] = {}
        self._generator_fn, self._logit_fn = generator, logit_fn
        self.generator: GeneratorFn = None if generator is None else self._generate

    def _tap(self, x: torch.Tensor, network: str) -> torch.Tensor:
        self.counts[f"{network}_forward"] += x.shape[0]
        if not (torch.is_grad_enabled() and x.requires_grad):
            return x
        x = x.view_as(x)  # a node of its own: its gradient is exactly this network's input gradient
        rows, key = x.shape[0], f"{network}_backward"

        def count(_grad):
            self.counts[key] += rows

        x.register_hook(count)
        return x

    def _generate(self, z: torch.Tensor) -> torch.Tensor:
        return self._generator_fn(self._tap(z, "generator"))

    def logit(self, x: torch.Tensor) -> torch.Tensor:
        return self._logit_fn(self._tap(x, "discriminator"))

    def snapshot(self) -> dict:
        return dict(self.counts)

    def mark(self, step: int, counts: Optional[dict] = None) -> None:
        """Record the cumulative counts at which snapshot ``step``'s samples existed (default: now)."""
        self.by_step[int(step)] = dict(self.counts if counts is None else counts)

    def generated_alone(self, before: dict) -> dict:
        """No passes but the generator forwards done since ``before``: the cost of the base samples G(z0)
        when the forward that made them is also a refinement step's (and came after one-off work, e.g. DOT's
        K estimate, that the base samples never needed)."""
        return {**dict.fromkeys(EVALUATION_KEYS, 0),
                "generator_forward": self.counts["generator_forward"] - before["generator_forward"]}

    def generated_since(self, before: dict) -> dict:
        """``before`` plus the generator forwards done since: the cost of samples that a step's generator
        forward produced, before that step's discriminator work (which fused helpers do in the same call)."""
        return {**before, "generator_forward": self.counts["generator_forward"]}

    def info(self, final_step: int) -> dict:
        """The info entries; the final snapshot's entry is the run's totals (work done after its samples
        existed, e.g. DOT's closing objective, belongs to the run)."""
        self.mark(final_step)
        return {"network_evaluations": self.snapshot(),
                "evaluations_by_step": {k: dict(v) for k, v in sorted(self.by_step.items())}}


def per_sample(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape a (N,) vector to broadcast against (N, ...)."""
    return v.reshape(-1, *([1] * (like.dim() - 1)))
