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
"""

from __future__ import annotations

import math

import torch

from ..progress import progress as progress_bar
from .common import RefinementResult, uniform_from
from .params import DRSParams
from .rejection import Networks, calibration_in_use, draw, kept_steps


def drs_score(c: torch.Tensor, max_logit: float, eps: float, gamma: float = 0.0) -> torch.Tensor:
    """F = c - c_M - log(1 - exp(c - c_M - eps)) - gamma; needs c <= c_M. log(-expm1(t)) = log(1 - e^t)
    without the cancellation of 1 - exp(t) for t near 0."""
    t = c - max_logit
    return t - torch.log(-torch.expm1(t - eps)) - gamma


def _burn_in_max(nets: Networks, n_samples: int, chunk: int, like: torch.Tensor, prior: str,
                 rng: torch.Generator) -> float:
    best = -math.inf
    for start in range(0, n_samples, chunk):
        z = draw(prior, min(chunk, n_samples - start), like, rng)
        best = max(best, float(nets.checked_logit(nets.data(z)).max()))
    return best


class _Pool:
    """Accepted proposals in order, and the (at most n) likeliest rejected ones: the fill of a spent budget."""

    def __init__(self, n: int, x: torch.Tensor, z: torch.Tensor):
        self.n, self.n_kept = n, 0
        self.kept_x, self.kept_z = [], []
        self.spare_x, self.spare_z = x[:0], z[:0]
        self.spare_p = torch.empty(0, device=x.device, dtype=torch.float64)

    def add(self, x: torch.Tensor, z: torch.Tensor, accept: torch.Tensor, p: torch.Tensor) -> None:
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
        filled = self.n - self.n_kept
        best = torch.argsort(self.spare_p, descending=True, stable=True)[:filled]  # likeliest first
        return (torch.cat([*self.kept_x, self.spare_x[best]]), torch.cat([*self.kept_z, self.spare_z[best]]),
                filled)


@torch.no_grad()
def run_drs(
    z0: torch.Tensor,
    generator,
    logit_fn,
    params: DRSParams,
    rng: torch.Generator,
    *,
    prior: str,
    progress: bool = False,
) -> RefinementResult:
    """Discriminator Rejection Sampling of len(z0) samples (parameters: refine/params.py DRSParams)."""
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
