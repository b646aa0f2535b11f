"""`dgflow-bench finetune`: logistic fine-tuning of the critic into a density-ratio estimator."""

from __future__ import annotations

import copy

import numpy as np
import torch

from ..io import write_resolved_config
from ..models.store import load_model_file, save_model_file
from ..runtime import array_sampler, latent_sampler, resolve_device, seeded_generator
from ..training.density_ratio import finetune_logistic


def run(model_file: str, data: str, params: dict, out: str, device: str, progress: bool) -> None:
    dev = resolve_device(device)
    loaded = load_model_file(model_file)
    generator = loaded["generator"].to(dev)
    discriminator = copy.deepcopy(loaded["critic"]).to(dev).train()
    with np.load(data, allow_pickle=False) as arrays:
        train = torch.from_numpy(arrays["train"]).to(dev)
    latent = loaded["latent"]
    stats = finetune_logistic(
        discriminator, generator, real_batch=array_sampler(train),
        latent_batch=latent_sampler(latent["prior"], latent["dim"], dev), steps=params["steps"],
        batch_size=params["batch_size"], lr=params["lr"], betas=tuple(params["betas"]),
        rng=seeded_generator(params["seed"], dev), progress=progress,
    )
    save_model_file(out, critic=discriminator.cpu(), meta={"kind": "finetuned-logistic", **stats})
    write_resolved_config(out, "finetune", params, model_file=model_file, data=data, result=stats["final"])
