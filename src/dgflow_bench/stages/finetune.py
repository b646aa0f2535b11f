"""`dgflow-bench finetune`: logistic fine-tuning of the critic into a density-ratio estimator."""

from __future__ import annotations

import copy

from ..io import write_resolved_config
from ..models.store import load_model_file, save_model_file
from ..runtime import latent_sampler, resolve_device, seeded_generator
from ..training.density_ratio import finetune_logistic
from .common import load_training_data


def run(dataset: str, model_file: str, data: str, params: dict, out: str, device: str, progress: bool) -> None:
    dev = resolve_device(device)
    loaded = load_model_file(model_file)
    generator = loaded["generator"].to(dev)
    discriminator = copy.deepcopy(loaded["critic"]).to(dev).train()
    real_batch, _ = load_training_data(dataset, data, dev)
    latent = loaded["latent"]
    stats = finetune_logistic(
        discriminator, generator, real_batch=real_batch,
        latent_batch=latent_sampler(latent["prior"], latent["dim"], dev), steps=params["steps"],
        batch_size=params["batch_size"], lr=params["lr"], betas=tuple(params["betas"]),
        rng=seeded_generator(params["seed"], dev), progress=progress,
    )
    save_model_file(out, critic=discriminator.cpu(), meta={"kind": "finetuned-logistic", **stats})
    write_resolved_config(out, "finetune", params, model_file=model_file, data=data, result=stats["final"])
