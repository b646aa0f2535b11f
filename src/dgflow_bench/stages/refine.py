"""`dgflow-bench refine`: run one refinement method from the shared seeded latents and save every
snapshot. Latents are streamed in batches so memory does not grow with the number of samples."""

from __future__ import annotations

import numpy as np
import torch

from ..io import savez, sha256_bytes, write_resolved_config
from ..modalities import MODALITIES
from ..models.store import load_model_file
from ..refine.common import RefinementDiverged, sample_latents
from ..registry import DATASETS, METHODS, lookup
from ..runtime import resolve_device, seeded_generator


def _logit_network(model: dict, method: dict, disc_file: str | None) -> torch.nn.Module:
    if method.get("discriminator", "raw") == "raw":  # `base` needs no discriminator: any will do
        return model["critic"]
    if disc_file is None:
        raise ValueError("method uses discriminator 'finetuned' but no --disc file was given")
    return load_model_file(disc_file)["critic"]


def _merge_info(infos: list[dict]) -> dict:
    """Facts from each batch; a single batch keeps plain values."""
    if len(infos) == 1:
        return infos[0]
    return {key: [info.get(key) for info in infos] for key in infos[0]}


def run(dataset: str, model_file: str, disc_file: str | None, params: dict, out: str, device: str,
        progress: bool) -> None:
    method, common = params["method"], params["refine"]
    to_storage = MODALITIES[lookup(DATASETS, dataset, "dataset").suite].to_storage
    run_method = lookup(METHODS, method["kind"], "refinement method kind")
    dev = resolve_device(device)
    model = load_model_file(model_file)
    generator = model["generator"].to(dev).requires_grad_(False)
    logit = _logit_network(model, method, disc_file).to(dev).requires_grad_(False)
    prior, dim = model["latent"]["prior"], model["latent"]["dim"]
    z0 = sample_latents(prior, common["n_samples"], dim, common["seed"])
    rng = seeded_generator(common["seed"] + 1, dev)

    chunks: dict[int, list[np.ndarray]] = {}
    infos = []
    for start in range(0, z0.shape[0], common["batch_size"]):
        batch = z0[start:start + common["batch_size"]].to(dev)
        try:
            result = run_method(batch, generator, logit, {**method, "progress": progress}, rng, prior=prior)
        except RefinementDiverged as exc:
            raise RefinementDiverged(exc.method, exc.step, exc.step_size,
                                     f"Method {params.get('name', '?')!r}; nothing was written to {out}.") from None
        for step, x in result.snapshots.items():
            chunks.setdefault(step, []).append(to_storage(x))
        infos.append(result.info)
    steps = np.array(sorted(chunks), dtype=np.int64)
    samples = np.stack([np.concatenate(chunks[s]) for s in steps])
    savez(out, steps=steps, samples=samples, latents=z0.numpy())
    write_resolved_config(out, "refine", params, model_file=model_file, disc_file=disc_file, device=str(dev),
                          latents_sha256=sha256_bytes(z0.numpy().tobytes()), info=_merge_info(infos))
