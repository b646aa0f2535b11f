"""`dgflow-bench refine`: run one refinement method from the shared seeded latents and save every
snapshot. Latents are refined batch by batch and each batch's snapshots go straight to disk
(snapshots.write_snapshots), so memory does not grow with the number of samples."""

from __future__ import annotations

import torch

from ..io import sha256_bytes, write_resolved_config
from ..modalities import MODALITIES
from ..models.store import load_model_file
from ..refine.common import RefinementDiverged, sample_latents
from ..refine.network_modes import set_generator_bn_mode, thermalise_spectral_norm
from ..registry import DATASETS, METHODS, lookup
from ..runtime import resolve_device, seeded_generator
from ..snapshots import write_snapshots


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
    modality = MODALITIES[lookup(DATASETS, dataset, "dataset").suite]
    run_method = lookup(METHODS, method["kind"], "refinement method kind")
    dev = resolve_device(device)
    model = load_model_file(model_file)
    generator = model["generator"].to(dev).requires_grad_(False)
    n_batchnorm = set_generator_bn_mode(generator, common["generator_bn"])
    logit = _logit_network(model, method, disc_file).to(dev).requires_grad_(False)
    sn_info = thermalise_spectral_norm(logit, common["sn_power_iterations"])
    prior, dim = model["latent"]["prior"], model["latent"]["dim"]
    z0 = sample_latents(prior, common["n_samples"], dim, common["seed"])
    rng = seeded_generator(common["seed"] + 1, dev)
    storage = params.get("storage", "default")

    infos, finals = [], []
    with write_snapshots(out) as writer:
        for start in range(0, z0.shape[0], common["batch_size"]):
            batch = z0[start:start + common["batch_size"]].to(dev)
            try:
                result = run_method(batch, generator, logit, {**method, "progress": progress}, rng, prior=prior)
            except RefinementDiverged as exc:
                raise RefinementDiverged(exc.method, exc.step, exc.step_size,
                                         f"Method {params.get('name', '?')!r}; nothing was written to {out}.") from None
            writer.add_batch({step: modality.to_storage(x, storage) for step, x in result.snapshots.items()})
            infos.append(result.info)
            finals.append(None if result.final_latents is None else result.final_latents.cpu())
            del result
        moved = all(f is not None for f in finals)
        writer.finish(latents=z0.numpy(), final_latents=torch.cat(finals).numpy() if moved else None)
    networks = {"generator_bn": common["generator_bn"], "generator_batchnorm_layers": n_batchnorm, **sn_info}
    write_resolved_config(out, "refine", params, model_file=model_file, disc_file=disc_file, device=str(dev),
                          latents_sha256=sha256_bytes(z0.numpy().tobytes()), networks=networks,
                          storage=storage, info=_merge_info(infos))
