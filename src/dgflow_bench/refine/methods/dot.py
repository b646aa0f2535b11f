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

Its step size is ``lr``; its settings are compared with DOT's release (official.yaml dot.images). torch is
imported inside the functions: the planner reads the parameter class without it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from ..method_params import DISCRIMINATOR, GENERATOR_BN, LATENT_PRIOR, SPECTRAL_NORM, MethodParams, knob, method

if TYPE_CHECKING:
    import torch

    from ..common import GeneratorFn, LogitFn, RefinementResult


@method("dot")
@dataclass(frozen=True)
class DOTParams(MethodParams):
    step_size_name, column = "lr", "DOT"

    discriminator: str = knob("model", **DISCRIMINATOR)
    generator_bn: Optional[str] = knob(None, **GENERATOR_BN)
    spectral_norm: Optional[str] = knob(None, **SPECTRAL_NORM)
    latent_prior: Optional[str] = knob(None, **LATENT_PRIOR)
    space: str = knob("latent", enum=["latent", "data"])
    lr: float = knob(0.01, type="number", exclusiveMinimum=0)
    steps: int = knob(100, type="integer", minimum=0)
    snapshot_every: int = knob(10, type="integer", minimum=1)
    optimizer: str = knob("adam", enum=["adam", "sgd"])
    betas: tuple = knob((0.0, 0.9), **{"$ref": "#/definitions/betas"})
    k_eff: Any = knob("auto", "'auto' estimates it from the initial batch",
                      anyOf=[{"const": "auto"}, {"type": "number", "exclusiveMinimum": 0}])
    k_eff_pairs: int = knob(100, type="integer", minimum=1)
    k_eff_repeats: int = knob(10, type="integer", minimum=1)
    k_eff_scope: str = knob("batch", "batch: K estimated on each latent batch; run: once, on the first batch, "
                            "then kept for the run (DOT's execute_dot.py estimates it once per run)",
                            enum=["batch", "run"])
    k_eff_sample: str = knob("batch", "where K's pairs come from: batch: random pairs of the batch's own samples; "
                             "fresh: k_eff_pairs pairs of new latents drawn from the prior for each repeat, as DOT.py "
                             "eff_k / eff_K do (AkinoriTanaka-phys/DOT DOT.py:15-37)", enum=["batch", "fresh"])
    radial: str = knob("exact", "normal prior, latent space: exact removes the radial part of the gradient "
                       "(tangent projection); dot-release subtracts z (g . z) / 11.31 as DOT.py does (11.31 = "
                       "sqrt(128), fixed; not a projection)", enum=["exact", "dot-release"])
    clip: float = knob(2.0, "data-space box [-clip, clip]", type="number", exclusiveMinimum=0)
    naive: bool = knob(False, "drop the transport-distance term", type="boolean")
    norm_eps: float = knob(0.001, type="number", minimum=0)

    def run(self, z0, generator, logit_fn, rng, *, prior: str, progress: bool = False):
        return run_dot(z0, generator, logit_fn, self, rng, prior=prior, progress=progress)

    def after_first_batch(self, info: dict) -> "DOTParams":
        if self.k_eff_scope == "run" and self.k_eff == "auto":
            return dataclasses.replace(self, k_eff=info["k_eff"])
        return self


    def compared_with(self, spec: dict, cell):
        """Against DOT's release (official.yaml dot.images), with the d the row follows."""
        reasons, ours, theirs = dot_release_fields(spec, self, cell.refine, cell.entry, cell.table["dot"]["images"],
                                                   cell.model_prior, cell.critic)
        d, _ = cell.our_d(spec)
        ours.update(d)
        return reasons, ours, theirs


def dot_release_fields(spec: dict, params: DOTParams, refine: dict, entry: dict, dot: dict, model_prior: str,
                       own_critic: str) -> tuple[list[str], dict, dict]:
    """(reasons, ours, theirs) of a DOT row against DOT's release (official.yaml dot.images). ``reasons``: why
    the row cannot be official whatever its settings (a model DOT's loaders cannot run)."""
    loadable = dot["loadable"]
    reasons = []
    if (entry["generator"]["kind"] not in loadable["generator_kinds"]
            or entry["discriminator"]["kind"] not in loadable["discriminator_kinds"]):
        reasons.append(f"DOT's release cannot run this model (its loaders, execute_dot.py:43-77, 96-118, build "
                       f"chainer-gan-lib DCGANs and DOT's own nets only; the release's {entry['generator']['kind']} "
                       "generator is none of them)")
    k_eff = dot["k_eff"]
    theirs = {"space": dot["space"], "optimizer": dot["optimizer"], "lr": dot["lr"], "steps": dot["steps"],
              "snapshot_every": dot["showing_period"], "k_eff": k_eff["value"], "k_eff_pairs": k_eff["pairs"],
              "k_eff_repeats": k_eff["repeats"], "k_eff_scope": k_eff["scope"], "k_eff_sample": k_eff["sample"],
              "generator_bn": dot["generator_bn"], "spectral_norm": dot["spectral_norm"],
              "latent_prior": dot["latent_prior_of"].get(entry["generator"]["kind"], "normal"),
              "n_samples": dot["n_images"], "image_protocol": dot["image_protocol"],
              "discriminator": dot["discriminator"], "d_phi": own_critic, "corrector": None}
    ours = {key: spec.get(key) for key in ("space", "optimizer", "lr", "steps", "snapshot_every", "k_eff",
                                            "k_eff_pairs", "k_eff_repeats", "k_eff_scope", "k_eff_sample")}
    ours.update({"latent_prior": params.prior(model_prior), "generator_bn": params.bn_mode(refine["generator_bn"]),
                 "spectral_norm": params.sn_mode(refine["spectral_norm"])})
    if ours["latent_prior"] == "normal":  # the radial rule applies to a normal prior only
        theirs["radial"], ours["radial"] = dot["radial"], spec["radial"]
    return reasons, ours, theirs


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
    import torch

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
    import torch

    from ...runtime import latent_sampler

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
    import torch

    from ..common import per_sample

    gf, zf = g.flatten(1), z.flatten(1)
    coef = (gf * zf).sum(1) / (zf * zf).sum(1).clamp_min(torch.finfo(z.dtype).tiny)
    return g - per_sample(coef, z) * z


DOT_RELEASE_RADIAL_SCALE = 11.31  # DOT.py's constant (sqrt(128)), kept as is for every latent size


def dot_release_radial(g: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """g - z (g . z) / 11.31 per sample: DOT's update for a normal prior. Not a projection: it scales the
    radial part of g by 1 - |z|^2 / 11.31 (about -10 at |z|^2 = 128) instead of removing it."""
    from ..common import per_sample

    coef = (g.flatten(1) * z.flatten(1)).sum(1) / DOT_RELEASE_RADIAL_SCALE
    return g - per_sample(coef, z) * z


def _resolve_k_eff(y0, gen, logit_fn, params, rng, *, z0, generator, prior, space) -> tuple[float, bool]:
    import torch

    from ..common import to_data

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
    """Refine G(z0) with DOT (parameters: DOTParams above)."""
    import torch

    from ...progress import progress as progress_bar
    from ..common import Counter, RefinementResult, check_finite, check_space, snapshot_steps, to_data

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
        check_finite(y.detach(), params, k + 1)

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
