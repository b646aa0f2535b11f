"""MH-GAN (Turner, Hung, Frank, Saatci & Yosinski, ICML 2019), as its reference runs it
(uber-research/metropolis-hastings-gans at 41857c9, mhgan/demo_mhgan.py:142-189 and mhgan/mh.py:161-174).

An independence Metropolis-Hastings chain with proposal p_G and target p_data moves x -> x' with probability
min(1, w(x') / w(x)), w = p_data / p_G. For a calibrated discriminator P(real | x) = sigmoid(c(x)),
w = exp(c), so the acceptance is min(1, exp(c(x') - c(x))), tested in log space: log u < c' - c. c is the
calibrated logit of refine/calibration.py (isotonic by default, as the reference). One chain of K generator
samples per output sample, all chains vectorised.

Chain start (``start``):

* ``real`` (the reference, demo_mhgan.py:155-187): the chain starts at a random held-out real sample (its
  logit is one of the calibration's real rows, so the start costs no refinement pass; the sample itself is
  never an output), its first proposal is G(z0) (the latents every method shares) and K - 1 fresh generator
  samples follow. A chain that never accepts restarts from its first generator sample G(z0) and runs over the
  same remaining proposals with fresh uniforms (the reference reruns its picker on the 640 generator scores,
  demo_mhgan.py:179-182); that restarted chain runs alongside, at no extra network pass. Such chains are
  counted in ``chains_restarted`` (the reference's "cap" count, demo_mhgan.py:437-438).
* ``base``: the chain starts at G(z0) and draws K fresh proposals (no real sample is needed; K + 1 generator
  samples per chain).

``chains_never_moved`` counts the outputs that are G(z0) because no proposal was ever accepted (after the
restart, for a real start).

Snapshots: step 0 is G(z0) (the base sample, its generator forward); step k (each of ``snapshot_at`` below K,
and K) is the output of the same chain with K = k: its state after k generator samples, the restart rule applied
at k. Each is charged the passes done by then. With a real start, step 1 is G(z0) again: a chain that accepted
its first proposal holds G(z0), one that did not restarts there with nothing left to propose.

Its paper column is MH-GAN; the DGflow and DOT releases have no MH-GAN settings to compare with. torch is
imported inside the functions: the planner reads the parameter class without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Optional

from ..method_params import (CALIBRATION, CALIBRATION_SIZE, DISCRIMINATOR, GENERATOR_BN, LATENT_PRIOR, PLATT,
                             SNAPSHOT_AT, SPECTRAL_NORM, MethodParams, calibration_real_samples, fitted_field, knob,
                             method)

if TYPE_CHECKING:
    import torch

    from ..common import RefinementResult


@method("mh-gan")
@dataclass(frozen=True)
class MHGANParams(MethodParams):
    """MH-GAN (Turner et al., ICML 2019; run_mhgan below): independence Metropolis-Hastings with the generator
    as proposal and the calibrated discriminator's odds as the density ratio, one chain of K generator samples
    per output sample. By default each chain starts at a real held-out sample and, where it never accepts,
    restarts from its first generator sample G(z0) (demo_mhgan.py:155-187); start: base starts it at G(z0)."""

    needs_real_data: ClassVar[bool] = True  # the calibration and the real starts come from the held-out split
    column = "MH-GAN"

    discriminator: str = knob("finetuned", **{**DISCRIMINATOR, "description": (
        "the discriminator whose calibrated odds are the density ratio: finetuned (default), raw or model")})
    generator_bn: Optional[str] = knob(None, **GENERATOR_BN)
    spectral_norm: Optional[str] = knob(None, **SPECTRAL_NORM)
    latent_prior: Optional[str] = knob(None, **LATENT_PRIOR)
    k: int = knob(640, "chain length: generator samples per output sample (the reference's 10 batches of 64, "
                  "demo_mhgan.py:206-207)", type="integer", minimum=1)
    start: str = knob(
        "real", "real: each chain starts at a random held-out real sample (its logit from the calibration rows), "
        "its first proposal is G(z0), and a chain that never accepts restarts from G(z0) over the remaining "
        "proposals (the reference, demo_mhgan.py:155-187); base: the chain starts at G(z0) and draws K fresh "
        "proposals (no real sample; a chain that never moves returns G(z0))", enum=["real", "base"])
    calibration: str = knob("isotonic", **CALIBRATION)
    calibration_size: int = knob(2000, **CALIBRATION_SIZE)
    platt: Optional[tuple] = knob(None, **PLATT)
    snapshot_at: tuple = knob((10, 40, 160), **{**SNAPSHOT_AT, "description": "chain lengths k " +
                                                SNAPSHOT_AT["description"] + " (the state after k proposals is "
                                                "the MH-GAN output for K = k)"})
    fitted: Any = fitted_field()

    @property
    def steps(self) -> int:  # type: ignore[override]  # the final snapshot's key: the chain length
        return int(self.k)

    @property
    def real_samples(self) -> int:  # type: ignore[override]
        return calibration_real_samples(self)

    def run(self, z0, generator, logit_fn, rng, *, prior: str, progress: bool = False):
        return run_mhgan(z0, generator, logit_fn, self, rng, prior=prior, progress=progress)

    def prepare(self, real, generator, logit_fn, rng, *, prior: str, latent_dim: int) -> "MHGANParams":
        from ..rejection import fit_calibration

        return fit_calibration(self, real, generator, logit_fn, rng, prior, latent_dim)



def _accept(state: torch.Tensor, proposal: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """min(1, exp(c' - c)) as a comparison in log space: no overflow for large score gaps."""
    import torch

    from ..common import uniform_from

    return torch.log(uniform_from(state.numel(), state, rng)) < proposal - state


class _Chain:
    """One state (latent, sample, calibrated logit) per chain and whether it ever accepted."""

    def __init__(self, z: torch.Tensor, x: torch.Tensor, c: torch.Tensor):
        import torch

        self.z, self.x, self.c = z, x, c
        self.moved = torch.zeros(c.numel(), dtype=torch.bool, device=c.device)

    def step(self, z: torch.Tensor, x: torch.Tensor, c: torch.Tensor, rng: torch.Generator) -> int:
        import torch

        from ..rejection import rows

        accept = _accept(self.c, c, rng)
        self.z = torch.where(rows(accept, z), z, self.z)
        self.x = torch.where(rows(accept, x), x, self.x)
        self.c = torch.where(accept, c, self.c)
        self.moved |= accept
        return int(accept.sum())


def run_mhgan(z0: torch.Tensor, generator, logit_fn, params: MHGANParams, rng: torch.Generator, *, prior: str,
              progress: bool = False) -> RefinementResult:
    """MH-GAN: one independence Metropolis-Hastings chain of K generator samples per output sample
    (parameters: MHGANParams above); no backward pass."""
    import torch

    with torch.no_grad():
        return _run_mhgan(z0, generator, logit_fn, params, rng, prior=prior, progress=progress)


def _run_mhgan(
    z0: torch.Tensor,
    generator,
    logit_fn,
    params: MHGANParams,
    rng: torch.Generator,
    *,
    prior: str,
    progress: bool = False,
) -> RefinementResult:
    import torch

    from ...progress import progress as progress_bar
    from ..common import RefinementResult
    from ..rejection import Networks, calibration_in_use, draw, kept_steps

    calibration, fit_counts = calibration_in_use(params)
    steps, n = int(params.k), z0.shape[0]
    if steps < 1 or n < 1 or params.start not in ("real", "base"):
        raise ValueError(f"MH-GAN needs k >= 1, a non-empty batch and start real or base; got k={steps}, n={n}, "
                         f"start={params.start!r}")
    keep = kept_steps(params.snapshot_at, steps)
    nets = Networks(generator, logit_fn)
    z0 = z0.detach()
    x0 = nets.data(z0)
    nets.mark(0)
    snapshots, latents = {0: x0.clone()}, {}
    real = params.start == "real"
    if real:
        if params.fitted is None:
            raise ValueError("MH-GAN start 'real' needs the held-out real rows' logits: call MHGANParams.prepare() "
                             "first (the refine stage does), or use start: base")
        pool = params.fitted.real_logits
        pick = torch.randint(pool.numel(), (n,), generator=rng, device=rng.device).cpu()
        main = _Chain(z0, x0, calibration(pool[pick].to(device=x0.device, dtype=x0.dtype)))  # z0, x0: placeholders
        restart = None  # from G(z0), the first generator sample, once it exists
    else:
        main = _Chain(z0, x0, calibration(nets.checked_logit(x0)))
    accepted = 0
    for k in progress_bar(range(1, steps + 1), desc="mh-gan", leave=False, disable=not progress):
        first = real and k == 1
        z = z0 if first else draw(prior, n, z0, rng)
        x = x0 if first else nets.data(z)
        c = calibration(nets.checked_logit(x))
        accepted += main.step(z, x, c, rng)
        if real:
            if first:
                restart = _Chain(z, x, c)
            else:
                restart.step(z, x, c, rng)
        if k in keep:
            out_z, out_x = _output(main, restart if real else None)
            snapshots[k], latents[k] = out_x, out_z
            nets.mark(k)
    never = ~main.moved & ~restart.moved if real else ~main.moved
    info = {
        "proposals": steps * n,
        "acceptance_rate": accepted / (steps * n),  # of the chains from the start (real or G(z0)), restarts apart
        "chains_restarted": int((~main.moved).sum()) if real else 0,
        "chains_never_moved": int(never.sum()),
        "k": steps,
        "start": params.start,
        "calibration": calibration.record(),
        "calibration_evaluations": fit_counts,
        **nets.info(steps),
    }
    return RefinementResult(snapshots=snapshots, info=info,
                            final_latents=latents[steps] if generator is not None else None)


def _output(main: _Chain, restart) -> tuple[torch.Tensor, torch.Tensor]:
    """(latents, samples) the chains return now: a chain that never accepted gives its restart's state."""
    import torch

    from ..rejection import rows

    if restart is None:
        return main.z.clone(), main.x.clone()
    use = main.moved
    return torch.where(rows(use, main.z), main.z, restart.z), torch.where(rows(use, main.x), main.x, restart.x)
