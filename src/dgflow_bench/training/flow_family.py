"""Glow as a model family: the generator is the flow's inverse from a standardised N(0, I) latent
(models/glow.py; ``arch.latent``: the flat 3,072-d latent, our default, or y0ast's top level with the split
latents re-sampled at ``arch.temperature``, models/glow_latent.py), trained by maximum likelihood on uniformly
dequantised 8-bit images.

The recipe is y0ast/Glow-PyTorch 13c7b01 ``train.py``'s (our inference that this is the code behind the
``glow-cifar10.pt`` + ``hparams.json`` the DGflow release's ``configs/cifar10-glow.yaml`` names: models/glow.py
says from what). Adamax with lr 5e-4 and weight decay 5e-5 (``train.py:145``: ``optim.Adamax(model.parameters(),
lr=lr, weight_decay=5e-5)``, lr default ``train.py:409``); the learning rate warmed up linearly over the first
5 epochs (``train.py:147-148``, LambdaLR stepped once per epoch at ``train.py:278``: epoch e, counted from 0,
runs at factor min(1, (e + 1) / 5)); batch 64, 250 epochs, ActNorm initialised on 8 batches
(``train.py:394-423``, ``train.py:251-272``). Not reproduced: its data augmentation (random translation and
horizontal flips of CIFAR10), which the pipeline's sampler has no notion of.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models.glow_latent import latent_size
from .family import ModelFamily

OPTIMIZERS = ("adamax", "adam")  # adamax: y0ast's; adam: what this project used before (kept for comparison)


@dataclass(frozen=True)
class GlowFamily(ModelFamily):
    def latent(self, arch: dict) -> dict:
        # what the generator takes: every value of the flat latent, or the top level's (models/glow_latent.py)
        dim = latent_size(int(arch["channels"]), int(arch["image_size"]), int(arch["L"]), arch.get("latent", "flat"))
        return {"prior": "normal", "dim": dim}

    def build(self, arch: dict, data_info: dict) -> dict:
        from ..models.glow import Glow

        for key in ("image_size", "channels"):
            if int(arch[key]) != int(data_info[key]):
                raise ValueError(f"glow arch.{key} is {arch[key]}, but the data has {data_info[key]}: set "
                                 f"models.<glow model>.arch.{key}: {data_info[key]}")
        glow = Glow(image_size=arch["image_size"], channels=arch["channels"], hidden_channels=arch["hidden_channels"],
                    K=arch["K"], L=arch["L"], actnorm_scale=arch["actnorm_scale"],
                    lu_decomposed=arch["lu_decomposed"], coupling=arch["coupling"], learn_top=arch["learn_top"],
                    flow_permutation=arch["flow_permutation"], latent=arch.get("latent", "flat"),
                    temperature=arch.get("temperature", 1.0), split_noise=arch.get("split_noise", "particle"))
        return {"generator": glow}

    def train(self, nets: dict, recipe: dict, *, real_batch, latent_batch, rng, checkpoint_path, fingerprint,
              progress=True, on_checkpoint=None) -> list[dict]:
        import torch

        from .flow_loss import bits_per_dim, dequantized
        from .loop import run_loop
        glow = nets["generator"]
        optimizer = make_optimizer(glow.parameters(), recipe)

        def step(i: int) -> dict:
            glow.train()
            if i == 1:  # ActNorm's data-dependent initialisation, on init_batches batches at once
                with torch.no_grad():
                    glow.encode(dequantized(real_batch(recipe["batch_size"] * recipe["init_batches"], rng), rng))
            epoch = (i - 1) // recipe["iterations_per_epoch"]
            for group in optimizer.param_groups:  # a function of the step: resumes need no scheduler state
                group["lr"] = recipe["lr"] * min(1.0, (epoch + 1) / recipe["warmup_epochs"])
            loss = bits_per_dim(glow, dequantized(real_batch(recipe["batch_size"], rng), rng))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return {"bits_per_dim": loss.detach()}

        history = run_loop(modules={"generator": glow}, optimizers={"generator": optimizer},
                           iterations=recipe["iterations"], step=step, rng=rng, checkpoint_path=checkpoint_path,
                           fingerprint=fingerprint, checkpoint_every=recipe["checkpoint_every"], progress=progress,
                           on_checkpoint=on_checkpoint)
        glow.eval()
        return history

    def record(self) -> dict:
        # how samples are drawn (latent, temperature, split noise) is in the generator's spec in the model file
        return {"objective": "maximum likelihood (bits/dim, uniform dequantisation)"}


def make_optimizer(params, recipe: dict):
    """The recipe's optimiser: ``adamax`` (y0ast train.py:145, the default) or ``adam``; both with L2 weight
    decay added to the gradient (torch's ``weight_decay``), as y0ast's Adamax has."""
    import torch

    name = recipe.get("optimizer", "adamax")
    if name not in OPTIMIZERS:
        raise ValueError(f"glow train.optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")
    cls = torch.optim.Adamax if name == "adamax" else torch.optim.Adam
    return cls(params, lr=recipe["lr"], weight_decay=recipe["weight_decay"])
