"""`dgflow-bench train`: train a base model (its family's loop: training/family.py) with resumable
full-state checkpoints."""

from __future__ import annotations

from pathlib import Path

import torch

from ..io import drop_resume_state, sha256_file, write_resolved_config
from ..models.store import save_model_file
from ..catalog import MODELS, SUITES
from ..runtime import fingerprint, latent_sampler, resolve_device, seeded_generator
from .training_data import load_training_data

def run(dataset: str, model: str, data: str, params: dict, out: str, state: str, device: str,
        progress: bool) -> None:
    family = MODELS[model]
    dev = resolve_device(device)
    real_batch, info = load_training_data(dataset, data, dev)
    torch.manual_seed(int(params["seed"]))  # weight initialisation
    nets = {role: net.to(dev) for role, net in family.build(params["arch"], info).items()}
    latent = family.latent(params["arch"])
    # a look at progress beside the model file (images: samples.png), replaced at every checkpoint
    preview = SUITES[family.suite].preview
    grid = preview(nets["generator"], latent, Path(out).with_name("samples.png")) if preview else None
    history = family.train(
        nets, params["recipe"], real_batch=real_batch,
        latent_batch=latent_sampler(latent["prior"], latent["dim"], dev),
        rng=seeded_generator(int(params["seed"]) + 1, dev), checkpoint_path=state,
        fingerprint=fingerprint(params, sha256_file(data), str(dev)), progress=progress, on_checkpoint=grid,
    )
    # the model file keeps what refinement uses: the generator and the family's own logit (training-only nets,
    # e.g. a VAE's encoder or an MMD critic's feature map, stay in the training checkpoint)
    kept = {role: nets[role].cpu() for role in ("generator", "critic") if role in nets}
    save_model_file(out, **kept, latent=latent,
                    meta={"source": "trained", "model": model, "dataset": dataset, **family.record(),
                          "data_info": info, "history": history})
    write_resolved_config(out, "train", params, model=model, data=data, device=str(dev))
    drop_resume_state(state)
