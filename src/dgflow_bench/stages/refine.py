"""`dgflow-bench refine`: run one refinement method from the shared seeded latents and save every
snapshot. Latents are refined batch by batch and each batch's snapshots go straight to disk
(snapshots.write_snapshots), so memory does not grow with the number of samples."""

from __future__ import annotations

import contextlib
import time

import torch

from ..io import sha256_bytes, write_resolved_config
from ..config import derive_seed
from ..models.corrected import ResizedInput, resize_for
from ..models.store import load_model_file
from ..progress import log
from ..refine.common import RefinementDiverged, sample_latents
from ..refine.params import MethodParams
from ..refine.network_modes import prepare_spectral_norm, restart_spectral_norm, set_generator_bn_mode
from ..catalog import DATASETS, METHODS, SUITES
from ..runtime import resolve_device, seeded_generator
from ..snapshots import write_snapshots
from .common import load_split_training_data


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


def _merge_info(infos: list[dict]) -> dict:
    """Facts from each batch; a single batch keeps plain values."""
    if len(infos) == 1:
        return infos[0]
    return {key: [info.get(key) for info in infos] for key in infos[0]}


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
        # the u-vectors advance per refinement step in a release mode: each latent batch restarts them (_Run)
        logit, sn_info = prepare_spectral_norm(logit, sn_mode, common["sn_power_iterations"],
                                               naive=bool(getattr(method, "naive", False)))
    # a method may draw its latents from another prior (DOT's release: U[-1, 1]); same seed, same size
    prior, dim = method.prior(model["latent"]["prior"]), model["latent"]["dim"]
    if method.real_samples:
        method = _prepared(method, dataset, data, generator, logit, common["seed"], dev, prior, dim)
    storage = params.get("storage", "default")
    run = _Run(dataset, generator, logit, prior, dim, common, storage, dev, params.get("name", "?"))

    diverged = None
    while True:
        try:
            seeds = run.write(out, method, progress)
            break
        except Diverged as exc:
            if exc.step == 0:
                raise ValueError(f"{exc.reason} at step 0, before any refinement step: {model_file} (or the "
                                 "discriminator the method uses) is broken; retrain or re-import it") from None
            # A divergence is a result, not a crash: keep the snapshots before it by running again (every seed)
            # to the last kept step before it, and record where and why it diverged. Each batch has its own
            # noise stream, so the shorter run is exactly the first steps of the diverged one; it can only reveal
            # an earlier sign that an overflow in the method hid (a sample out of range), and then the next pass
            # records that.
            shorter = method.shortened(exc.step)
            if shorter is None:  # a method without steps to cut (DRS, MH-GAN)
                raise ValueError(f"{params.get('name', '?')}: {exc.reason} at step {exc.step}") from None
            method, last = shorter
            diverged = {"step": exc.step, "reason": exc.reason, "kept_until_step": last,
                        "seed_index": exc.seed_index}
            log(f"{params.get('name', '?')}: diverged at step {exc.step} ({exc.reason}, refinement seed "
                f"#{exc.seed_index}); keeping the run up to step {last}")
    networks = {"generator_bn": bn_mode, "generator_batchnorm_layers": n_batchnorm, **sn_info}
    # seed 0's facts stay at the top level (a one-seed record reads as it always did)
    write_resolved_config(out, "refine", params, model_file=model_file, disc_file=disc_file,
                          logit_model_file=logit_model_file, device=str(dev),
                          latents_sha256=seeds[0]["latents_sha256"], networks=networks,
                          storage=storage, info=seeds[0]["info"], diverged=diverged, seeds=seeds)


def refinement_seed(base: int, index: int) -> int:
    """The seed of refinement repeat ``index`` (refine.seeds): the configured seed itself for the first, so a
    one-seed run is unchanged, and derived ones after it (never base + k: batch k's noise uses base + 1 + k)."""
    return base if index == 0 else derive_seed(base, "refinement-seed", str(index))


class Diverged(Exception):
    """``seed_index``: which refinement seed (0 .. refine.seeds - 1) diverged, not the seed's value."""

    def __init__(self, step: int, reason: str, seed_index: int = 0):
        super().__init__(f"diverged at step {step}: {reason}")
        self.step, self.reason, self.seed_index = step, reason, seed_index


class _Run:
    """One refinement of every latent batch, for every refinement seed, into one snapshots file; raises
    Diverged at the first step where an iterate is non-finite or a kept sample leaves the sane range
    (``refine.divergence_bound`` times the largest absolute value of all base samples, so the verdict does not
    depend on the batch size). Seed s draws its latents from s and batch k its noise from s + 1 + k. Reasons
    hold no '|': they are table cells."""

    def __init__(self, dataset, generator, logit, prior, dim, common, storage, device, name):
        self.modality = SUITES[DATASETS[dataset].suite].modality
        self.generator, self.logit, self.prior, self.dim = generator, logit, prior, dim
        self.common, self.storage, self.device, self.name = common, storage, device, name

    def write(self, out: str, method: MethodParams, progress: bool) -> list[dict]:
        """Per refinement seed: {'seed', 'latents_sha256', 'info' (per batch), 'wall_s', 'cpu_s'}."""
        records = []
        with write_snapshots(out) as writer:
            for index in range(self.common.get("seeds", 1)):
                seed = refinement_seed(self.common["seed"], index)
                z0 = sample_latents(self.prior, self.common["n_samples"], self.dim, seed)
                with measured() as cost:
                    infos = self._write_seed(writer.for_seed(index), method, z0, seed, index, progress)
                records.append({"seed": seed, "latents_sha256": sha256_bytes(z0.numpy().tobytes()),
                                "info": _merge_info(infos), **cost})
        return records

    def _write_seed(self, writer, method: MethodParams, z0: torch.Tensor, seed: int, index: int,
                    progress: bool) -> list[dict]:
        infos, finals, peaks = [], [], []
        for batch_index, start in enumerate(range(0, z0.shape[0], self.common["batch_size"])):
            batch = z0[start:start + self.common["batch_size"]].to(self.device)
            rng = seeded_generator(seed + 1 + batch_index, self.device)
            restart_spectral_norm(self.logit)  # a release mode's d starts every batch thermalised
            try:
                with self._particles(batch.shape[0], seed, batch_index):
                    result = method.run(batch, self.generator, self.logit, rng, prior=self.prior, progress=progress)
                if batch_index == 0:
                    method = method.after_first_batch(result.info)  # e.g. DOT's K, once per run
            except RefinementDiverged as exc:
                raise Diverged(exc.step, "non-finite iterates", index) from None
            peaks.append(self._peaks(result.snapshots, index))
            writer.add_batch({step: self.modality.to_storage(x, self.storage)
                              for step, x in result.snapshots.items()})
            infos.append(result.info)
            finals.append(None if result.final_latents is None else result.final_latents.cpu())
            del result
        self._check_range(peaks, index)
        moved = all(f is not None for f in finals)
        writer.finish(latents=z0.numpy(), final_latents=torch.cat(finals).numpy() if moved else None)
        return infos

    def _particles(self, rows: int, seed: int, batch_index: int):
        """A generator with noise of its own besides the latent (Glow's top latent: models/glow_latent.py)
        keeps one seeded draw per particle while a batch is refined, so G stays a fixed function of z."""
        hold = getattr(self.generator, "particles", None)
        return hold(rows, derive_seed(seed, "particles", str(batch_index))) if hold else contextlib.nullcontext()

    @staticmethod
    def _peaks(snapshots: dict[int, torch.Tensor], index: int) -> dict[int, float]:
        """Largest absolute value at each kept step; non-finite samples end the run at once."""
        for step in sorted(snapshots):
            if not torch.isfinite(snapshots[step]).all():
                raise Diverged(step, "non-finite samples", index)
        return {step: float(x.abs().max()) for step, x in snapshots.items()}

    def _check_range(self, peaks: list[dict[int, float]], index: int) -> None:
        scale = max(p[0] for p in peaks)
        bound = float(self.common["divergence_bound"]) * max(scale, 1e-12)
        for step in sorted(peaks[0]):
            peak = max(p[step] for p in peaks)
            if peak > bound:
                raise Diverged(step, f"largest absolute value {peak:.3g}, beyond refine.divergence_bound "
                                     f"({self.common['divergence_bound']:g}) x the base samples' {scale:.3g}", index)


@contextlib.contextmanager
def measured():
    """Wall-clock and CPU (this process) seconds of the block, with queued GPU work finished before the clock
    stops (CUDA runs asynchronously): {'wall_s', 'cpu_s'} filled in on exit."""
    cost: dict = {}
    wall, cpu = time.perf_counter(), time.process_time()
    yield cost
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
    cost.update(wall_s=time.perf_counter() - wall, cpu_s=time.process_time() - cpu)
