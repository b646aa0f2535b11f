"""Discriminator fine-tuning: turn a critic into a density-ratio estimator.

A logistic discriminator D = sigmoid(d) trained with real = 1 and generator samples = 0 has, at its optimum,
d(x) = log mu(x) / rho(x): exactly the ratio DGflow needs. Starting from the WGAN critic keeps its features;
the logistic loss recalibrates its scale.

An estimator is judged on data it was not trained on: ``HeldOut`` holds real samples kept out of the
training minibatches and generated samples from latents of their own seed, and the weights that are kept are
those of the evaluated step with the lowest held-out logistic loss (``BestWeights``), never chosen by any
downstream metric. A fine-tune that overfits its minibatches, or drifts, is cut back to its best step."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..progress import progress as progress_bar


def logistic_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with logits, real = 1 and fake = 0, written with softplus for stability."""
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()


@dataclass
class HeldOut:
    """A fixed validation sample: ``real`` rows held out of the training array (``to_input`` makes network
    input of a chunk of them) and as many ``latents`` of the frozen ``generator``. Both become network input
    chunk by chunk, so a large validation sample of images or text costs no more memory than a batch."""

    real: torch.Tensor
    latents: torch.Tensor
    generator: Callable[[torch.Tensor], torch.Tensor]
    to_input: Callable[[torch.Tensor], torch.Tensor] = lambda rows: rows
    chunk: int = 500

    @torch.no_grad()
    def score(self, logit_fn: Callable[[torch.Tensor], torch.Tensor]) -> dict:
        """Held-out logistic loss (the estimator's own objective) and accuracy of sign(d)."""
        d_real = torch.cat([logit_fn(self.to_input(r)).reshape(-1) for r in self.real.split(self.chunk)])
        d_fake = torch.cat([logit_fn(self.generator(z)).reshape(-1) for z in self.latents.split(self.chunk)])
        loss = logistic_loss(d_real, d_fake)
        acc = 0.5 * ((d_real > 0).float().mean() + (d_fake < 0).float().mean())
        return {"heldout_logistic_loss": loss.item(), "heldout_accuracy": acc.item()}


def make_heldout(real_split: tuple, generator: Callable, latent_batch: Callable, seed: int) -> HeldOut:
    """``real_split`` = (held-out rows, to_input) from stages.training_data.load_split_training_data; the latents
    are drawn with their own ``seed``, so the training loop's random stream is untouched."""
    real, to_input = real_split
    if len(real) == 0:
        raise ValueError("the validation sample is empty: set validation_size >= 1")
    latents = latent_batch(len(real), torch.Generator(device=real.device).manual_seed(int(seed)))
    return HeldOut(real=real, latents=latents, generator=generator, to_input=to_input)


# the names of refine/common.Counter's counts (refine/params.EVALUATION_KEYS), restated: training sits below
# refine in the layers, and the evaluate stage reads these counts by those names
PASS_KEYS = ("generator_forward", "generator_backward", "discriminator_forward", "discriminator_backward")


class PassTally:
    """Samples (rows) through each pass of each network during a density-ratio fit, the one-off cost the
    report amortises over the refined samples. A training step: a generator forward of the fake batch, a
    discriminator forward and backward (to its parameters) of the real and the fake batch; a held-out scoring:
    a generator forward of its latents and a discriminator forward of both sets. The discriminator is
    whatever the loss is taken on (for a corrector, d_phi + d_lambda: the backward reaches d_lambda only)."""

    def __init__(self):
        self.counts = dict.fromkeys(PASS_KEYS, 0)

    def train_steps(self, real_rows: int, fake_rows: int, steps: int = 1) -> None:
        self.counts["generator_forward"] += steps * fake_rows
        self.counts["discriminator_forward"] += steps * (real_rows + fake_rows)
        self.counts["discriminator_backward"] += steps * (real_rows + fake_rows)

    def scored(self, heldout: "HeldOut", times: int = 1) -> None:
        self.counts["generator_forward"] += times * len(heldout.latents)
        self.counts["discriminator_forward"] += times * (len(heldout.real) + len(heldout.latents))


class BestWeights:
    """The weights of the evaluated step with the lowest held-out loss. ``module`` holds them (a copy of
    the trained network, so it can sit in a full-state checkpoint beside it)."""

    def __init__(self, network: torch.nn.Module):
        self.module = copy.deepcopy(network).requires_grad_(False)
        self.step, self.loss = -1, float("inf")

    def offer(self, network: torch.nn.Module, step: int, loss: float) -> None:
        if loss < self.loss:  # ties keep the earlier (shorter) fine-tune
            self.module.load_state_dict(network.state_dict())
            self.step, self.loss = int(step), float(loss)

    def restore(self, step: int, loss: float) -> None:
        """After a resume: ``module`` was reloaded from the checkpoint, its step and loss from the history."""
        self.step, self.loss = int(step), float(loss)


class HeldOutSelection:
    """The evaluate-and-keep loop every density-ratio fine-tune shares: score on ``heldout`` (None: a bare
    optimiser run that keeps its last weights), log, and remember the best weights of ``trained``."""

    def __init__(self, trained: torch.nn.Module, heldout: HeldOut | None, log: Callable[[str], None] | None):
        self.trained, self.heldout, self.log = trained, heldout, log
        self.best = BestWeights(trained)
        self.history: list[dict] = []
        self.passes = PassTally()  # the training loop adds its steps, evaluate() its held-out scorings

    def evaluate(self, step: int, train: dict, logit: torch.nn.Module) -> None:
        """Record step ``step``; ``logit`` is scored in eval mode (no spectral-norm power iteration or
        BatchNorm update on validation data), then put back in training mode. Step 0 without a held-out
        sample records nothing."""
        entry = {"step": step, **train}
        if self.heldout is not None:
            logit.eval()
            entry.update(self.heldout.score(logit))
            self.passes.scored(self.heldout)
            logit.train()
            self.best.offer(self.trained, step, entry["heldout_logistic_loss"])
        elif not train:
            return
        self.history.append(entry)
        if self.log is not None:
            self.log(" ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in entry.items()))

    def resume(self, history: list[dict]) -> None:
        """After a resume: ``best.module`` came back with the checkpoint, its step and loss from ``history``
        (whose scored entries are the held-out scorings done before it: counted again here)."""
        self.history = history
        if self.heldout is not None:
            self.passes.scored(self.heldout, sum("heldout_logistic_loss" in h for h in history))
        scored = [h for h in history if "heldout_logistic_loss" in h]
        if scored:
            kept = min(scored, key=lambda h: h["heldout_logistic_loss"])
            self.best.restore(kept["step"], kept["heldout_logistic_loss"])

    def finish(self) -> dict:
        """Load the kept weights into ``trained``; the fine-tune's result dict, with its counted passes
        (``network_evaluations``, PassTally)."""
        counted = {"network_evaluations": dict(self.passes.counts)}
        if self.heldout is None:
            return {"history": self.history, "final": self.history[-1] if self.history else {}, "validation": None,
                    **counted}
        self.trained.load_state_dict(self.best.module.state_dict())
        kept = next((h for h in self.history if h["step"] == self.best.step), {})
        kept = {k: v for k, v in kept.items() if k.startswith("heldout_")}
        summary = {"history": self.history, "kept_step": self.best.step, "kept": kept,
                   "rule": "lowest held-out logistic loss"}
        return {"history": self.history, "final": {"step": self.best.step, **kept}, "validation": summary,
                **counted}


def finetune_logistic(
    discriminator: torch.nn.Module,
    generator: torch.nn.Module,
    *,
    real_batch: Callable[[int, torch.Generator], torch.Tensor],
    latent_batch: Callable[[int, torch.Generator], torch.Tensor],
    steps: int,
    batch_size: int,
    lr: float,
    betas: tuple[float, float],
    rng: torch.Generator,
    heldout: HeldOut | None = None,
    eval_every: int = 50,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Fine-tune ``discriminator`` in place against samples of the frozen ``generator``; at the end it holds
    the weights of the evaluated step (0, eval_every, ..., steps) with the lowest held-out logistic loss.
    ``heldout`` None (a bare optimiser run, e.g. in tests) keeps the last weights and logs training loss only."""
    generator.requires_grad_(False)
    opt = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=tuple(betas))
    selection = HeldOutSelection(discriminator, heldout, log)
    selection.evaluate(0, {}, discriminator)
    for step in progress_bar(range(1, steps + 1), desc="finetune", disable=not progress, mininterval=2):
        real = real_batch(batch_size, rng)
        with torch.no_grad():
            fake = generator(latent_batch(batch_size, rng))
        d_real, d_fake = discriminator(real), discriminator(fake)
        loss = logistic_loss(d_real, d_fake)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        selection.passes.train_steps(real.shape[0], fake.shape[0])
        if step % eval_every == 0 or step == steps:
            acc = 0.5 * ((d_real > 0).float().mean() + (d_fake < 0).float().mean())
            selection.evaluate(step, {"logistic_loss": loss.item(), "accuracy": acc.item()}, discriminator)
    return selection.finish()
