"""DGflow (Ansari et al., ICLR 2021): Euler-Maruyama simulation of the Wasserstein gradient flow of
f-divergence + gamma * negative entropy, with the density ratio rho/mu ~ exp(-d) taken from a fixed
("stale") discriminator logit d.

    latent:  z <- z + eta * s(d(G(z))) * grad_z d(G(z)) + sqrt(2 eta gamma) xi,  output G(z)
    data:    x <- x + eta * s(d(x))    * grad_x d(x)    + sqrt(2 eta gamma) xi,  x0 = G(z0)

s is the per-sample drift weight of the chosen f (see ``drift_weight``). No prior term and no Metropolis
step; gamma = 0 is the deterministic flow. In latent space a generator with a bounded (uniform) prior keeps its
latents in the box by the ``support`` rule (refine/support.py; default clip).

This module also holds the small device-agnostic helpers the other methods share (``randn_from``,
``uniform_from``, ``data_logit_and_grad``).
"""

from __future__ import annotations

import torch

from ..progress import progress
from .common import (
    GeneratorFn,
    LogitFn,
    RefinementResult,
    check_finite,
    noise_std,
    snapshot_steps,
    to_data,
    with_defaults,
)
from .support import BoundaryTracker

F_CHOICES = ("KL", "JS", "logD")
SPACE_CHOICES = ("latent", "data")


def drift_weight(d: torch.Tensor, f: str) -> torch.Tensor:
    """s(d) such that -grad f'(rho/mu) = s(d) grad d when rho/mu = exp(-d)."""
    if f == "KL":
        return torch.ones_like(d)
    if f == "JS":
        return torch.sigmoid(d)
    if f == "logD":
        return torch.sigmoid(-d)
    raise ValueError(f"unknown f-divergence f={f!r}: choose one of {', '.join(F_CHOICES)}")


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


def run_dgflow(
    z0: torch.Tensor,
    generator: GeneratorFn,
    logit_fn: LogitFn,
    params: dict,
    rng: torch.Generator,
    *,
    prior: str,
) -> RefinementResult:
    """Refine G(z0) with DGflow. params: f, space, eta, gamma, steps, snapshot_every, support (defaults: the
    config schema's dgflow block). DGflow has no prior term: ``prior`` only decides whether ``support``
    applies (a uniform prior's box)."""
    params = with_defaults("dgflow", params)
    f = params["f"]
    drift_weight(torch.zeros(1), f)  # validate f before any work
    space = check_space(params["space"])
    eta = float(params["eta"])
    gamma = float(params["gamma"])
    steps = int(params["steps"])
    keep = set(snapshot_steps(steps, int(params["snapshot_every"])))
    if eta <= 0 or gamma < 0:
        raise ValueError(f"DGflow needs eta > 0 and gamma >= 0, got eta={eta}, gamma={gamma}")

    x0 = to_data(z0, generator)
    snapshots = {0: x0}
    # Data space: the iterate is x itself and G is the identity from here on.
    y, gen = (x0.clone(), None) if space == "data" else (z0.detach().clone(), generator)
    sigma = noise_std(eta, gamma)
    # data space has no prior box: only latent iterates are constrained
    boundary = BoundaryTracker(y.shape[0], y.device, prior if space == "latent" else "data", params["support"])

    for k in progress(range(steps), desc=f"dgflow[{space}]", leave=False, disable=not params.get("progress", True)):
        x, d, grad = data_logit_and_grad(y, gen, logit_fn)
        if k > 0 and k in keep:  # this step's forward already computed G(y_k)
            snapshots[k] = x
            boundary.snapshot(k)
        with torch.no_grad():
            y = y + eta * per_sample(drift_weight(d, f), y) * grad
            if sigma > 0:
                y = y + sigma * randn_from(y, rng)
            y = boundary.step(y)
        check_finite(y, "dgflow", k + 1, eta)

    if steps > 0:
        snapshots[steps] = to_data(y, gen)
        boundary.snapshot(steps)
    return RefinementResult(
        snapshots=snapshots, info={"f": f, "space": space, "noise_std": sigma, **boundary.info()},
        final_latents=y if space == "latent" else None,
    )
