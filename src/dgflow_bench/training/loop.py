"""The training loop shared by every model family (``run_loop``: full-state checkpoints every K steps, resume,
graceful stop on SIGTERM, SLURM's time-limit and preemption signal) and the GAN recipe on top of it
(``train_gan``: n critic steps per generator step)."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..errors import TrainingInterrupted
from ..progress import log
from ..progress import progress as progress_bar
from .checkpoint import load_training_state, save_training_state
from .gan_losses import get_loss


@dataclass
class GanRecipe:
    loss: str
    iterations: int
    critic_steps: int
    batch_size: int
    lr_g: float
    lr_d: float
    betas: tuple[float, float]
    gp_weight: float
    checkpoint_every: int
    lr_decay: str = "none"  # "linear": to 0 at the last iteration (the WGAN-GP CIFAR recipe); settles the end state


def _set_lr(optimizer: torch.optim.Optimizer, base: float, step: int, recipe: GanRecipe) -> None:
    # A function of the step alone, so a resumed run needs no scheduler state to stay bit-identical.
    if recipe.lr_decay == "linear":
        scale = 1.0 - step / recipe.iterations
    elif recipe.lr_decay == "none":
        scale = 1.0
    else:
        raise ValueError(f"unknown lr_decay {recipe.lr_decay!r}; use 'none' or 'linear'")
    for group in optimizer.param_groups:
        group["lr"] = base * scale


class _StopOnSigterm:
    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread: no handler, no graceful stop
            self._previous = None
        return self

    def _handle(self, signum, frame):
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def run_loop(
    *,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    iterations: int,
    step: Callable[[int], dict[str, torch.Tensor]],
    rng: torch.Generator,
    checkpoint_path: str,
    fingerprint: str,
    checkpoint_every: int,
    progress: bool = True,
    on_checkpoint: Callable[[int], None] | None = None,
    desc: str = "train",
) -> list[dict]:
    """The loop every model family trains with: ``step(i)`` does iteration i (1-based) in place and returns
    its losses as detached tensors (read back only every 100 iterations, when recorded). Full-state checkpoints (``modules``, ``optimizers``, step,
    RNG states, history) every ``checkpoint_every`` iterations, at the end and on SIGTERM; a run resumes
    from ``checkpoint_path`` when it holds a state with the same ``fingerprint`` (a hash of everything that
    changes the result) and then ends bit-identical. ``on_checkpoint(i)`` must not draw from ``rng``."""
    existed = Path(checkpoint_path).exists()
    state = load_training_state(checkpoint_path, modules=modules, optimizers=optimizers, rng=rng,
                                fingerprint=fingerprint)
    start = state["step"] if state else 0
    history: list[dict] = state["history"] if state else []
    _log_start(checkpoint_path, existed, start, iterations)

    def checkpoint(at: int) -> None:
        save_training_state(checkpoint_path, modules=modules, optimizers=optimizers, step=at, rng=rng,
                            fingerprint=fingerprint, history=history)
        if on_checkpoint is not None:
            on_checkpoint(at)

    bar = progress_bar(range(start + 1, iterations + 1), desc=desc, disable=not progress, initial=start,
                       mininterval=2)
    with _StopOnSigterm() as stop:
        for i in bar:
            losses = step(i)
            if i % 100 == 0 or i == iterations:  # float() waits for the device: only when recording
                history.append({"step": i, **{k: float(v) for k, v in losses.items()}})
                if hasattr(bar, "set_postfix"):  # not when disabled (the bare range)
                    bar.set_postfix(**{k: f"{v:.3f}" for k, v in history[-1].items() if k != "step"})
            if i % checkpoint_every == 0 or i == iterations:
                checkpoint(i)
            if stop.requested:
                checkpoint(i)
                raise TrainingInterrupted(f"SIGTERM at step {i}: checkpoint written to {checkpoint_path}")
    if start < iterations:
        log(f"{desc}: wrote the final checkpoint (step {iterations}) to {checkpoint_path}")
    return history


def train_gan(
    generator: torch.nn.Module,
    critic: torch.nn.Module,
    *,
    recipe: GanRecipe,
    real_batch: Callable[[int, torch.Generator], torch.Tensor],
    latent_batch: Callable[[int, torch.Generator], torch.Tensor],
    rng: torch.Generator,
    checkpoint_path: str,
    fingerprint: str,
    progress: bool = True,
    on_checkpoint: Callable[[int], None] | None = None,
) -> list[dict]:
    """n critic steps per generator step with ``recipe.loss``; returns the loss history."""
    critic_loss_fn, gen_loss_fn = get_loss(recipe.loss)
    # foreach: the multi-tensor Adam, the same arithmetic per tensor as the default single-tensor loop on CPU
    # (bit-identical results) with a fraction of its Python overhead (CUDA already defaults to it)
    opt_g = torch.optim.Adam(generator.parameters(), lr=recipe.lr_g, betas=tuple(recipe.betas), foreach=True)
    opt_d = torch.optim.Adam(critic.parameters(), lr=recipe.lr_d, betas=tuple(recipe.betas), foreach=True)
    gen_params = [p for p in generator.parameters() if p.requires_grad]

    def step(i: int) -> dict[str, torch.Tensor]:
        # _set_lr takes the number of steps done before this one
        _set_lr(opt_d, recipe.lr_d, i - 1, recipe)
        _set_lr(opt_g, recipe.lr_g, i - 1, recipe)
        for _ in range(recipe.critic_steps):
            real = real_batch(recipe.batch_size, rng)
            with torch.no_grad():
                fake = generator(latent_batch(recipe.batch_size, rng))
            d_loss = critic_loss_fn(critic, real, fake, rng, recipe.gp_weight)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        g_loss = gen_loss_fn(critic, generator(latent_batch(recipe.batch_size, rng)))
        opt_g.zero_grad(set_to_none=True)
        # only the generator's gradients: the critic's would be discarded unused (its next step starts from
        # zero_grad), and skipping them saves the critic's weight-gradient products
        g_loss.backward(inputs=gen_params)
        opt_g.step()
        return {"critic_loss": d_loss.detach(), "generator_loss": g_loss.detach()}

    return run_loop(modules={"generator": generator, "critic": critic},
                    optimizers={"generator": opt_g, "critic": opt_d}, iterations=recipe.iterations, step=step,
                    rng=rng, checkpoint_path=checkpoint_path, fingerprint=fingerprint,
                    checkpoint_every=recipe.checkpoint_every, progress=progress, on_checkpoint=on_checkpoint)


def _log_start(path: str, existed: bool, start: int, total: int) -> None:
    name = Path(path).name
    if start:
        log(f"train: resumed from {name} at step {start} of {total}")
    elif existed:
        log(f"train: starting fresh at step 0 of {total} ({name} is from another configuration: replaced)")
    else:
        log(f"train: starting fresh at step 0 of {total} (no {name} yet)")
