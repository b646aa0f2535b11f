"""`dgflow-bench train`: train a base GAN with resumable full-state checkpoints."""

from __future__ import annotations

import torch

from ..io import sha256_file, write_resolved_config
from ..models.store import save_model_file
from ..registry import MODELS, lookup
from ..runtime import fingerprint, latent_sampler, resolve_device, seeded_generator
from ..training.loop import GanRecipe, train_gan
from .common import load_training_data


def run(dataset: str, model: str, data: str, params: dict, out: str, state: str, device: str,
        progress: bool) -> None:
    entry = lookup(MODELS, model, "model")
    dev = resolve_device(device)
    real_batch, info = load_training_data(dataset, data, dev)
    torch.manual_seed(int(params["seed"]))  # weight initialisation
    generator, critic = (net.to(dev) for net in entry.build(params["arch"], info))
    r = params["recipe"]
    recipe = GanRecipe(loss=entry.loss, iterations=r["iterations"], critic_steps=r["critic_steps"],
                       batch_size=r["batch_size"], lr_g=r["lr"], lr_d=r["lr"], betas=tuple(r["betas"]),
                       gp_weight=r["gp_weight"], checkpoint_every=r["checkpoint_every"],
                       lr_decay=r["lr_decay"])
    latent = entry.latent(params["arch"])
    history = train_gan(
        generator, critic, recipe=recipe, real_batch=real_batch,
        latent_batch=latent_sampler(latent["prior"], latent["dim"], dev),
        rng=seeded_generator(int(params["seed"]) + 1, dev), checkpoint_path=state,
        fingerprint=fingerprint(params, sha256_file(data), str(dev)), progress=progress,
    )
    save_model_file(out, generator=generator.cpu(), critic=critic.cpu(), latent=latent,
                    meta={"source": "trained", "model": model, "dataset": dataset, "loss": entry.loss,
                          "data_info": info, "history": history})
    write_resolved_config(out, "train", params, model=model, data=data, device=str(dev))
