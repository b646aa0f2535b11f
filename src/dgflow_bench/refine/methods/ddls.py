"""Discriminator Driven Latent Sampling (Che et al., NeurIPS 2020).

Langevin dynamics in latent space on the energy E(z) = -log p0(z) - d(G(z)):

    z <- z - (eps / 2) grad E(z) + sqrt(eps) xi,   xi ~ N(0, I);  output G(z)

Priors:
- 'normal': -log p0(z) = |z|^2 / 2 (+ const), so grad E = z - grad d(G(z)).
- 'uniform' (U[-1, 1]^k): the log-prior is flat inside the box and -inf outside. The ``support`` rule
  (refine/support.py) decides what happens at the boundary; DDLS's default is REFLECTION: after each
  Langevin step every coordinate that left the box is mirrored back, z > 1 -> 2 - z and z < -1 -> -2 - z,
  repeated until inside. Reflected Brownian motion on the box has the uniform law as its stationary law;
  with d = 0 even the discrete chain keeps the uniform law exactly (the box's mirror images tile R^k, so a
  folded Gaussian step of a uniform point is uniform). Clipping ('clip') piles mass on the faces.

Optional MALA (``mala=True``, normal prior only): the Langevin move is a proposal z' ~ N(z - eps/2 grad E(z),
eps I), accepted per sample with probability min(1, exp(-E(z') + E(z) + log q(z | z') - log q(z' | z))), so
the chain targets exp(-E) exactly. With the uniform prior the reflected proposal's density is an infinite
sum of images, so MALA is not offered there (NotImplementedError).

Its step size is ``eps``; the DGflow and DOT releases have no DDLS settings to compare with. torch is imported
inside the functions: the planner reads the parameter class without it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from ..method_params import (DISCRIMINATOR, GENERATOR_BN, LATENT_PRIOR, SPECTRAL_NORM, SUPPORT, MethodParams, knob,
                             method)

if TYPE_CHECKING:
    import torch

    from ..common import GeneratorFn, LogitFn, RefinementResult


@method("ddls")
@dataclass(frozen=True)
class DDLSParams(MethodParams):
    step_size_name, column = "eps", "DDLS"

    discriminator: str = knob("model", **{**DISCRIMINATOR, "description": (
        "model: the model's own choice (models.<m>.discriminator); raw: the model's own discriminator logit, as "
        "DDLS (Che et al. 2020) uses its SN-GAN discriminator; finetuned: the finetune stage's density-ratio "
        "estimator")})
    generator_bn: Optional[str] = knob(None, **GENERATOR_BN)
    spectral_norm: Optional[str] = knob(None, **SPECTRAL_NORM)
    latent_prior: Optional[str] = knob(None, **LATENT_PRIOR)
    eps: float = knob(0.01, "Langevin step (noise std sqrt(eps))", type="number", exclusiveMinimum=0)
    steps: int = knob(25, type="integer", minimum=0)
    snapshot_every: int = knob(5, type="integer", minimum=1)
    mala: bool = knob(False, "Metropolis-adjusted (normal prior only)", type="boolean")
    support: str = knob("reflect", "bounded (uniform) prior only: reflect (mirrored back into [-1, 1]; keeps the "
                        "uniform law stationary, refine/methods/ddls.py), clip, or none", **SUPPORT)

    def run(self, z0, generator, logit_fn, rng, *, prior: str, progress: bool = False):
        return run_ddls(z0, generator, logit_fn, self, rng, prior=prior, progress=progress)



PRIOR_CHOICES = ("uniform", "normal")


def _sq_norm(v: torch.Tensor) -> torch.Tensor:
    return v.flatten(1).pow(2).sum(1)


def run_ddls(
    z0: torch.Tensor,
    generator: GeneratorFn,
    logit_fn: LogitFn,
    params: DDLSParams,
    rng: torch.Generator,
    *,
    prior: str,
    progress: bool = False,
) -> RefinementResult:
    """Refine G(z0) with DDLS (parameters: DDLSParams above). A ``generator`` of None means G = identity."""
    import torch

    from ...progress import progress as progress_bar
    from ..common import (Counter, RefinementResult, check_finite, data_logit_and_grad, randn_from, snapshot_steps,
                          to_data)
    from ..support import BoundaryTracker

    if prior not in PRIOR_CHOICES:
        raise ValueError(f"unknown latent prior {prior!r}: choose one of {', '.join(PRIOR_CHOICES)}")
    eps = float(params.eps)
    steps = int(params.steps)
    keep = set(snapshot_steps(steps, int(params.snapshot_every)))
    mala = bool(params.mala)
    if eps <= 0:
        raise ValueError(f"DDLS needs eps > 0, got {eps}")
    if mala and prior == "uniform":
        raise NotImplementedError(
            "DDLS mala=True is only implemented for the normal prior: with the uniform prior the "
            "reflected proposal has no simple density. Use mala=False (reflected Langevin) or prior 'normal'."
        )

    nets = Counter(generator, logit_fn)  # every forward and backward below goes through it
    generator, logit_fn = nets.generator, nets.logit
    snapshots: dict = {}  # step 0, G(z0), comes from the first step's forward (no second G(z0))
    if steps == 0 and not mala:
        snapshots[0] = to_data(z0, generator)
        nets.mark(0)
    z = z0.detach().clone()
    info = {"prior": prior, "mala": mala}
    if mala:
        z, rate = _run_mala(z, nets, params, steps, keep, snapshots, rng, progress)
        info["acceptance_rate"] = rate
        return RefinementResult(snapshots=snapshots, info={**info, **nets.info(steps)}, final_latents=z)

    boundary = BoundaryTracker(z.shape[0], z.device, prior, params.support)
    for k in progress_bar(range(steps), desc="ddls", leave=False, disable=not progress):
        before = nets.snapshot()
        x, d, g = data_logit_and_grad(z, generator, logit_fn)
        if k == 0:  # the base samples G(z0): this forward made them
            snapshots[0] = x
            nets.mark(0, nets.generated_alone(before))
        elif k in keep:  # this step's forward already computed G(z_k)
            snapshots[k] = x
            nets.mark(k, nets.generated_since(before))
            boundary.snapshot(k)
        with torch.no_grad():
            grad_e = z - g if prior == "normal" else -g
            z = boundary.step(z - 0.5 * eps * grad_e + math.sqrt(eps) * randn_from(z, rng))
        check_finite(z, params, k + 1)
    if steps > 0:
        snapshots[steps] = to_data(z, generator)
        boundary.snapshot(steps)
    return RefinementResult(snapshots=snapshots, info={**info, **boundary.info(), **nets.info(steps)},
                            final_latents=z)


def _energy_state(z, generator, logit_fn):
    """(G(z), E(z), grad E(z)) for the normal prior, from one forward and one backward."""
    from ..common import data_logit_and_grad

    x, d, g = data_logit_and_grad(z, generator, logit_fn)
    return x, 0.5 * _sq_norm(z) - d, z - g


def _run_mala(z, nets, params, steps, keep, snapshots, rng, progress):
    """Metropolis-adjusted Langevin, normal prior. Caches (G(z), E, grad E) of the current state so each
    step costs one forward and one backward (at the proposal) and snapshots need no extra forward."""
    import torch

    from ...progress import progress as progress_bar
    from ..common import check_finite, randn_from, uniform_from

    eps = float(params.eps)
    generator, logit_fn = nets.generator, nets.logit
    before = nets.snapshot()
    x, energy, grad_e = _energy_state(z, generator, logit_fn)
    snapshots[0] = x.clone()  # the base samples G(z0): the start state's forward made them
    nets.mark(0, nets.generated_alone(before))
    check_finite(energy.unsqueeze(1), params, 0)
    accepted_total = 0.0
    for k in progress_bar(range(steps), desc="ddls[mala]", leave=False, disable=not progress):
        if k > 0 and k in keep:
            snapshots[k] = x.clone()
            nets.mark(k)  # the cached states: every proposal evaluated so far
        with torch.no_grad():
            mean_fwd = z - 0.5 * eps * grad_e
            z_prop = mean_fwd + math.sqrt(eps) * randn_from(z, rng)
        check_finite(z_prop, params, k + 1)
        x_prop, e_prop, grad_e_prop = _energy_state(z_prop, generator, logit_fn)
        check_finite(torch.cat([e_prop.unsqueeze(1), grad_e_prop.flatten(1)], 1), params, k + 1)
        with torch.no_grad():
            log_q_fwd = -_sq_norm(z_prop - mean_fwd) / (2 * eps)  # log q(z' | z) + const
            log_q_bwd = -_sq_norm(z - (z_prop - 0.5 * eps * grad_e_prop)) / (2 * eps)  # log q(z | z')
            log_alpha = energy - e_prop + log_q_bwd - log_q_fwd
            accept = torch.log(uniform_from(z.shape[0], z, rng)) < log_alpha
            accepted_total += float(accept.float().mean())
            z = torch.where(_bcast(accept, z), z_prop, z)
            x = torch.where(_bcast(accept, x), x_prop, x)
            grad_e = torch.where(_bcast(accept, grad_e), grad_e_prop, grad_e)
            energy = torch.where(accept, e_prop, energy)
    if steps > 0:
        snapshots[steps] = x.clone()
    return z, (accepted_total / steps if steps > 0 else float("nan"))


def _bcast(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return mask.reshape(-1, *([1] * (like.dim() - 1)))
