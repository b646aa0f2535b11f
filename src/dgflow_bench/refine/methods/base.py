"""The unrefined base model, G(z0): the reference row of every table (the paper's column 'Base')."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..method_params import GENERATOR_BN, LATENT_PRIOR, SPECTRAL_NORM, MethodParams, knob, method


@method("base")
@dataclass(frozen=True)
class BaseParams(MethodParams):
    """The unrefined base model, G(z0): the reference row."""

    column = "Base"

    generator_bn: Optional[str] = knob(None, **GENERATOR_BN)
    spectral_norm: Optional[str] = knob(None, **SPECTRAL_NORM)
    latent_prior: Optional[str] = knob(None, **LATENT_PRIOR)

    def run(self, z0, generator, logit_fn, rng, *, prior: str, progress: bool = False):
        from ..common import Counter, RefinementResult, to_data

        nets = Counter(generator, logit_fn)  # counts the one generator forward
        return RefinementResult(snapshots={0: to_data(z0, nets.generator)}, info=nets.info(0))

    def compared_with(self, spec: dict, cell):
        """The DGflow release's sampling settings (its base samples are the step-0 images of its runs)."""
        return cell.dgflow_release(self)
