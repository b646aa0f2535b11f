"""Discriminator Optimal Transport (Tanaka, NeurIPS 2019).

Each sample independently minimises

    ||y - y0 + norm_eps||_2 - d(G(y)) / K

(plain, not squared, L2; norm_eps is added to every coordinate so the norm is differentiable at y = y0),
where K is the critic's effective Lipschitz constant, estimated (k_eff: auto) as the largest slope of d over random
pairs: pairs of the batch's own samples (k_eff_sample: batch) or of new latents from the prior (fresh, as DOT.py's
eff_k / eff_K). Data space: G = identity, y = x, y0 = G(z0), iterates
clipped to [-clip, clip]. Latent space: y = z; uniform prior -> clamp z to [-1, 1] after each update; normal
prior -> before each update, remove the radial part of the gradient (``radial: exact``, the tangent
projection) or apply DOT.py's own rule (``radial: dot-release``, see ``dot_release_radial``).
"naive" mode drops the distance term (pure gradient ascent on d / K).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from ..progress import progress as progress_bar
from ..runtime import latent_sampler
from .common import (Counter, GeneratorFn, LogitFn, RefinementResult, check_finite, check_space, per_sample,
                     snapshot_steps, to_data)

if TYPE_CHECKING:  # the parameter class runs this module lazily: no import back at run time
    from .params import DOTParams

PRIOR_CHOICES = ("uniform", "normal")


def estimate_k_eff(
    y: torch.Tensor,
    d_values: torch.Tensor,
    rng: torch.Generator,
    n_pairs: int = 100,
    n_repeats: int = 1,
) -> float:
    """Mean over ``n_repeats`` of max over ``n_pairs`` random pairs (i != j) of |d_i - d_j| / ||y_i - y_j||
    (samples flattened). Pairs at zero distance are skipped. Deterministic given ``rng``."""
    n = y.shape[0]
    if n < 2 or n_pairs < 1 or n_repeats < 1:
        raise ValueError(f"estimate_k_eff needs >= 2 samples, n_pairs >= 1, n_repeats >= 1 "
                         f"(got {n}, {n_pairs}, {n_repeats})")
    flat = y.detach().flatten(1)
    d = d_values.detach().reshape(-1).to(flat.dtype)
    maxima = []
    for _ in range(n_repeats):
        i = torch.randint(0, n, (n_pairs,), generator=rng, device=rng.device)
        # j = i + offset (mod n) with offset in [1, n-1]: uniform over ordered pairs with i != j.
        j = (i + torch.randint(1, n, (n_pairs,), generator=rng, device=rng.device)) % n
        i, j = i.to(flat.device), j.to(flat.device)
        dist = (flat[i] - flat[j]).norm(dim=1)
        ok = dist > 0
        ratio = (d[i] - d[j]).abs()[ok] / dist[ok]
        maxima.append(float(ratio.max()) if ratio.numel() else 0.0)
    return sum(maxima) / len(maxima)


def fresh_pairs_k_eff(
    generator: GeneratorFn,
    logit_fn: LogitFn,
    like: torch.Tensor,
    prior: str,
    rng: torch.Generator,
    space: str,
    n_pairs: int = 100,
    n_repeats: int = 1,
) -> float:
    """K from new latents, as DOT.py's eff_k (latent space) and eff_K (data space): each repeat draws two sets
    of ``n_pairs`` latents from ``prior``, pairs them row by row and takes max |d(G(z2)) - d(G(z1))| / ||z2 -
    z1|| (data space: / ||G(z2) - G(z1)||); the mean over repeats. ``like``: a latent batch (shape, device)."""
    if generator is None:
        raise ValueError("DOT: k_eff_sample 'fresh' draws new latents and needs the generator; use "
                         "k_eff_sample: batch for samples without one")
    if n_pairs < 1 or n_repeats < 1:
        raise ValueError(f"fresh_pairs_k_eff needs n_pairs >= 1 and n_repeats >= 1 (got {n_pairs}, {n_repeats})")
    dim = like[0].numel()
    draw = latent_sampler(prior, dim, rng.device)
    maxima = []
    for _ in range(n_repeats):
        z = draw(2 * n_pairs, rng).to(device=like.device, dtype=like.dtype).reshape(2 * n_pairs, *like.shape[1:])
        with torch.no_grad():
            x = generator(z)
            d = logit_fn(x).reshape(-1)
        y = (z if space == "latent" else x).flatten(1)
        dist = (y[n_pairs:] - y[:n_pairs]).norm(dim=1)
        ok = dist > 0
        ratio = (d[n_pairs:] - d[:n_pairs]).abs().to(dist.dtype)[ok] / dist[ok]
        maxima.append(float(ratio.max()) if ratio.numel() else 0.0)
    return sum(maxima) / len(maxima)


def dot_objective(
    y: torch.Tensor,
    y0: torch.Tensor,
    d: torch.Tensor,
    k_eff: float,
    norm_eps: float = 0.001,
    naive: bool = False,
) -> torch.Tensor:
    """Per-sample DOT objective, shape (N,): ||y - y0 + norm_eps|| - d / K (just -d / K if naive)."""
    target = -d.reshape(-1) / k_eff
    if naive:
        return target
    return (y - y0 + norm_eps).flatten(1).norm(dim=1) + target


def tangent_projection(g: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """g - (g.z / |z|^2) z per sample: the part of g tangent to the sphere through z."""
    gf, zf = g.flatten(1), z.flatten(1)
    coef = (gf * zf).sum(1) / (zf * zf).sum(1).clamp_min(torch.finfo(z.dtype).tiny)
    return g - per_sample(coef, z) * z


DOT_RELEASE_RADIAL_SCALE = 11.31  # DOT.py's constant (sqrt(128)), kept as is for every latent size


def dot_release_radial(g: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """g - z (g . z) / 11.31 per sample: DOT's update for a normal prior. Not a projection: it scales the
    radial part of g by 1 - |z|^2 / 11.31 (about -10 at |z|^2 = 128) instead of removing it."""
    coef = (g.flatten(1) * z.flatten(1)).sum(1) / DOT_RELEASE_RADIAL_SCALE
    return g - per_sample(coef, z) * z


def _resolve_k_eff(y0, gen, logit_fn, params, rng, *, z0, generator, prior, space) -> tuple[float, bool]:
    k = params.k_eff
    if k == "auto":
        sample = getattr(params, "k_eff_sample", "batch")
        if sample == "fresh":
            k = fresh_pairs_k_eff(generator, logit_fn, z0, prior, rng, space, int(params.k_eff_pairs),
                                  int(params.k_eff_repeats))
        elif sample == "batch":
            with torch.no_grad():
                d0 = logit_fn(to_data(y0, gen)).reshape(-1)
            k = estimate_k_eff(y0, d0, rng, int(params.k_eff_pairs), int(params.k_eff_repeats))
        else:
            raise ValueError(f"DOT: k_eff_sample must be 'batch' or 'fresh', got {sample!r}")
        if not (math.isfinite(k) and k > 0):
            raise ValueError(f"DOT: estimated k_eff={k} is not a positive finite number (is the critic "
                             "constant on this batch?); pass a positive k_eff explicitly")
        return k, True
    if isinstance(k, str) or not (float(k) > 0 and math.isfinite(float(k))):
        raise ValueError(f"DOT: k_eff must be 'auto' or a positive number, got {k!r}")
    return float(k), False


def run_dot(
    z0: torch.Tensor,
    generator: GeneratorFn,
    logit_fn: LogitFn,
    params: DOTParams,
    rng: torch.Generator,
    *,
    prior: str,
    progress: bool = False,
) -> RefinementResult:
    """Refine G(z0) with DOT (parameters: refine/params.py)."""
    space = check_space(params.space)
    if space == "latent" and prior not in PRIOR_CHOICES:
        raise ValueError(f"unknown latent prior {prior!r}: choose one of {', '.join(PRIOR_CHOICES)}")
    lr = float(params.lr)
    steps = int(params.steps)
    keep = set(snapshot_steps(steps, int(params.snapshot_every)))
    opt_name = params.optimizer
    naive = bool(params.naive)
    norm_eps = float(params.norm_eps)
    clip = params.clip

    nets = Counter(generator, logit_fn)  # every forward and backward below goes through it
    logit_fn = nets.logit
    snapshots: dict = {}
    if space == "data" or steps == 0:  # latent space: the first step's forward is G(z0) (no second one)
        snapshots[0] = to_data(z0, nets.generator)
        nets.mark(0)
    y0, gen = (snapshots[0].clone(), None) if space == "data" else (z0.detach().clone(), nets.generator)
    k_eff, estimated = _resolve_k_eff(y0, gen, logit_fn, params, rng, z0=z0, generator=nets.generator,
                                      prior=prior, space=space)

    y = y0.clone().requires_grad_(True)
    if opt_name == "adam":
        betas = tuple(float(b) for b in params.betas)
        opt = torch.optim.Adam([y], lr=lr, betas=betas)
    elif opt_name == "sgd":
        opt = torch.optim.SGD([y], lr=lr)
    else:
        raise ValueError(f"DOT: unknown optimizer {opt_name!r}: choose 'adam' or 'sgd'")

    objective_start = None
    for k in progress_bar(range(steps), desc=f"dot[{space}]", leave=False, disable=not progress):
        before = nets.snapshot()
        with torch.enable_grad():
            x = gen(y) if gen is not None else y
            obj = dot_objective(y, y0, logit_fn(x), k_eff, norm_eps, naive)
            # autograd.grad (not .backward) keeps the networks' parameter gradients untouched.
            (g,) = torch.autograd.grad(obj.sum(), y)
        if k == 0:
            objective_start = float(obj.detach().mean())
        if k == 0 and 0 not in snapshots:  # the base samples G(z0); the K estimate before it is not theirs
            snapshots[0] = x.detach().clone()
            nets.mark(0, nets.generated_alone(before))
        elif k > 0 and k in keep:
            snapshots[k] = x.detach().clone()
            nets.mark(k, nets.generated_since(before))
        if space == "latent" and prior == "normal":
            radial = tangent_projection if params.radial == "exact" else dot_release_radial
            g = radial(g, y.detach())
        y.grad = g
        opt.step()
        with torch.no_grad():
            if space == "data" and clip is not None:
                y.clamp_(-float(clip), float(clip))
            elif space == "latent" and prior == "uniform":
                y.clamp_(-1.0, 1.0)
        check_finite(y.detach(), "dot", k + 1, lr)

    with torch.no_grad():
        x_end = to_data(y.detach(), gen)
        objective_end = float(dot_objective(y, y0, logit_fn(x_end), k_eff, norm_eps, naive).mean())
    if steps > 0:
        snapshots[steps] = x_end
    info = {
        "k_eff": k_eff,
        "k_eff_estimated": estimated,
        "objective_start": objective_end if objective_start is None else objective_start,
        "objective_end": objective_end,
        "space": space,
        "optimizer": opt_name,
        **nets.info(steps),
    }
    return RefinementResult(snapshots=snapshots, info=info)
