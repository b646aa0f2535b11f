"""`dgflow-bench refine`: run one refinement method from the shared seeded latents and save every
snapshot. Latents are refined batch by batch and each batch's snapshots go straight to disk
(snapshots.write_snapshots), so memory does not grow with the number of samples. This module loads the
networks and the data and writes the record; refine/driver.py runs the batches."""

from __future__ import annotations

import torch

from ..catalog import DATASETS, METHODS, SUITES
from ..io import derive_seed, write_resolved_config
from ..models.corrected import ResizedInput, resize_for
from ..models.store import load_model_file
from ..progress import log
from ..refine.common import sample_latents
from ..refine.driver import RefinementRun
from ..refine.method_params import MethodParams
from ..refine.network_modes import prepare_spectral_norm, set_generator_bn_mode
from ..runtime import resolve_device, seeded_generator
from .training_data import load_split_training_data


def _logit_network(model: dict, method: MethodParams, disc_file: str | None,
                   logit_model_file: str | None) -> torch.nn.Module | None:
    if method.discriminator_kind == "raw":  # None: a family with no logit of its own (the base row needs none)
        if logit_model_file is not None:  # models.<model>.logit_from: another model's critic, as is
            return _fitted(load_model_file(logit_model_file)["critic"], model)
        return model.get("critic")
    if disc_file is None:
        raise ValueError("method uses discriminator 'finetuned' but no --disc file was given")
    return load_model_file(disc_file)["critic"]


def _fitted(critic: torch.nn.Module, model: dict) -> torch.nn.Module:
    """A borrowed critic of another image size (models.<m>.d_phi_dataset) judges bilinearly resized samples."""
    size = getattr(critic, "image_size", None)
    if size is None:
        return critic
    generator = model["generator"]  # still in eval mode (load_model_file), before its refinement BN mode is set
    with torch.no_grad():  # the generator's own sample size: one forward of two latents
        z = sample_latents(model["latent"]["prior"], 2, model["latent"]["dim"], 0)
        probe = generator(z.to(next(generator.parameters()).device))
    resize = resize_for(critic, probe.shape[-1])
    if resize is None:
        return critic
    log(f"the borrowed critic takes {size} px images, the samples are {probe.shape[-1]} px: it sees them resized "
        "bilinearly (align_corners=True)")
    return ResizedInput(critic, resize)


def _prepared(method: MethodParams, dataset: str, data: str | None, generator, logit, seed: int, dev, prior: str,
              dim: int) -> MethodParams:
    """The method's fit on real samples (MH-GAN's calibration): rows held out of the training array with their
    own seed, never the metrics' held-out split, against generator samples of their own random stream."""
    if data is None:
        raise ValueError(f"method kind {method.kind!r} fits on real samples: the refine stage needs --data")
    _, _, (rows, to_input) = load_split_training_data(dataset, data, dev, holdout=method.real_samples,
                                                      seed=derive_seed(seed, "real-samples", method.kind))
    rng = seeded_generator(derive_seed(seed, "fit", method.kind), dev)
    prepared = method.prepare(to_input(rows), generator, logit, rng, prior=prior, latent_dim=dim)
    log(f"{method.kind}: fitted on {len(rows)} held-out real samples of {data}")
    return prepared


def _no_logit(model_file: str, name: str):
    def logit(x: torch.Tensor) -> torch.Tensor:
        raise ValueError(f"method {name!r} follows a discriminator, but {model_file} holds none (its family has no "
                         f"logit of its own); set methods.{name}.discriminator: finetuned with a corrector "
                         "(models.<model>.density_ratio), or borrow another model's critic (models.<model>.logit_from)")

    return logit


def run(dataset: str, model_file: str, disc_file: str | None, params: dict, out: str, device: str,
        progress: bool, logit_model_file: str | None = None, data: str | None = None) -> None:
    method, common = METHODS[params["method"]["kind"]].from_config(params["method"]), params["refine"]
    dev = resolve_device(device)
    model = load_model_file(model_file)
    generator = model["generator"].to(dev).requires_grad_(False)
    logit = _logit_network(model, method, disc_file, logit_model_file)
    bn_mode = method.bn_mode(common["generator_bn"])
    n_batchnorm = set_generator_bn_mode(generator, bn_mode)
    sn_mode = method.sn_mode(common["spectral_norm"])
    if logit is None:
        logit, sn_info = _no_logit(model_file, params.get("name", "?")), {"spectral_norm": sn_mode}
    else:
        logit = logit.to(dev).requires_grad_(False)
        # the u-vectors advance per refinement step in a release mode: each latent batch restarts them (the driver)
        logit, sn_info = prepare_spectral_norm(logit, sn_mode, common["sn_power_iterations"],
                                               naive=bool(getattr(method, "naive", False)))
    # a method may draw its latents from another prior (DOT's release: U[-1, 1]); same seed, same size
    prior, dim = method.prior(model["latent"]["prior"]), model["latent"]["dim"]
    if method.real_samples:
        method = _prepared(method, dataset, data, generator, logit, common["seed"], dev, prior, dim)
    storage = params.get("storage", "default")
    modality = SUITES[DATASETS[dataset].suite].modality
    run = RefinementRun(modality, generator, logit, prior, dim, common, storage, dev, params.get("name", "?"))

    seeds, diverged = run.write_until_diverged(out, method, progress, model_file)
    networks = {"generator_bn": bn_mode, "generator_batchnorm_layers": n_batchnorm, **sn_info}
    # seed 0's facts stay at the top level (a one-seed record reads as it always did)
    write_resolved_config(out, "refine", params, model_file=model_file, disc_file=disc_file,
                          logit_model_file=logit_model_file, device=str(dev),
                          latents_sha256=seeds[0]["latents_sha256"], networks=networks,
                          storage=storage, info=seeds[0]["info"], diverged=diverged, seeds=seeds)


