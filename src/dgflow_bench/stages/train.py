"""`dgflow-bench train`: train a base GAN with resumable full-state checkpoints."""

from __future__ import annotations

from pathlib import Path

import torch

from ..io import atomic_path, drop_resume_state, sha256_file, write_resolved_config
from ..modalities import MODALITIES
from ..models.store import save_model_file
from ..registry import MODELS, lookup
from ..runtime import fingerprint, latent_sampler, resolve_device, seeded_generator
from ..training.loop import GanRecipe, train_gan
from .common import load_training_data

GRID_SAMPLES = 64  # 8 x 8 images from the same fixed latents at every checkpoint


def image_grid_writer(generator: torch.nn.Module, latent: dict, path: Path):
    """A callback saving an 8 x 8 grid of the generator's samples as PNG (atomically, replaced at every
    checkpoint). Fixed latents of their own seed, eval mode, no_grad: training's RNG streams and BatchNorm
    statistics are untouched, so a resumed run stays bit-identical."""
    import matplotlib.pyplot as plt

    sample = latent_sampler(latent["prior"], latent["dim"], torch.device("cpu"))
    z = sample(GRID_SAMPLES, torch.Generator().manual_seed(0))

    def write(step: int) -> None:
        was_training = generator.training
        generator.eval()
        with torch.no_grad():
            x = generator(z.to(next(generator.parameters()).device)).cpu()
        generator.train(was_training)
        pixels = MODALITIES["images"].to_storage(x, "uint8")  # (64, 3, H, W), as refined samples are stored
        n, c, h, w = pixels.shape
        side = int(n ** 0.5)
        grid = pixels[:side * side].reshape(side, side, c, h, w).transpose(0, 3, 1, 4, 2)
        grid = grid.reshape(side * h, side * w, c)
        with atomic_path(path) as tmp:
            plt.imsave(tmp, grid, format="png")

    return write


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
    # images: a look at progress beside the model file, samples.png, replaced at every checkpoint
    grid = (image_grid_writer(generator, latent, Path(out).with_name("samples.png"))
            if entry.suite == "images" else None)
    history = train_gan(
        generator, critic, recipe=recipe, real_batch=real_batch,
        latent_batch=latent_sampler(latent["prior"], latent["dim"], dev),
        rng=seeded_generator(int(params["seed"]) + 1, dev), checkpoint_path=state,
        fingerprint=fingerprint(params, sha256_file(data), str(dev)), progress=progress, on_checkpoint=grid,
    )
    save_model_file(out, generator=generator.cpu(), critic=critic.cpu(), latent=latent,
                    meta={"source": "trained", "model": model, "dataset": dataset, "loss": entry.loss,
                          "data_info": info, "history": history})
    write_resolved_config(out, "train", params, model=model, data=data, device=str(dev))
    drop_resume_state(state)
