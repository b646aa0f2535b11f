"""The unrefined base model: G(z0) only. The reference row every refinement method is compared with."""

from __future__ import annotations

import torch

from .common import GeneratorFn, LogitFn, RefinementResult, to_data


def run_base(
    z0: torch.Tensor,
    generator: GeneratorFn,
    logit_fn: LogitFn,
    params: dict,
    rng: torch.Generator,
    *,
    prior: str,
) -> RefinementResult:
    """Snapshots {0: G(z0)}. params, rng, logit_fn and prior are accepted for the common interface and
    unused (no randomness is consumed)."""
    return RefinementResult(snapshots={0: to_data(z0, generator)}, info={})
