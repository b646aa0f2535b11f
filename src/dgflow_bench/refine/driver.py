"""The refinement run driver: every latent batch of every refinement seed through one method into one snapshots
file, with the divergence guard (a run that diverges is cut to the last kept step before it and says so), the
seeds of the refinement repeats and the measured time. It takes networks and settings, not files: the refine
stage (stages/refine.py) loads those and writes the record."""

from __future__ import annotations

import contextlib
import time

import torch

from ..errors import RefinementDiverged
from ..io import derive_seed, sha256_bytes
from ..progress import log
from ..runtime import seeded_generator
from ..snapshots import write_snapshots
from .common import sample_latents
from .method_params import MethodParams
from .network_modes import restart_spectral_norm


def merge_info(infos: list[dict]) -> dict:
    """Facts from each batch; a single batch keeps plain values."""
    if len(infos) == 1:
        return infos[0]
    return {key: [info.get(key) for info in infos] for key in infos[0]}


def refinement_seed(base: int, index: int) -> int:
    """The seed of refinement repeat ``index`` (refine.seeds): the configured seed itself for the first, so a
    one-seed run is unchanged, and derived ones after it (never base + k: batch k's noise uses base + 1 + k)."""
    return base if index == 0 else derive_seed(base, "refinement-seed", str(index))


class DivergenceAt(Exception):
    """``seed_index``: which refinement seed (0 .. refine.seeds - 1) diverged, not the seed's value."""

    def __init__(self, step: int, reason: str, seed_index: int = 0):
        super().__init__(f"diverged at step {step}: {reason}")
        self.step, self.reason, self.seed_index = step, reason, seed_index


class RefinementRun:
    """One refinement of every latent batch, for every refinement seed, into one snapshots file; raises
    DivergenceAt at the first step where an iterate is non-finite or a kept sample leaves the sane range
    (``refine.divergence_bound`` times the largest absolute value of all base samples, so the verdict does not
    depend on the batch size). Seed s draws its latents from s and batch k its noise from s + 1 + k. Reasons
    hold no '|': they are table cells."""

    def __init__(self, modality, generator, logit, prior, dim, common, storage, device, name):
        self.modality = modality  # the suite's: how a batch of samples is stored (to_storage)
        self.generator, self.logit, self.prior, self.dim = generator, logit, prior, dim
        self.common, self.storage, self.device, self.name = common, storage, device, name

    def write_until_diverged(self, out: str, method: MethodParams, progress: bool,
                             model_file: str) -> tuple[list[dict], dict | None]:
        """``write``, and after a divergence again, cut to the last kept step before it: (the seeds' records,
        {'step', 'reason', 'kept_until_step', 'seed_index'} or None)."""
        return self.until_diverged(lambda m: self.write(out, m, progress), method, model_file)

    def until_diverged(self, attempt, method: MethodParams, model_file: str) -> tuple[object, dict | None]:
        """``attempt(method)``, and after a divergence again with ``method`` cut to the last kept step before it:
        (what the last attempt returned, the divergence record or None). ``model_file`` names the networks in
        the message of a divergence at step 0 (the Python API runs its in-memory batches through this too)."""
        diverged = None
        while True:
            try:
                seeds = attempt(method)
                break
            except DivergenceAt as exc:
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
                    raise ValueError(f"{self.name}: {exc.reason} at step {exc.step}") from None
                method, last = shorter
                diverged = {"step": exc.step, "reason": exc.reason, "kept_until_step": last,
                            "seed_index": exc.seed_index}
                log(f"{self.name}: diverged at step {exc.step} ({exc.reason}, refinement seed "
                    f"#{exc.seed_index}); keeping the run up to step {last}")
        return seeds, diverged

    def write(self, out: str, method: MethodParams, progress: bool) -> list[dict]:
        """Per refinement seed: {'seed', 'latents_sha256', 'info' (per batch), 'wall_s', 'cpu_s'}."""
        records = []
        with write_snapshots(out) as writer:
            for index in range(self.common.get("seeds", 1)):
                seed = refinement_seed(self.common["seed"], index)
                z0 = sample_latents(self.prior, self.common["n_samples"], self.dim, seed)
                with measured() as cost:
                    infos = self.run_seed(writer.for_seed(index), method, z0, seed, index, progress)
                records.append({"seed": seed, "latents_sha256": sha256_bytes(z0.numpy().tobytes()),
                                "info": merge_info(infos), **cost})
        return records

    def run_seed(self, writer, method: MethodParams, z0: torch.Tensor, seed: int, index: int,
                 progress: bool) -> list[dict]:
        """Every batch of the latents ``z0`` (CPU) of refinement seed ``seed`` (repeat ``index``) -> each batch's
        info. ``writer`` takes ``add_batch({step: stored batch})`` per batch and ``finish(latents=,
        final_latents=)`` once (snapshots.SnapshotWriter, or the Python API's in-memory one)."""
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
                raise DivergenceAt(exc.step, "non-finite iterates", index) from None
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
                raise DivergenceAt(step, "non-finite samples", index)
        return {step: float(x.abs().max()) for step, x in snapshots.items()}

    def _check_range(self, peaks: list[dict[int, float]], index: int) -> None:
        scale = max(p[0] for p in peaks)
        bound = float(self.common["divergence_bound"]) * max(scale, 1e-12)
        for step in sorted(peaks[0]):
            peak = max(p[step] for p in peaks)
            if peak > bound:
                raise DivergenceAt(step, f"largest absolute value {peak:.3g}, beyond refine.divergence_bound "
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
