"""Glow as a model family: the generator is the flow's inverse from a flat N(0, I) latent (models/glow.py),
trained by maximum likelihood on uniformly dequantised 8-bit images.

The recipe is y0ast/Glow-PyTorch ``train.py``'s (the code whose ``hparams.json`` the DGflow release's
``configs/cifar10-glow.yaml`` names; settings/official.yaml): Adam lr 5e-4 with weight decay 5e-5, the
learning rate warmed up linearly over the first 5 epochs (per epoch: factor min(1, (epoch + 1) / 5)),
batch 64, 250 epochs, ActNorm initialised on 8 batches. Not reproduced: its data augmentation (random
translation and horizontal flips of CIFAR10), which the pipeline's sampler has no notion of.
"""

from __future__ import annotations

from dataclasses import dataclass

from .family import ModelFamily


@dataclass(frozen=True)
class GlowFamily(ModelFamily):
    def latent(self, arch: dict) -> dict:
        # the flat latent has one value per pixel and channel: its size follows the images
        return {"prior": "normal", "dim": int(arch["channels"]) * int(arch["image_size"]) ** 2}

    def build(self, arch: dict, data_info: dict) -> dict:
        from ..models.glow import Glow

        for key in ("image_size", "channels"):
            if int(arch[key]) != int(data_info[key]):
                raise ValueError(f"glow arch.{key} is {arch[key]}, but the data has {data_info[key]}: set "
                                 f"models.<glow model>.arch.{key}: {data_info[key]}")
        glow = Glow(image_size=arch["image_size"], channels=arch["channels"], hidden_channels=arch["hidden_channels"],
                    K=arch["K"], L=arch["L"], actnorm_scale=arch["actnorm_scale"],
                    lu_decomposed=arch["lu_decomposed"], coupling=arch["coupling"], learn_top=arch["learn_top"],
                    flow_permutation=arch["flow_permutation"])
        return {"generator": glow}

    def train(self, nets: dict, recipe: dict, *, real_batch, latent_batch, rng, checkpoint_path, fingerprint,
              progress=True, on_checkpoint=None) -> list[dict]:
        import torch

        from .flow_loss import bits_per_dim, dequantized
        from .loop import run_loop
        glow = nets["generator"]
        optimizer = torch.optim.Adam(glow.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"])

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
        # samples are decode(eps) at temperature 1 (the latent is standardised: N(0, I) is the model itself)
        return {"objective": "maximum likelihood (bits/dim, uniform dequantisation)", "sampling_temperature": 1.0}
