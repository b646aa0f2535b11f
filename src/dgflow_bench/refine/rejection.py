"""The two rejection baselines: Discriminator Rejection Sampling and MH-GAN. Both treat the generator as a
proposal distribution p_G and the discriminator logit d as a log density-ratio estimate,
exp(d(x)) ~ p_data(x) / p_G(x) (exact for the optimal logistic discriminator). Neither moves a sample: each
output is some generator sample G(z), and ``final_latents`` are the latents z of the output samples.

DRS (Azadi, Olsson, Darrell, Goodfellow & Odena, "Discriminator Rejection Sampling", ICLR 2019).
Rejection sampling accepts x ~ p_G with probability p_data(x) / (M p_G(x)) = exp(d(x) - d_M), where
d_M = log M is the largest logit. d_M is estimated as the largest logit over a burn-in sample of the
generator and raised whenever a proposal batch holds a larger one. The paper writes the acceptance as
p = sigmoid(F(x)) with

    F(x) = d(x) - d_M - log(1 - exp(d(x) - d_M - eps)) - gamma,

(eps keeps the log finite at the maximum; the log is computed as log(-expm1(.)), stable near 0). With
gamma = 0, sigmoid(F) = r / (1 + r (1 - e^-eps)), r = exp(d - d_M): exact rejection sampling up to a
relative O(eps) error. The paper sets gamma per batch to a percentile of F (``gamma_percentile``); a larger
gamma lowers every acceptance probability, so a higher percentile accepts less, and a percentile whose F is
negative (the usual case: most proposals have r < 1/2) accepts more than gamma = 0, at the cost of
exactness. Proposals come in batches of len(z0), the first batch being G(z0) itself (the latents every
method shares); accepted samples are kept in proposal order. A proposal budget bounds the work; places still
empty when it is spent take the unused proposals with the highest acceptance probability.

MH-GAN (Turner, Hung, Frank, Saatci & Yosinski, "Metropolis-Hastings Generative Adversarial Networks",
ICML 2019). An independence Metropolis-Hastings chain with proposal p_G and target p_data moves x -> x'
with probability min(1, w(x') / w(x)), w = p_data / p_G. For a calibrated discriminator D = sigmoid(c),
w = D / (1 - D) = exp(c), so the acceptance is min(1, exp(c(x') - c(x))). The calibration is Platt scaling,
c = a d + b, fitted by logistic regression on held-out real samples against as many generator samples
(``fit_platt``; ``calibration: none`` takes a = 1, b = 0). One chain per output sample, all vectorised; the
output is each chain's state after K proposals. The paper starts each chain at a real image (so no burn-in
is needed) and restarts from a generator sample when a chain never moves; here every chain starts at G(z0),
which is that restart, so every method's samples start from the same latents and a chain that never moves
returns exactly the base sample (counted in ``chains_never_moved``).

Both run under torch.no_grad() (no backward pass) and count the samples each network sees with the shared
refine.common.Counter (info["network_evaluations"], info["evaluations_by_step"]). A ``generator`` of None
means data space: proposals are prior draws taken as data, and ``final_latents`` is None.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from ..progress import progress as progress_bar
from ..runtime import latent_sampler
from .common import Counter, GeneratorFn, LogitFn, RefinementResult, uniform_from

if TYPE_CHECKING:  # the parameter classes run this module lazily: no import back at run time
    from .params import DRSParams, MHGANParams

CALIBRATION_CHUNK = 1024  # samples per forward when fitting the calibration (the held-out set may be large)


class _Networks(Counter):
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


def _draw(prior: str, n: int, like: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """n prior draws shaped like one row of ``like``, from ``rng`` on its own device, moved to ``like``'s
    device and dtype (so a CPU generator serves CUDA batches, as refine/common.randn_from does)."""
    dim = like[0].numel()
    z = latent_sampler(prior, dim, rng.device)(n, rng)
    return z.reshape(n, *like.shape[1:]).to(device=like.device, dtype=like.dtype)


# ---------------------------------------------------------------- DRS

def drs_score(d: torch.Tensor, max_logit: float, eps: float, gamma: float = 0.0) -> torch.Tensor:
    """F = d - d_M - log(1 - exp(d - d_M - eps)) - gamma; needs d <= d_M. log(-expm1(t)) = log(1 - e^t)
    without the cancellation of 1 - exp(t) for t near 0."""
    t = d - max_logit
    return t - torch.log(-torch.expm1(t - eps)) - gamma


def _burn_in_max(nets: _Networks, n_samples: int, chunk: int, like: torch.Tensor, prior: str,
                 rng: torch.Generator) -> float:
    best = -math.inf
    for start in range(0, n_samples, chunk):
        z = _draw(prior, min(chunk, n_samples - start), like, rng)
        best = max(best, float(nets.checked_logit(nets.data(z)).max()))
    return best


@torch.no_grad()
def run_drs(
    z0: torch.Tensor,
    generator: GeneratorFn,
    logit_fn: LogitFn,
    params: DRSParams,
    rng: torch.Generator,
    *,
    prior: str,
    progress: bool = False,
) -> RefinementResult:
    """Discriminator Rejection Sampling of len(z0) samples (parameters: refine/params.py DRSParams)."""
    n = z0.shape[0]
    eps, pct = float(params.eps), params.gamma_percentile
    max_batches = int(params.max_proposals_per_sample)  # budget max_proposals_per_sample * n, in batches of n
    if n < 1 or eps <= 0 or max_batches < 1 or int(params.burn_in) < 1:
        raise ValueError(f"DRS needs a non-empty batch, eps > 0, burn_in >= 1 and max_proposals_per_sample >= 1; "
                         f"got n={n}, eps={eps}, burn_in={params.burn_in}, "
                         f"max_proposals_per_sample={params.max_proposals_per_sample}")
    nets = _Networks(generator, logit_fn)
    z0 = z0.detach()
    burn_in = 0
    if params.max_logit is None:
        burn_in = int(params.burn_in)
        d_max = _burn_in_max(nets, burn_in, n, z0, prior, rng)
    else:
        d_max = float(params.max_logit)

    kept_x, kept_z, n_kept = [], [], 0
    # best rejected proposals so far (at most n), the fill for places the budget leaves empty
    spare_x = spare_z = spare_p = None
    proposals = acceptances = 0
    gamma = 0.0
    base = None
    for k in progress_bar(range(max_batches), desc="drs", leave=False, disable=not progress):
        z = z0.clone() if k == 0 else _draw(prior, n, z0, rng)
        x = nets.data(z)
        if k == 0:
            base = x.clone()  # the proposals G(z0) are the step-0 snapshot: no extra forward
            nets.mark(0)  # after the burn-in, when there is one: it ran first
            spare_x, spare_z, spare_p = x[:0], z[:0], torch.empty(0, device=x.device, dtype=torch.float64)
        d = nets.checked_logit(x)
        d_max = max(d_max, float(d.max()))  # DRS keeps d_M the largest logit seen
        score = drs_score(d, d_max, eps)
        gamma = float(torch.quantile(score.double(), pct / 100.0)) if pct is not None else 0.0
        p = torch.sigmoid(score - gamma)
        accept = uniform_from(n, p, rng) < p
        proposals += n
        acceptances += int(accept.sum())
        take = accept.nonzero().reshape(-1)[: n - n_kept]  # proposal order
        kept_x.append(x[take])
        kept_z.append(z[take])
        n_kept += take.numel()
        if n_kept == n:
            break
        rejected = ~accept
        spare_x = torch.cat([spare_x, x[rejected]])
        spare_z = torch.cat([spare_z, z[rejected]])
        spare_p = torch.cat([spare_p, p[rejected].double()])
        if spare_p.numel() > n:  # keep only the n most likely to be accepted
            best = torch.topk(spare_p, n).indices
            spare_x, spare_z, spare_p = spare_x[best], spare_z[best], spare_p[best]

    filled = n - n_kept
    if filled:  # budget spent: highest acceptance probability first
        best = torch.argsort(spare_p, descending=True, stable=True)[:filled]
        kept_x.append(spare_x[best])
        kept_z.append(spare_z[best])
    out_x, out_z = torch.cat(kept_x), torch.cat(kept_z)
    info = {
        "proposals": proposals,
        "accepted": n_kept,  # output samples that passed the test (n unless the budget ran out)
        "acceptance_rate": acceptances / proposals,  # every acceptance event, also those past the n needed
        "proposals_per_sample": proposals / n,
        "burn_in_samples": burn_in,
        "max_logit": d_max,
        "gamma": gamma,
        "filled_without_acceptance": filled,
        **nets.info(1),
    }
    return RefinementResult(snapshots={0: base, 1: out_x}, info=info,
                            final_latents=out_z if generator is not None else None)


# ---------------------------------------------------------------- Platt calibration

def fit_platt(real_logits: torch.Tensor, fake_logits: torch.Tensor, iterations: int = 100,
              ridge: float = 1e-8) -> tuple[float, float]:
    """(a, b) of the logistic regression P(real | d) = sigmoid(a d + b), labels real 1, generated 0, by
    Newton's method (IRLS) in float64 from (1, 0). The tiny ridge keeps the Newton system solvable (and the
    fit finite) when the two sets are separable. Deterministic: no randomness, a fixed iteration cap."""
    d = torch.cat([real_logits.detach().reshape(-1), fake_logits.detach().reshape(-1)]).to("cpu", torch.float64)
    y = torch.cat([torch.ones(real_logits.numel()), torch.zeros(fake_logits.numel())]).to(torch.float64)
    if d.numel() < 2 or not torch.isfinite(d).all():
        raise ValueError(f"Platt scaling needs finite logits of both sets; got {real_logits.numel()} real and "
                         f"{fake_logits.numel()} generated, {int((~torch.isfinite(d)).sum())} non-finite")
    features = torch.stack([d, torch.ones_like(d)], 1)
    w = torch.tensor([1.0, 0.0], dtype=torch.float64)
    eye = torch.eye(2, dtype=torch.float64)

    def objective(w: torch.Tensor) -> float:  # penalised log-likelihood, the quantity each step must raise
        t = features @ w
        return float((y * t - torch.nn.functional.softplus(t)).sum() - 0.5 * ridge * (w @ w))

    value = objective(w)
    for _ in range(iterations):
        p = torch.sigmoid(features @ w)
        grad = features.T @ (y - p) - ridge * w
        hess = (features * (p * (1 - p)).unsqueeze(1)).T @ features + ridge * eye
        step = torch.linalg.solve(hess, grad)
        # step halving: a full Newton step can overshoot far from the optimum; halving keeps it an ascent
        for _ in range(30):
            new_value = objective(w + step)
            if new_value >= value:
                break
            step = step / 2
        else:
            break  # no ascent left: the optimum, up to rounding
        w, value = w + step, new_value
        if float(step.abs().max()) < 1e-12:
            break
    return float(w[0]), float(w[1])


@torch.no_grad()
def fit_platt_on(real: torch.Tensor, generator: GeneratorFn, logit_fn: LogitFn, rng: torch.Generator, *,
                 prior: str, latent_dim: int) -> tuple[float, float]:
    """Platt scaling of ``logit_fn`` on ``real`` (model input form) against as many generator samples drawn
    with ``rng`` from ``prior`` (generator None: prior draws taken as data, shaped like ``real``)."""
    nets = _Networks(generator, logit_fn)
    m = real.shape[0]
    real_d, fake_d = [], []
    for start in range(0, m, CALIBRATION_CHUNK):
        real_d.append(nets.checked_logit(real[start:start + CALIBRATION_CHUNK]))
    for start in range(0, m, CALIBRATION_CHUNK):
        size = min(CALIBRATION_CHUNK, m - start)
        if generator is None:
            z = _draw(prior, size, real, rng)
        else:
            z = latent_sampler(prior, latent_dim, rng.device)(size, rng).to(real.device)
        fake_d.append(nets.checked_logit(nets.data(z)))
    return fit_platt(torch.cat(real_d), torch.cat(fake_d))


# ---------------------------------------------------------------- MH-GAN

def _calibration(params: MHGANParams) -> tuple[float, float]:
    if params.calibration == "none":
        return 1.0, 0.0
    if params.calibration != "platt":
        raise ValueError(f"unknown MH-GAN calibration {params.calibration!r}: choose platt or none")
    if params.platt is None:
        raise ValueError("MH-GAN calibration 'platt' needs params.platt = (a, b): call MHGANParams.prepare() with "
                         "held-out real samples first (the refine stage does), or set platt by hand, or use "
                         "calibration: none")
    a, b = params.platt
    return float(a), float(b)


@torch.no_grad()
def run_mhgan(
    z0: torch.Tensor,
    generator: GeneratorFn,
    logit_fn: LogitFn,
    params: MHGANParams,
    rng: torch.Generator,
    *,
    prior: str,
    progress: bool = False,
) -> RefinementResult:
    """MH-GAN: one independence Metropolis-Hastings chain of K proposals per sample, started at G(z0)
    (parameters: refine/params.py MHGANParams)."""
    a, b = _calibration(params)
    steps = int(params.k)
    n = z0.shape[0]
    if steps < 1 or n < 1:
        raise ValueError(f"MH-GAN needs k >= 1 and a non-empty batch, got k={steps}, n={n}")
    nets = _Networks(generator, logit_fn)
    z = z0.detach().clone()
    x = nets.data(z)
    base = x.clone()
    nets.mark(0)
    score = a * nets.checked_logit(x) + b  # calibrated logit c: the log odds, i.e. the log density ratio
    moved = torch.zeros(n, dtype=torch.bool, device=z0.device)
    accepted = 0
    for _ in progress_bar(range(steps), desc="mh-gan", leave=False, disable=not progress):
        z_new = _draw(prior, n, z0, rng)
        x_new = nets.data(z_new)
        score_new = a * nets.checked_logit(x_new) + b
        # min(1, exp(c' - c)) as a comparison in log space: no overflow for large score gaps
        accept = torch.log(uniform_from(n, score, rng)) < score_new - score
        z = torch.where(_rows(accept, z), z_new, z)
        x = torch.where(_rows(accept, x), x_new, x)
        score = torch.where(accept, score_new, score)
        moved |= accept
        accepted += int(accept.sum())
    info = {
        "proposals": steps * n,
        "acceptance_rate": accepted / (steps * n),
        "chains_never_moved": int((~moved).sum()),
        "k": steps,
        "platt": (a, b),
        "calibration": params.calibration,
        **nets.info(1),
    }
    return RefinementResult(snapshots={0: base, 1: x}, info=info,
                            final_latents=z if generator is not None else None)


def _rows(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return mask.reshape(-1, *([1] * (like.dim() - 1)))
