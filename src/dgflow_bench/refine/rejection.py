"""What the two rejection baselines share: DRS (refine/methods/drs.py) and MH-GAN (refine/methods/mhgan.py) treat the
generator as a proposal distribution p_G and a calibrated discriminator logit c as a log density-ratio estimate,
exp(c(x)) ~ p_data(x) / p_G(x) (refine/calibration.py). Neither moves a sample: each output is some generator sample
G(z), and ``final_latents`` are the latents z of the output samples.

Both run under torch.no_grad() (no backward pass) and count the samples each network sees with the shared
refine.common.Counter (info["network_evaluations"], info["evaluations_by_step"]); the calibration fit's passes,
done once per run before the first batch, are reported apart (info["calibration_evaluations"]). Both keep
snapshots at intermediate budgets (``snapshot_at``), each charged the passes done when it existed. A
``generator`` of None means data space: proposals are prior draws taken as data, and ``final_latents`` is None.
"""

from __future__ import annotations

import dataclasses

import torch

from ..runtime import latent_sampler
from .calibration import Calibration, fit_on
from .common import Counter
from .method_params import EVALUATION_KEYS


class Networks(Counter):
    """The shared counter, with the detached outputs and the logit check these methods want."""

    def data(self, z: torch.Tensor) -> torch.Tensor:
        if self.generator is None:  # data space: the "latent" is the sample
            return z.clone()
        return self.generator(z).detach()

    def checked_logit(self, x: torch.Tensor) -> torch.Tensor:
        d = self.logit(x).detach().reshape(-1)
        if not torch.isfinite(d).all():  # a NaN logit would silently poison d_M or every acceptance
            raise ValueError(f"the discriminator returned non-finite logits on {int((~torch.isfinite(d)).sum())} "
                             f"of {d.numel()} samples: it (or the generator) is broken")
        return d


def fit_calibration(params, real, generator, logit_fn, rng, prior: str, latent_dim: int):
    """``params`` with its calibration fitted on the held-out ``real`` rows (the ``prepare`` of DRS and MH-GAN);
    as it is when it needs no fit (``real_samples`` 0)."""
    if not params.real_samples:
        return params
    fitted = fit_on(real[: params.calibration_size], generator, logit_fn, rng, kind=params.calibration,
                    prior=prior, latent_dim=latent_dim, platt=params.platt)
    return dataclasses.replace(params, fitted=fitted)


def draw(prior: str, n: int, like: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """n prior draws shaped like one row of ``like``, from ``rng`` on its own device, moved to ``like``'s
    device and dtype (so a CPU generator serves CUDA batches, as refine/common.randn_from does)."""
    dim = like[0].numel()
    z = latent_sampler(prior, dim, rng.device)(n, rng)
    return z.reshape(n, *like.shape[1:]).to(device=like.device, dtype=like.dtype)


def kept_steps(snapshot_at, final: int) -> list[int]:
    """The snapshot steps after 0: each requested budget below ``final``, then ``final`` itself."""
    bad = [v for v in snapshot_at if int(v) < 1]
    if bad:
        raise ValueError(f"snapshot_at holds {bad}: budgets are proposals per sample, at least 1")
    return sorted({int(v) for v in snapshot_at if int(v) < final} | {int(final)})


def calibration_in_use(params) -> tuple[Calibration, dict]:
    """(the calibration a DRS / MH-GAN run uses, the passes its fit cost) from the parameters' fit (``prepare``)
    or, for calibration none or a hand-set Platt pair, without a fit."""
    if params.fitted is not None:
        return params.fitted.calibration, dict(params.fitted.evaluations)
    none = dict.fromkeys(EVALUATION_KEYS, 0)
    if params.calibration == "none":
        return Calibration("none"), none
    if params.calibration == "platt" and params.platt is not None:
        return Calibration("platt", platt=tuple(float(v) for v in params.platt)), none
    raise ValueError(f"{params.kind} calibration {params.calibration!r} is fitted on held-out real samples: call "
                     f"{type(params).__name__}.prepare() first (the refine stage does), or set platt: [a, b] by "
                     "hand with calibration: platt, or use calibration: none")


def rows(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A (N,) mask broadcastable against (N, ...)."""
    return mask.reshape(-1, *([1] * (like.dim() - 1)))
