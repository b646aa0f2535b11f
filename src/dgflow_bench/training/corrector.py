"""Density-ratio correction: d(x) = d_phi(x) + d_lambda(x) (docs/method.md §2).

Models with no scalar logistic discriminator of their own (MMDGAN, OCFGAN-GP, VAE, Glow, SN-ResNet-GAN)
borrow d_phi, a pretrained non-saturating SN-DCGAN discriminator for the same dataset, kept frozen. d_phi
estimates log mu / rho_G for the GAN it was trained with, not for the model being refined, so a trainable
"corrector" d_lambda (same architecture in the paper) is added and trained with the logistic loss on the
SUM, real data = 1 and samples of the refined model = 0. At the optimum d_phi + d_lambda = log mu / rho_model,
the logit DGflow needs. A CorrectedLogit is a plain LogitFn: refinement methods differentiate it w.r.t.
its input like any other discriminator.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn as nn
from torch.nn.utils import parametrize

from ..models.corrected import CorrectedLogit, last_weight_layer, unparametrize
from ..progress import progress as progress_bar
from .checkpoint import load_training_state, save_training_state
from .density_ratio import HeldOut, HeldOutSelection, logistic_loss

# steps / batch size / Adam settings have no defaults here: the schema's models.<name>.density_ratio block
# is their one home (the official release ships corrector weights but no training code: they are ours).
INIT_CHOICES = ("zero", "keep")


def zero_last_layer(module: nn.Module) -> None:
    """Zero the weight (and bias) of the last registered submodule that has a weight, so the module
    outputs 0 everywhere when that layer is its final linear map.

    A spectrally normalised last layer cannot start at zero (W / sigma(W) is 0 / 0), and zeroing its
    computed weight would silently change nothing, so its parametrization is removed first: that layer
    becomes a plain one. A module with a ``.spec`` records this as spec['plain_last_layer'] so that
    from_spec rebuilds the same layout."""
    last = last_weight_layer(module)
    if parametrize.is_parametrized(last, "weight"):
        unparametrize(last)
        if isinstance(getattr(module, "spec", None), dict):
            module.spec = {**module.spec, "plain_last_layer": True}
    with torch.no_grad():
        last.weight.zero_()
        if isinstance(getattr(last, "bias", None), torch.Tensor):
            last.bias.zero_()


def train_corrector(
    corrected: CorrectedLogit,
    generator: Callable[[torch.Tensor], torch.Tensor],
    *,
    real_batch: Callable[[int, torch.Generator], torch.Tensor],
    latent_batch: Callable[[int, torch.Generator], torch.Tensor],
    steps: int,
    batch_size: int,
    lr: float,
    betas: tuple[float, float],
    rng: torch.Generator,
    heldout: Optional[HeldOut] = None,
    eval_every: int = 50,
    progress: bool = True,
    init: str = "zero",
    checkpoint_path: Optional[str] = None,
    fingerprint: str = "",
    checkpoint_every: int = 500,
    log: Optional[Callable[[str], None]] = None,
) -> dict:
    """Train ``corrected.corrector`` in place (d_phi and the generator stay untouched) with the logistic
    loss on d_phi + d_lambda: real data = 1, samples of ``generator`` = 0.

    init='zero' zeroes d_lambda's last layer so training starts exactly from d_phi: the corrector begins as
    "no correction" and only learns what d_phi gets wrong about this model, instead of first undoing a
    random offset. init='keep' starts from d_lambda's current weights (e.g. to resume).

    Every ``eval_every`` steps (and at step 0, i.e. d = d_phi) the sum is scored on ``heldout``; at the end
    d_lambda holds the weights of the evaluated step with the lowest held-out logistic loss (``heldout`` None:
    the last weights, training loss only).

    Deterministic given ``rng``: batches come from real_batch / latent_batch with it, and torch's global
    RNG (used by dropout inside the networks) is forked and seeded from it, so the caller's global state
    is left as it was. Returns {'history': [...every eval_every steps...], 'final': the kept step's entry,
    'validation': density_ratio.validation_summary, 'network_evaluations': the samples through each network
    pass (density_ratio.PassTally; a resumed run counts the steps before its resume too)}.

    checkpoint_path: a full-state checkpoint (d_lambda, Adam, step, every RNG; training/checkpoint.py) is
    written every ``checkpoint_every`` steps and at the end; a run finding one with the same ``fingerprint``
    resumes from it and ends bit-identical to an uninterrupted run (same device and thread count).
    """
    if init not in INIT_CHOICES:
        raise ValueError(f"unknown init {init!r}: choose one of {', '.join(INIT_CHOICES)}")
    if init == "zero":
        zero_last_layer(corrected.corrector)
    corrected.base.requires_grad_(False)  # in case someone re-enabled it after construction
    opt = torch.optim.Adam(corrected.corrector.parameters(), lr=lr, betas=tuple(betas))
    was_training = corrected.training
    corrected.train()
    global_seed = int(torch.randint(2**62, (1,), generator=rng, device=rng.device))
    selection = HeldOutSelection(corrected.corrector, heldout, log)
    # the best weights so far sit in the checkpoint beside the current ones, so a resumed run keeps them
    state_of = {"modules": {"corrector": corrected.corrector, "best": selection.best.module},
                "optimizers": {"corrector": opt}}

    try:
        with torch.random.fork_rng():  # CPU and every visible CUDA device
            torch.manual_seed(global_seed)
            # restored inside the fork, so the saved torch RNG state is the forked one, as when it was saved
            state = (load_training_state(checkpoint_path, rng=rng, fingerprint=fingerprint, **state_of)
                     if checkpoint_path else None)
            start = state["step"] if state else 0
            if state:
                selection.resume(state["history"])
                selection.passes.train_steps(batch_size, batch_size, steps=start)  # the steps before the resume
                if log is not None:
                    log(f"resumed from step {start} of {steps} ({checkpoint_path})")
            else:
                if log is not None and checkpoint_path:
                    log(f"starting fresh at step 0 of {steps} (no usable checkpoint at {checkpoint_path})")
                selection.evaluate(0, {}, corrected)
            for step in progress_bar(range(start + 1, steps + 1), desc="corrector", disable=not progress,
                                     initial=start, mininterval=2):
                real = real_batch(batch_size, rng)
                with torch.no_grad():  # the refined model is fixed: only its samples matter
                    fake = generator(latent_batch(batch_size, rng))
                phi_real, lam_real = corrected.parts(real)
                phi_fake, lam_fake = corrected.parts(fake)
                d_real, d_fake = phi_real + lam_real, phi_fake + lam_fake
                loss = logistic_loss(d_real, d_fake)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                selection.passes.train_steps(real.shape[0], fake.shape[0])
                if step % eval_every == 0 or step == steps:
                    acc = 0.5 * ((d_real > 0).float().mean() + (d_fake < 0).float().mean())
                    # size of the correction: how far the trained d has moved from d_phi
                    mag = 0.5 * (lam_real.abs().mean() + lam_fake.abs().mean())
                    selection.evaluate(step, {"logistic_loss": loss.item(), "accuracy": acc.item(),
                                              "mean_abs_correction": mag.item()}, corrected)
                if checkpoint_path and (step % checkpoint_every == 0 or step == steps):
                    save_training_state(checkpoint_path, step=step, rng=rng, fingerprint=fingerprint,
                                        history=selection.history, **state_of)
                    if step == steps and log is not None:
                        log(f"wrote the final checkpoint (step {steps}) to {checkpoint_path}")
    finally:
        opt.zero_grad(set_to_none=True)  # no stale .grad left for refinement code to trip over
        corrected.train(was_training)
    return selection.finish()
