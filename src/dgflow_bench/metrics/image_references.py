"""Which real images an image protocol compares with, read from the data stage's output and the dataset's row
(data/image_rows.py), never from its name.

- 'clean': the stored uint8 array named by ``evaluate.fid_reference`` ('train' or 'heldout'), as stored (pooled
  / resized and rounded by the data stage where the row says so).
- 'dgflow-legacy' (docs/method.md §5): the row's legacy reference set. One at the stored size ('resize':
  'none', e.g. CIFAR10's 60,000 train + test images, whatever split the model trained on) is read from the
  stored arrays; one brought from the native size in float (STL10's 100,000 unlabeled images: 2x2 mean for
  48 px, bilinear for 32 px, never rounded) is read from the native originals, whose MD5s are checked against
  the data stage's manifest first.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..data.image_readers import file_record
from ..data.image_rows import ImageDataset, ReferenceSet, image_dataset

_LEGACY = "dgflow-legacy"


@dataclass(frozen=True)
class ReferenceImages:
    dataset: str  # as the reference manifest names it
    split: str
    n_images: int
    resolution: int
    resize: str  # how the images of ``batches`` reach ``resolution`` (done by reference_stats, in float)
    batches: Callable[[int], Iterator[np.ndarray]]  # batch size -> uint8 (N, 3, H, W) batches


def _array_batches(data_file: str, names: tuple[str, ...]) -> Callable[[int], Iterator[np.ndarray]]:
    def batches(size: int) -> Iterator[np.ndarray]:
        with np.load(data_file, allow_pickle=False) as data:
            for name in names:
                images = data[name]
                for start in range(0, len(images), size):
                    yield np.ascontiguousarray(images[start:start + size])
    return batches


def _clean(data_file: str, row: ImageDataset, manifest: dict, which: str, arrays: dict) -> ReferenceImages:
    if which == "heldout":
        split = row.heldout_split or "heldout"
    else:
        split = row.train_split_name(manifest["splits"])
    # the arrays are already at the generator's resolution (rounded by the data stage): read as they are
    dataset = manifest["source"] if manifest["resize"] == "none" else manifest["dataset"]
    return ReferenceImages(dataset, split, arrays[which][0], arrays[which][-1], "none",
                           _array_batches(data_file, (which,)))


def _legacy_stored(data_file: str, row: ImageDataset, ref: ReferenceSet, manifest: dict,
                   arrays: dict) -> ReferenceImages:
    """A reference at the stored size, from the stored arrays: 'train' alone or with 'heldout' (its split)."""
    stored = tuple(manifest["splits"])
    if stored == ref.splits:
        names = ("train",)
    elif (*stored, row.heldout_split) == ref.splits:
        names = ("train", "heldout")
    else:
        options = [list(ref.splits)] + ([list(ref.splits[:-1])] if ref.splits[-1] == row.heldout_split else [])
        raise ValueError(f"the dgflow-legacy {manifest['source']} reference is {' + '.join(ref.splits)}; "
                         f"datasets.{manifest['dataset']}.splits {manifest['splits']} cannot give it: use "
                         + " or ".join(map(str, options)))
    return ReferenceImages(manifest["source"], ref.split, sum(arrays[n][0] for n in names),
                           int(manifest["resolution"]), "none", _array_batches(data_file, names))


def _legacy_native(data_file: str, row: ImageDataset, ref: ReferenceSet, manifest: dict) -> ReferenceImages:
    """A reference resized in float from the native originals the data stage read (their MD5s checked)."""
    with np.load(data_file, allow_pickle=False) as data:
        folder = Path(str(data["source_folder"])) if "source_folder" in data else None
    if folder is None:
        raise ValueError(f"{data_file} predates the legacy protocol (no source_folder): delete it and rerun")
    archive = row.archive
    files = [f for split in ref.splits for f in archive.split_files[split]]
    records = {r["name"]: r for r in manifest["files"]}
    missing = (f"the dgflow-legacy {archive.source} reference is resized from the {archive.native_size} px "
               f"originals, but {', '.join(str(folder / f) for f in files)} is missing or differs from the file the "
               f"data stage read (MD5 {', '.join(records[f]['md5'] for f in files if f in records)}); restore it "
               f"(config key datasets.{manifest['dataset']}.root)")
    if not all((folder / f).is_file() and f in records for f in files):
        raise FileNotFoundError(missing)
    n_images = sum(archive.count(folder, split) for split in ref.splits)

    def batches(size: int) -> Iterator[np.ndarray]:
        # only read when statistics are computed, not on a cache hit
        if any(file_record(folder / f)["md5"] != records[f]["md5"] for f in files):
            raise FileNotFoundError(missing)
        for split in ref.splits:  # native size: reference_stats resizes per the manifest
            for chunk, _ in archive.chunks(folder, split, size):
                for start in range(0, len(chunk), size):
                    part = chunk[start:start + size]  # a reader's memmap is read-only: copied then
                    yield part if part.flags.writeable and part.flags.c_contiguous else np.array(part)

    return ReferenceImages(archive.source, ref.split, n_images, int(manifest["resolution"]), ref.resize, batches)


def reference_images(data_file: str, protocol: str, which: str) -> ReferenceImages:
    """The real images of ``protocol`` for the data stage's output ``data_file``."""
    with np.load(data_file, allow_pickle=False) as data:
        manifest = json.loads(str(data["manifest"]))
        arrays = {name: (int(data[name].shape[0]), int(data[name].shape[-1])) for name in ("train", "heldout")}
    row = image_dataset(manifest["dataset"])
    if protocol == "clean":
        return _clean(data_file, row, manifest, which, arrays)
    if protocol != _LEGACY:
        raise ValueError(f"unknown image protocol {protocol!r}; use 'clean' or 'dgflow-legacy'")
    if which != "train":
        raise ValueError("evaluate.image_protocol 'dgflow-legacy' fixes its own reference images; "
                         "set evaluate.fid_reference: train")
    ref = row.references.get(_LEGACY)
    if ref is None:
        raise ValueError(f"image dataset {manifest['dataset']!r} has no dgflow-legacy reference in its row; use "
                         "evaluate.image_protocol: clean")
    if ref.resize == "none":
        return _legacy_stored(data_file, row, ref, manifest, arrays)
    return _legacy_native(data_file, row, ref, manifest)


def data_key(data_file: str) -> str:
    """A short hash of the data stage's manifest: reference statistics of other data are never reused."""
    with np.load(data_file, allow_pickle=False) as data:
        return hashlib.sha256(str(data["manifest"]).encode()).hexdigest()[:16]
