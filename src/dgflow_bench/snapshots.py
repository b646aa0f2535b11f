"""The refine stage's output: every snapshot of every sample, written batch by batch so that memory does not
grow with the number of samples, and read back batch by batch by the metrics.

The file is an uncompressed zip of ``.npy`` members (``np.load`` opens it like any ``.npz``):

- ``steps``        int64 (S,)   the refinement steps that were kept
- ``batch_sizes``  int64 (B,)   samples per shard, in latent order
- ``latents``      (N, dim)     the shared initial latents z0
- ``final_latents`` (N, dim)    the latents after the last step (only methods that move latents write it)
- ``s<step>/b<k>`` one shard:   the samples of batch k at that step (uint8 images, float32 points, ...)
- ``r<r>/...``      the same members for refinement seed r >= 1 (``refine.seeds``: the run repeated from other
  latents and noise); the unprefixed members are seed 0, so a one-seed file is what it always was
- ``seed_indices`` int64 (R,)   the file's index of its refinement seeds, 0 .. R-1, written last: readers
  take the seed axis from it, never from member names

Members are streamed into the zip (``zipfile`` writes each as it comes) under a temporary name that is
renamed onto the final path only when the writer closes cleanly, so a killed job leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np

from .io import CorruptFileError, atomic_path

__all__ = ["SnapshotWriter", "Snapshots", "open_snapshots", "write_snapshots"]


def _shard_name(step: int, index: int) -> str:
    return f"s{int(step)}/b{int(index):05d}"


def _prefix(seed_index: int) -> str:
    return "" if seed_index == 0 else f"r{int(seed_index)}/"


_SEED_INDEX = "seed_indices"


class SnapshotWriter:
    def __init__(self, archive: zipfile.ZipFile, seed_index: int = 0, finished: list[int] | None = None) -> None:
        self._zip, self._prefix, self._seed_index = archive, _prefix(seed_index), int(seed_index)
        self._finished = [] if finished is None else finished  # shared by the writers of one file
        self._steps: list[int] | None = None
        self._batch_sizes: list[int] = []

    def for_seed(self, seed_index: int) -> "SnapshotWriter":
        """The writer of refinement seed ``seed_index`` in the same file (0 is this one)."""
        return self if seed_index == 0 else SnapshotWriter(self._zip, seed_index, self._finished)

    def _put(self, name: str, array: np.ndarray) -> None:
        with self._zip.open(self._prefix + name + ".npy", "w", force_zip64=True) as member:
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)

    def add_batch(self, snapshots: dict[int, np.ndarray]) -> None:
        """One batch of samples at every kept step; every batch must keep the same steps."""
        steps = sorted(int(s) for s in snapshots)
        if self._steps is None:
            self._steps = steps
        elif steps != self._steps:
            raise ValueError(f"batch {len(self._batch_sizes)} kept steps {steps}, earlier batches {self._steps}")
        sizes = {len(snapshots[s]) for s in snapshots}
        if len(sizes) != 1:
            raise ValueError(f"snapshots of one batch differ in size: {sorted(sizes)}")
        index = len(self._batch_sizes)
        for step in steps:
            self._put(_shard_name(step, index), snapshots[step])
        self._batch_sizes.append(sizes.pop())

    def finish(self, latents: np.ndarray, final_latents: np.ndarray | None = None) -> None:
        if self._steps is None:
            raise ValueError("no batch was written")
        for name, array in (("latents", latents), ("final_latents", final_latents)):
            if array is not None and len(array) != sum(self._batch_sizes):
                raise ValueError(f"{len(array)} {name} for {sum(self._batch_sizes)} samples")
        self._put("steps", np.asarray(self._steps, dtype=np.int64))
        self._put("batch_sizes", np.asarray(self._batch_sizes, dtype=np.int64))
        if final_latents is not None:
            self._put("final_latents", final_latents)
        self._put("latents", latents)  # last: its presence marks a finished seed
        self._finished.append(self._seed_index)

    def write_index(self) -> None:
        """The file's seed index (written once, after every seed finished)."""
        if sorted(self._finished) != list(range(len(self._finished))):
            raise ValueError(f"refinement seeds {sorted(self._finished)} finished: not 0 .. R-1, one each")
        self._put(_SEED_INDEX, np.arange(len(self._finished), dtype=np.int64))


@contextlib.contextmanager
def write_snapshots(path: str | Path) -> Iterator[SnapshotWriter]:
    """``with write_snapshots(out) as w: w.add_batch(...); ...; w.finish(latents)``; atomic."""
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            writer = SnapshotWriter(archive)
            yield writer
            if "latents.npy" not in archive.namelist():
                raise ValueError("SnapshotWriter.finish(latents) was not called")
            writer.write_index()


class Snapshots:
    """Read access to one refine output (refinement seed 0; ``for_seed(r)`` reads seed r); each shard is loaded
    only when asked for."""

    def __init__(self, npz, seed_index: int = 0) -> None:
        self._npz, self._prefix = npz, _prefix(seed_index)
        self.steps: list[int] = [int(s) for s in npz[self._prefix + "steps"]]
        self.batch_sizes: list[int] = [int(n) for n in npz[self._prefix + "batch_sizes"]]
        self.n_samples = int(sum(self.batch_sizes))
        self.n_seeds = _seed_count(npz)

    def for_seed(self, seed_index: int) -> "Snapshots":
        if not 0 <= seed_index < self.n_seeds:
            raise KeyError(f"no refinement seed {seed_index}: the file holds {self.n_seeds}")
        return self if seed_index == 0 else Snapshots(self._npz, seed_index)

    @property
    def latents(self) -> np.ndarray:
        return self._npz[self._prefix + "latents"]

    @property
    def final_latents(self) -> np.ndarray | None:
        """The latents after the last step, or None for a method that does not move latents."""
        name = self._prefix + "final_latents"
        return self._npz[name] if name in self._npz.files else None

    @property
    def final_step(self) -> int:
        return self.steps[-1]

    def _check_step(self, step: int) -> int:
        if int(step) not in self.steps:
            raise KeyError(f"no snapshot at step {step}; kept steps: {self.steps}")
        return int(step)

    def batches(self, step: int) -> Iterator[np.ndarray]:
        """The samples at ``step``, one shard at a time, in latent order."""
        step = self._check_step(step)
        for index in range(len(self.batch_sizes)):
            yield self._npz[self._prefix + _shard_name(step, index)]

    def read(self, step: int, limit: int | None = None) -> np.ndarray:
        """The first ``limit`` samples (all if None) at ``step`` as one array."""
        limit = self.n_samples if limit is None else min(int(limit), self.n_samples)
        parts, have = [], 0
        for shard in self.batches(step):
            if have >= limit:
                break
            parts.append(shard[:limit - have])
            have += len(parts[-1])
        return np.concatenate(parts)


def _seed_count(npz) -> int:
    """R, from the file's seed index. A file written before the index holds seeds 0, 1, ... for as long as
    their completion markers exist (read so, not renamed: such files stay readable)."""
    if _SEED_INDEX in npz.files:
        return len(npz[_SEED_INDEX])
    count = 1
    while f"{_prefix(count)}latents" in npz.files:
        count += 1
    return count


@contextlib.contextmanager
def open_snapshots(path: str | Path) -> Iterator[Snapshots]:
    """Read access to a refine output; an unreadable file raises CorruptFileError naming it."""
    try:
        npz = np.load(path, allow_pickle=False)
        snapshots = Snapshots(npz)
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError) as exc:
        raise CorruptFileError(path, f"not a complete snapshots file ({type(exc).__name__}: {exc})") from None
    with npz:
        yield snapshots
