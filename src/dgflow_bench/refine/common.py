"""Shared pieces of every refinement method: the logit-function interface, seeded initial latents,
snapshot bookkeeping and the divergence guard.

A method is a function ``(init, generator, logit_fn, params, rng) -> RefinementResult``. It knows nothing
of datasets or files: the CLI does the I/O.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from ..runtime import latent_sampler

# d(x): (N, ...) -> (N,). The one interface between discriminators and methods: a raw critic, a
# fine-tuned logistic discriminator and a d_phi + d_lambda corrector all look like this.
LogitFn = Callable[[torch.Tensor], torch.Tensor]
# G(z): (N, latent_dim) -> (N, ...); ``None`` means the method works in data space (identity map).
GeneratorFn = Optional[Callable[[torch.Tensor], torch.Tensor]]


class RefinementDiverged(RuntimeError):
    """Raised when refined samples become NaN or Inf, so no table row is ever built from them."""

    STEP_SIZE_NAMES = {"dgflow": "eta", "dot": "lr", "ddls": "eps"}

    def __init__(self, method: str, step: int, step_size: float, detail: str = ""):
        self.method, self.step, self.step_size = method, step, step_size
        name = self.STEP_SIZE_NAMES.get(method, "step size")
        msg = (
            f"{method} diverged at step {step} ({name}={step_size:g}): samples contain NaN or Inf. "
            f"Lower {name} in the method's config block and rerun."
        )
        super().__init__(msg + (f" {detail}" if detail else ""))


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


@functools.lru_cache(maxsize=None)
def _schema_defaults(kind: str) -> dict:
    from ..config import load_schema

    for case in load_schema()["definitions"]["method"]["allOf"]:
        if case["if"]["properties"]["kind"]["const"] == kind:
            return {k: v["default"] for k, v in case["then"]["properties"].items() if "default" in v}
    raise ValueError(f"the config schema defines no refinement method kind {kind!r}")


def with_defaults(kind: str, params: dict) -> dict:
    """``params`` over the schema's defaults for ``kind``: the schema stays the one home of every default,
    also for callers (tests, benchmarks, notebooks) that pass only some hyper-parameters."""
    return {**_schema_defaults(kind), **params}
