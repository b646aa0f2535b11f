"""The model-family interface: what the pipeline needs of a kind of generative model, whatever its
training objective (a GAN, and later a VAE or a flow).

- ``latent(arch)``: its latent prior and size ({'prior', 'dim'}); latents are drawn by runtime.latent_sampler;
- ``build(arch, data_info)``: its networks by role: 'generator' decodes latents to data (a VAE's decoder
  mean, a flow's inverse), 'critic' is the family's own logit if it has one (a GAN's discriminator);
- ``train(nets, recipe, ...)``: its training loop, resumable from full-state checkpoints;
- ``schema``: the JSON schema of its ``models.<name>`` config block.

Families are registered per model name in registry.MODELS by the suites; declarations are light (no torch
at import), the loops are imported when the train stage runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional


@dataclass(frozen=True)
class ModelFamily:
    suite: str
    schema: dict
    prior: str  # 'uniform' (U[-1, 1]) or 'normal' (N(0, I))
    default_latent_dim: int  # used unless the architecture block sets z_dim

    def latent(self, arch: dict) -> dict:
        """The prior and size latents are drawn from, in training and (unless a method says otherwise) in
        refinement; an architecture block may set them (z_prior, z_dim)."""
        return {"prior": arch.get("z_prior", self.prior), "dim": int(arch.get("z_dim", self.default_latent_dim))}

    def build(self, arch: dict, data_info: dict) -> dict:
        raise NotImplementedError(f"{type(self).__name__} does not build networks")

    def train(self, nets: dict, recipe: dict, **loop) -> dict:
        """Train ``nets`` in place; ``loop``: real_batch, latent_batch, rng, checkpoint_path, fingerprint,
        progress, on_checkpoint (training/loop.py). Returns the history recorded in the model file."""
        raise NotImplementedError(f"{type(self).__name__} has no training loop")

    def record(self) -> dict:
        """Facts about the family kept in the model file's meta."""
        return {}


@dataclass(frozen=True)
class GanFamily(ModelFamily):
    """A generator and a critic trained adversarially with ``loss`` (training/gan_losses.py); the critic is
    the family's own logit."""

    loss: str = "wgan-gp"
    networks: Optional[Callable[[dict, dict], tuple]] = None  # (arch, data info) -> (generator, critic)

    def build(self, arch: dict, data_info: dict) -> dict:
        generator, critic = self.networks(arch, data_info)
        return {"generator": generator, "critic": critic}

    def train(self, nets: dict, recipe: dict, **loop) -> dict:
        from .loop import GanRecipe, train_gan

        r = recipe
        gan_recipe = GanRecipe(loss=self.loss, iterations=r["iterations"], critic_steps=r["critic_steps"],
                               batch_size=r["batch_size"], lr_g=r["lr"], lr_d=r["lr"], betas=tuple(r["betas"]),
                               gp_weight=r["gp_weight"], checkpoint_every=r["checkpoint_every"],
                               lr_decay=r["lr_decay"])
        return train_gan(nets["generator"], nets["critic"], recipe=gan_recipe, **loop)

    def record(self) -> dict:
        return {"loss": self.loss}
