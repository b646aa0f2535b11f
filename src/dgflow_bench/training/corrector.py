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

from ..progress import progress as progress_bar
from .checkpoint import load_training_state, save_training_state
from .density_ratio import HeldOut, HeldOutSelection, logistic_loss

# steps / batch size / Adam settings have no defaults here: the schema's models.<name>.density_ratio block
# is their one home (the official release ships corrector weights but no training code: they are ours).
INIT_CHOICES = ("zero", "keep")


def upsample_bilinear(size) -> nn.Module:
    """Input transform resizing images to ``size`` bilinearly with align_corners=True, e.g. the STL10
    32 px models are judged by 48 px discriminators: ``upsample_bilinear(48)``. Only d sees the upsampled
    image; samples and metrics stay at the model's resolution."""
    return nn.Upsample(size=size, mode="bilinear", align_corners=True)


class CorrectedLogit(nn.Module):
    """d(x) = d_phi(T(x)) + d_lambda(T(x)), (N, ...) -> (N,).

    base (d_phi): frozen; its parameters never require grad and it stays in eval mode even after
        ``.train()``, so BatchNorm statistics and dropout masks of the pretrained net never change.
    corrector (d_lambda): the trainable part; any module mapping (N, ...) to N scalars.
    input_transform (T): optional callable applied once to x before both parts (default identity), e.g.
        ``upsample_bilinear(48)``. It is differentiable, so input gradients flow through it.
    """

    def __init__(self, base: nn.Module, corrector: nn.Module,
                 input_transform: Optional[Callable[[torch.Tensor], torch.Tensor]] = None):
        super().__init__()
        self.base = base.requires_grad_(False).eval()
        self.corrector = corrector
        self.input_transform = input_transform

    def train(self, mode: bool = True) -> "CorrectedLogit":
        super().train(mode)
        self.base.eval()  # pretrained d_phi is only ever evaluated
        return self

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(d_phi, d_lambda), each (N,), on the transformed input."""
        if self.input_transform is not None:
            x = self.input_transform(x)
        n = x.shape[0]  # reshape(n) fails loudly if a part returns more than one value per sample
        return self.base(x).reshape(n), self.corrector(x).reshape(n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d_phi, d_lambda = self.parts(x)
        return d_phi + d_lambda

    @property
    def spec(self) -> dict:
        """Architecture of both parts, so models/store.py can rebuild the pair from a model file."""
        for part in (self.base, self.corrector):
            if not isinstance(getattr(part, "spec", None), dict):
                raise ValueError(f"{type(part).__name__} has no .spec: a CorrectedLogit can only be saved when "
                                 "both d_phi and d_lambda are pipeline networks")
        return {"arch": "corrected_logit", "base": self.base.spec, "corrector": self.corrector.spec,
                "input_size": _upsample_size(self.input_transform)}


def _upsample_size(transform) -> Optional[list]:
    if transform is None:
        return None
    if (isinstance(transform, nn.Upsample) and transform.mode == "bilinear" and transform.align_corners
            and transform.size is not None):
        size = transform.size
        return [int(size), int(size)] if isinstance(size, int) else [int(s) for s in size]
    raise ValueError(f"cannot save the input transform {transform!r}: only upsample_bilinear(size) has a spec")


def from_spec(spec: dict, build: Callable[[dict], nn.Module]) -> CorrectedLogit:
    """Rebuild a CorrectedLogit (fresh weights) from its ``.spec``; ``build`` rebuilds each part from its
    own spec (models.store.build_from_spec). Load the state_dict afterwards."""
    corrector = build(spec["corrector"])
    last = _last_weight_layer(corrector)
    if spec["corrector"].get("plain_last_layer") and parametrize.is_parametrized(last, "weight"):
        _unparametrize(last)  # the layout zero_last_layer left, so the saved state_dict keys match
        corrector.spec = dict(spec["corrector"])
    transform = upsample_bilinear(tuple(spec["input_size"])) if spec.get("input_size") else None
    return CorrectedLogit(build(spec["base"]), corrector, transform)


def _last_weight_layer(module: nn.Module) -> nn.Module:
    layers = [m for m in module.modules() if isinstance(getattr(m, "weight", None), torch.Tensor)]
    if not layers:
        raise ValueError(f"the corrector {type(module).__name__} has no layer with a weight to start at zero")
    return layers[-1]


def _unparametrize(layer: nn.Module) -> None:
    # remove_parametrizations deletes the weight property from the layer's generated class, which a deepcopy
    # (d_lambda = copy of d_phi) shares with the original: give this layer its own class first.
    cls = layer.__class__
    layer.__class__ = type(cls.__name__, cls.__bases__,
                           {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")})
    parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)


def zero_last_layer(module: nn.Module) -> None:
    """Zero the weight (and bias) of the last registered submodule that has a weight, so the module
    outputs 0 everywhere when that layer is its final linear map.

    A spectrally normalised last layer cannot start at zero (W / sigma(W) is 0 / 0), and zeroing its
    computed weight would silently change nothing, so its parametrization is removed first: that layer
    becomes a plain one. A module with a ``.spec`` records this as spec['plain_last_layer'] so that
    from_spec rebuilds the same layout."""
    last = _last_weight_layer(module)
    if parametrize.is_parametrized(last, "weight"):
        _unparametrize(last)
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
    'validation': density_ratio.validation_summary}.

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
