"""DGflow (Ansari et al., ICLR 2021): Euler-Maruyama simulation of the Wasserstein gradient flow of
f-divergence + gamma * negative entropy, with the density ratio rho/mu ~ exp(-d) taken from a fixed
("stale") discriminator logit d.

    latent:  z <- z + eta * s(d(G(z))) * grad_z d(G(z)) + sqrt(2 eta gamma) xi,  output G(z)
    data:    x <- x + eta * s(d(x))    * grad_x d(x)    + sqrt(2 eta gamma) xi,  x0 = G(z0)

s is the per-sample drift weight of the chosen f (see ``drift_weight``). No prior term and no Metropolis
step; gamma = 0 is the deterministic flow. In latent space a generator with a bounded (uniform) prior keeps its
latents in the box by the ``support`` rule (refine/support.py; default clip).

The paper's columns are DGflow-KL, -JS and -logD (the knob ``f``); its step size is ``eta``. torch is imported
inside the functions: the planner reads the parameter class without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from ..method_params import (DISCRIMINATOR, GENERATOR_BN, LATENT_PRIOR, SPECTRAL_NORM, SUPPORT, MethodParams, knob,
                             method)

if TYPE_CHECKING:
    import torch

    from ..common import GeneratorFn, LogitFn, RefinementResult


@method("dgflow")
@dataclass(frozen=True)
class DGflowParams(MethodParams):
    step_size_name = "eta"

    discriminator: str = knob("model", **DISCRIMINATOR)
    generator_bn: Optional[str] = knob(None, **GENERATOR_BN)
    spectral_norm: Optional[str] = knob(None, **SPECTRAL_NORM)
    latent_prior: Optional[str] = knob(None, **LATENT_PRIOR)
    f: str = knob("KL", "f-divergence", enum=["KL", "JS", "logD"])
    space: str = knob("latent", enum=["latent", "data"])
    eta: float = knob(0.01, "step size", type="number", exclusiveMinimum=0)
    gamma: float = knob(0.01, "entropy weight (0 = deterministic flow)", type="number", minimum=0)
    steps: int = knob(25, type="integer", minimum=0)
    snapshot_every: int = knob(5, type="integer", minimum=1)
    support: str = knob("clip", "latent space, bounded (uniform) prior only: what a latent that leaves [-1, 1] "
                        "becomes: clip (to the face, as DOT does), reflect (mirrored back), none (left outside, "
                        "as the official code, whose latents are normal)", **SUPPORT)

    @classmethod
    def paper_column(cls, spec: dict) -> str:
        return f"DGflow-{spec.get('f', 'KL')}"

    def run(self, z0, generator, logit_fn, rng, *, prior: str, progress: bool = False):
        return run_dgflow(z0, generator, logit_fn, self, rng, prior=prior, progress=progress)

    def compared_with(self, spec: dict, cell):
        """Against the release's config for the cell (official.yaml dgflow.<config>): its sampling settings, its
        step size, entropy weight and length, and the d it follows (d_phi, from the training run the config's
        d comes from, plus its corrector)."""
        reasons, ours, theirs = cell.dgflow_release(self)
        entry, release = cell.entry, cell.table["dgflow_common"]["refinement"]
        d_model, d_entry = cell.d_run()
        theirs.update({"space": release["space"], "eta": entry["eta"], "gamma": entry["gamma"],
                       "steps": entry["steps"], "snapshot_every": entry["save_interval"],
                       # the release adds its corrector to d when the config names one (d = D + C)
                       "discriminator": "finetuned" if entry["corrector"] else "raw", "d_phi": d_model,
                       "corrector": (entry["corrector"] or {}).get("kind"), "spectral_norm": release["spectral_norm"]})
        ours.update({k: spec[k] for k in ("space", "eta", "gamma", "steps", "snapshot_every")})
        d, borrowed = cell.our_d(spec)
        ours.update({**d, "spectral_norm": self.sn_mode(cell.refine["spectral_norm"])})
        d_ours, d_theirs = cell.d_phi_recipe(borrowed, d_entry)
        ours.update(d_ours)
        theirs.update(d_theirs)
        return reasons, ours, theirs



F_CHOICES = ("KL", "JS", "logD")


def drift_weight(d: torch.Tensor, f: str) -> torch.Tensor:
    """s(d) such that -grad f'(rho/mu) = s(d) grad d when rho/mu = exp(-d)."""
    import torch

    if f == "KL":
        return torch.ones_like(d)
    if f == "JS":
        return torch.sigmoid(d)
    if f == "logD":
        return torch.sigmoid(-d)
    raise ValueError(f"unknown f-divergence f={f!r}: choose one of {', '.join(F_CHOICES)}")


def run_dgflow(
    z0: torch.Tensor,
    generator: GeneratorFn,
    logit_fn: LogitFn,
    params: DGflowParams,
    rng: torch.Generator,
    *,
    prior: str,
    progress: bool = False,
) -> RefinementResult:
    """Refine G(z0) with DGflow (parameters: DGflowParams above). DGflow has no prior term: ``prior`` only
    decides whether ``support`` applies (a uniform prior's box)."""
    import torch

    from ...progress import progress as progress_bar
    from ..common import (Counter, RefinementResult, check_finite, check_space, data_logit_and_grad, noise_std,
                          per_sample, randn_from, snapshot_steps, to_data)
    from ..support import BoundaryTracker

    f = params.f
    drift_weight(torch.zeros(1), f)  # validate f before any work
    space = check_space(params.space)
    eta = float(params.eta)
    gamma = float(params.gamma)
    steps = int(params.steps)
    keep = set(snapshot_steps(steps, int(params.snapshot_every)))
    if eta <= 0 or gamma < 0:
        raise ValueError(f"DGflow needs eta > 0 and gamma >= 0, got eta={eta}, gamma={gamma}")

    nets = Counter(generator, logit_fn)
    snapshots: dict = {}
    if space == "data" or steps == 0:  # latent space: the first step's forward is G(z0) (no second one)
        snapshots[0] = to_data(z0, nets.generator)
        nets.mark(0)
    # Data space: the iterate is x itself and G is the identity from here on.
    y, gen = (snapshots[0].clone(), None) if space == "data" else (z0.detach().clone(), nets.generator)
    sigma = noise_std(eta, gamma)
    # data space has no prior box: only latent iterates are constrained
    boundary = BoundaryTracker(y.shape[0], y.device, prior if space == "latent" else "data", params.support)

    for k in progress_bar(range(steps), desc=f"dgflow[{space}]", leave=False, disable=not progress):
        before = nets.snapshot()
        x, d, grad = data_logit_and_grad(y, gen, nets.logit)
        if k == 0 and 0 not in snapshots:  # the base samples G(z0): this forward made them
            snapshots[0] = x
            nets.mark(0, nets.generated_alone(before))
        elif k > 0 and k in keep:  # this step's forward already computed G(y_k)
            snapshots[k] = x
            nets.mark(k, nets.generated_since(before))
            boundary.snapshot(k)
        with torch.no_grad():
            y = y + eta * per_sample(drift_weight(d, f), y) * grad
            if sigma > 0:
                y = y + sigma * randn_from(y, rng)
            y = boundary.step(y)
        check_finite(y, params, k + 1)

    if steps > 0:
        snapshots[steps] = to_data(y, gen)
        boundary.snapshot(steps)
    return RefinementResult(
        snapshots=snapshots,
        info={"f": f, "space": space, "noise_std": sigma, **boundary.info(), **nets.info(steps)},
        final_latents=y if space == "latent" else None,
    )
