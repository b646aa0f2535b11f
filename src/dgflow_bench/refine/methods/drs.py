"""Discriminator Rejection Sampling (Azadi, Olsson, Darrell, Goodfellow & Odena, ICLR 2019), as the MH-GAN
reference runs it (uber-research/metropolis-hastings-gans at 41857c9, mhgan/mh.py:96-136, called on calibrated
scores in mhgan/demo_mhgan.py:169-177).

Rejection sampling accepts x ~ p_G with probability p_data(x) / (M p_G(x)) = exp(c(x) - c_M), c the calibrated
logit (refine/calibration.py) and c_M = log M the largest one. c_M is the calibrated largest raw logit of a
burn-in sample of the generator (the reference: 156 x 64 samples, demo_mhgan.py:208-213; the calibration is
monotone, so this is the largest calibrated logit), raised whenever a proposal batch holds a larger one
(mh.py:117-118 raises it along each chain). The paper writes the acceptance as p = sigmoid(F(x)) with

    F(x) = c(x) - c_M - log(1 - exp(c(x) - c_M - eps)) - gamma,

(eps keeps the log finite at the maximum; the log is computed as log(-expm1(.)), stable near 0). With
gamma = 0, sigmoid(F) = r / (1 + r (1 - e^-eps)), r = exp(c - c_M): exact rejection sampling up to a relative
O(eps) error. The paper and the reference set gamma to a percentile of F (``gamma_percentile``; the reference's
95, mh.py:96 and 123-125, over the 640 proposals of one output image; here over each proposal batch): a larger
gamma lowers every acceptance probability, so a higher percentile accepts less, at the cost of exactness.

Proposals come in batches of len(z0), the first being G(z0) itself (the latents every method shares);
accepted samples are kept in proposal order. A budget of ``max_proposals_per_sample`` bounds the work; places
still empty when it is spent take the unused proposals with the highest acceptance probability (the
reference takes the chain's highest score, mh.py:130-133), counted in ``filled_without_acceptance``.

Snapshots: step 0 is G(z0), charged only its generator forward (the burn-in, which runs after it, is charged to
the first refined snapshot); step b (each of ``snapshot_at`` below the budget, and the budget itself) is the
output had the budget been b proposals per sample, which is exactly what the run holds after b batches (later
batches draw nothing earlier ones used): the accepted samples so far and the fill. A run that fills every
place before budget b gives its final output, at its final counts, for b.

Its paper column is DRS; the DGflow and DOT releases have no DRS settings to compare with. torch is imported
inside the functions: the planner reads the parameter class without it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Optional

from ..method_params import (CALIBRATION, CALIBRATION_SIZE, DISCRIMINATOR, GENERATOR_BN, LATENT_PRIOR, PLATT,
                             SNAPSHOT_AT, SPECTRAL_NORM, MethodParams, calibration_real_samples, fitted_field, knob,
                             method)

if TYPE_CHECKING:
    import torch

    from ..common import RefinementResult
    from ..rejection import Networks


@method("drs")
@dataclass(frozen=True)
class DRSParams(MethodParams):
    """Discriminator Rejection Sampling (Azadi et al., ICLR 2019; run_drs below): proposals G(z), the first
    batch being the shared latents z0, accepted with probability sigmoid(F(x)), F = c - c_M - log(1 - exp(c -
    c_M - eps)) - gamma, where c is the calibrated logit (exp(c) the density-ratio estimate) and c_M the largest
    seen (from a burn-in sample, then kept up to date). With gamma = 0 and the true maximum this is exact
    rejection sampling (acceptance exp(c - c_M)); the default shifts F by its 95th percentile per batch, as the
    reference (mh.py:96, 123-125)."""

    needs_real_data: ClassVar[bool] = True  # the calibration is fitted on the held-out real split
    column = "DRS"

    discriminator: str = knob("finetuned", **{**DISCRIMINATOR, "description": (
        "DRS needs a density-ratio estimate: its paper fine-tunes D with the logistic loss, the `finetuned` "
        "estimator here (default); raw or model as for the other methods")})
    generator_bn: Optional[str] = knob(None, **GENERATOR_BN)
    spectral_norm: Optional[str] = knob(None, **SPECTRAL_NORM)
    latent_prior: Optional[str] = knob(None, **LATENT_PRIOR)
    calibration: str = knob("isotonic", **CALIBRATION)
    calibration_size: int = knob(2000, **CALIBRATION_SIZE)
    platt: Optional[tuple] = knob(None, **PLATT)
    burn_in: int = knob(10000, "generator samples whose largest logit starts d_M, once per run (the reference: "
                        "156 batches of 64, demo_mhgan.py:208-213)", type="integer", minimum=1)
    gamma_percentile: Optional[float] = knob(
        95.0, "gamma is this percentile of F over each proposal batch (the reference's 95, mh.py:96; a higher p "
        "means a larger gamma and fewer acceptances); null: gamma = 0, exact rejection sampling against the "
        "calibrated d", type=["number", "null"], minimum=0, maximum=100)
    eps: float = knob(1e-6, "keeps log(1 - exp(c - c_M - eps)) finite at the maximum (mh.py:96)", type="number",
                      exclusiveMinimum=0)
    max_proposals_per_sample: int = knob(
        640, "proposal budget: a batch stops drawing after this many proposals per sample (the reference draws "
        "640 per output image, demo_mhgan.py:206-207); places still empty take the unused proposals most likely "
        "to be accepted (the reference: the highest score, mh.py:130-133), counted in the info",
        type="integer", minimum=1)
    max_logit: Optional[float] = knob(None, "d_M (raw logit) fixed by hand instead of the burn-in estimate (null: "
                                      "estimate)", type=["number", "null"])
    snapshot_at: tuple = knob((2, 8, 32), **{**SNAPSHOT_AT, "description": "proposal budgets per sample " +
                                             SNAPSHOT_AT["description"]})
    fitted: Any = fitted_field()

    @property
    def steps(self) -> int:  # type: ignore[override]  # the final snapshot's key
        return int(self.max_proposals_per_sample)

    @property
    def real_samples(self) -> int:  # type: ignore[override]
        return calibration_real_samples(self)

    def run(self, z0, generator, logit_fn, rng, *, prior: str, progress: bool = False):
        return run_drs(z0, generator, logit_fn, self, rng, prior=prior, progress=progress)

    def prepare(self, real, generator, logit_fn, rng, *, prior: str, latent_dim: int) -> "DRSParams":
        from ..rejection import fit_calibration

        return fit_calibration(self, real, generator, logit_fn, rng, prior, latent_dim)

    def after_first_batch(self, info: dict) -> "DRSParams":
        # d_M once per run: the burn-in runs on the first batch; later batches start from its final value
        return dataclasses.replace(self, max_logit=info["max_logit"]) if self.max_logit is None else self



def drs_score(c: torch.Tensor, max_logit: float, eps: float, gamma: float = 0.0) -> torch.Tensor:
    """F = c - c_M - log(1 - exp(c - c_M - eps)) - gamma; needs c <= c_M. log(-expm1(t)) = log(1 - e^t)
    without the cancellation of 1 - exp(t) for t near 0."""
    import torch

    t = c - max_logit
    return t - torch.log(-torch.expm1(t - eps)) - gamma


def _burn_in_max(nets: Networks, n_samples: int, chunk: int, like: torch.Tensor, prior: str,
                 rng: torch.Generator) -> float:
    from ..rejection import draw

    best = -math.inf
    for start in range(0, n_samples, chunk):
        z = draw(prior, min(chunk, n_samples - start), like, rng)
        best = max(best, float(nets.checked_logit(nets.data(z)).max()))
    return best


class _Pool:
    """Accepted proposals in order, and the (at most n) likeliest rejected ones: the fill of a spent budget."""

    def __init__(self, n: int, x: torch.Tensor, z: torch.Tensor):
        import torch

        self.n, self.n_kept = n, 0
        self.kept_x, self.kept_z = [], []
        self.spare_x, self.spare_z = x[:0], z[:0]
        self.spare_p = torch.empty(0, device=x.device, dtype=torch.float64)

    def add(self, x: torch.Tensor, z: torch.Tensor, accept: torch.Tensor, p: torch.Tensor) -> None:
        import torch

        take = accept.nonzero().reshape(-1)[: self.n - self.n_kept]  # proposal order
        self.kept_x.append(x[take])
        self.kept_z.append(z[take])
        self.n_kept += take.numel()
        if self.full:
            return
        rejected = ~accept
        self.spare_x = torch.cat([self.spare_x, x[rejected]])
        self.spare_z = torch.cat([self.spare_z, z[rejected]])
        self.spare_p = torch.cat([self.spare_p, p[rejected].double()])
        if self.spare_p.numel() > self.n:  # keep only the n most likely to be accepted
            best = torch.topk(self.spare_p, self.n).indices
            self.spare_x, self.spare_z, self.spare_p = self.spare_x[best], self.spare_z[best], self.spare_p[best]

    @property
    def full(self) -> bool:
        return self.n_kept == self.n

    def output(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        """(samples, latents, places filled without acceptance) if the budget ended now."""
        import torch

        filled = self.n - self.n_kept
        best = torch.argsort(self.spare_p, descending=True, stable=True)[:filled]  # likeliest first
        return (torch.cat([*self.kept_x, self.spare_x[best]]), torch.cat([*self.kept_z, self.spare_z[best]]),
                filled)


def run_drs(z0: torch.Tensor, generator, logit_fn, params: DRSParams, rng: torch.Generator, *, prior: str,
            progress: bool = False) -> RefinementResult:
    """Discriminator Rejection Sampling of len(z0) samples (parameters: DRSParams above); no backward pass."""
    import torch

    with torch.no_grad():
        return _run_drs(z0, generator, logit_fn, params, rng, prior=prior, progress=progress)


def _run_drs(
    z0: torch.Tensor,
    generator,
    logit_fn,
    params: DRSParams,
    rng: torch.Generator,
    *,
    prior: str,
    progress: bool = False,
) -> RefinementResult:
    import torch

    from ...progress import progress as progress_bar
    from ..common import RefinementResult, uniform_from
    from ..rejection import Networks, calibration_in_use, draw, kept_steps

    n = z0.shape[0]
    eps, pct = float(params.eps), params.gamma_percentile
    budget = int(params.max_proposals_per_sample)  # proposals per sample, drawn in batches of n
    if n < 1 or eps <= 0 or budget < 1 or int(params.burn_in) < 1:
        raise ValueError(f"DRS needs a non-empty batch, eps > 0, burn_in >= 1 and max_proposals_per_sample >= 1; "
                         f"got n={n}, eps={eps}, burn_in={params.burn_in}, "
                         f"max_proposals_per_sample={params.max_proposals_per_sample}")
    calibration, fit_counts = calibration_in_use(params)
    keep = kept_steps(params.snapshot_at, budget)
    nets = Networks(generator, logit_fn)
    z0 = z0.detach()
    x0 = nets.data(z0)  # the base samples, also the first proposal batch: no second forward
    nets.mark(0)  # before the burn-in: step 0 is the base sample, whose cost is its generator forward
    burn_in = 0
    if params.max_logit is None:
        burn_in = int(params.burn_in)
        d_max = _burn_in_max(nets, burn_in, n, z0, prior, rng)
    else:
        d_max = float(params.max_logit)

    pool = _Pool(n, x0, z0)
    snapshots, latents, filled_by_step = {0: x0.clone()}, {}, {}
    proposals = acceptances = 0
    gamma = 0.0
    for k in progress_bar(range(budget), desc="drs", leave=False, disable=not progress):
        z = z0 if k == 0 else draw(prior, n, z0, rng)
        x = x0 if k == 0 else nets.data(z)
        d = nets.checked_logit(x)
        d_max = max(d_max, float(d.max()))  # DRS keeps d_M the largest logit seen
        c_max = float(calibration(torch.tensor([d_max], dtype=torch.float64)))  # monotone: the largest c
        score = drs_score(calibration(d), c_max, eps)
        gamma = float(torch.quantile(score.double(), pct / 100.0)) if pct is not None else 0.0
        p = torch.sigmoid(score - gamma)
        accept = uniform_from(n, p, rng) < p
        proposals += n
        acceptances += int(accept.sum())
        pool.add(x, z, accept, p)
        if k + 1 in keep or pool.full:
            _keep(pool, nets, [s for s in keep if s == k + 1 or (pool.full and s > k)], snapshots, latents,
                  filled_by_step)
        if pool.full:
            break
    final = keep[-1]
    info = {
        "proposals": proposals,
        "accepted": pool.n_kept,  # output samples that passed the test (n unless the budget ran out)
        "acceptance_rate": acceptances / proposals,  # every acceptance event, also those past the n needed
        "proposals_per_sample": proposals / n,
        "burn_in_samples": burn_in,
        "max_logit": d_max,
        "gamma": gamma,  # the last batch's
        "filled_without_acceptance": filled_by_step[final],
        "filled_by_step": filled_by_step,
        "calibration": calibration.record(),
        "calibration_evaluations": fit_counts,
        **nets.info(final),
    }
    return RefinementResult(snapshots=snapshots, info=info,
                            final_latents=latents[final] if generator is not None else None)


def _keep(pool: _Pool, nets: Networks, steps: list[int], snapshots: dict, latents: dict, filled: dict) -> None:
    """The output as it stands, for each budget in ``steps``, charged the passes done so far."""
    x, z, n_filled = pool.output()
    for step in steps:
        snapshots[step], latents[step], filled[step] = x, z, n_filled
        nets.mark(step)
