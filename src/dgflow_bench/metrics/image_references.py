"""Which real images an image protocol compares with, read from the data stage's output.

- 'clean': the stored uint8 array named by ``evaluate.fid_reference`` ('train' or 'heldout'), as stored (STL10
  was pooled / resized and rounded by the data stage).
- 'dgflow-legacy' (docs/method.md §5): CIFAR10 = all 60,000 train + test images, whatever split the model
  trained on; STL10 = all 100,000 unlabeled images brought from 96 px to the generator's resolution in float
  (2x2 mean for 48 px, bilinear for 32 px), never rounded -- so they are read from the 96 px originals, whose
  MD5 is checked against the data stage's manifest first.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..data.images import STL10_UNLABELED_FILE, file_record, iter_stl10_unlabeled


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


def _clean(data_file: str, manifest: dict, which: str, arrays: dict) -> ReferenceImages:
    source = manifest["source"]
    if which == "heldout":
        split = "test" if source == "cifar10" else "heldout"
    elif source == "cifar10":
        split = {("train",): "train", ("train", "test"): "trainval"}.get(tuple(manifest["splits"]),
                                                                      "+".join(manifest["splits"]))
    else:
        split = "+".join(manifest["splits"])
    # the arrays are already at the generator's resolution (rounded by the data stage): read as they are
    dataset = source if manifest["resize"] == "none" else manifest["dataset"]
    return ReferenceImages(dataset, split, arrays[which][0], arrays[which][-1], "none",
                           _array_batches(data_file, (which,)))


def _legacy_cifar10(data_file: str, manifest: dict, arrays: dict) -> ReferenceImages:
    # 'heldout' is always the test split; 'train' holds train (50k) or train + test (60k)
    names = ("train",) if tuple(manifest["splits"]) == ("train", "test") else ("train", "heldout")
    if tuple(manifest["splits"]) not in (("train",), ("train", "test")):
        raise ValueError(f"the dgflow-legacy CIFAR10 reference is train + test; datasets.cifar10.splits "
                         f"{manifest['splits']} cannot give it: use [train] or [train, test]")
    return ReferenceImages("cifar10", "trainval", sum(arrays[n][0] for n in names), 32, "none",
                           _array_batches(data_file, names))


def _legacy_stl10(data_file: str, manifest: dict) -> ReferenceImages:
    with np.load(data_file, allow_pickle=False) as data:
        folder = Path(str(data["source_folder"])) if "source_folder" in data else None
    if folder is None:
        raise ValueError(f"{data_file} predates the legacy protocol (no source_folder): delete it and rerun")
    original = folder / STL10_UNLABELED_FILE
    record = next(r for r in manifest["files"] if r["name"] == STL10_UNLABELED_FILE)
    missing = (f"the dgflow-legacy STL10 reference is resized from the 96 px originals, but {original} is "
               f"missing or differs from the file the data stage read (MD5 {record['md5']}); restore it "
               f"(config key datasets.{manifest['dataset']}.root)")
    if not original.is_file():
        raise FileNotFoundError(missing)
    resolution = int(manifest["resolution"])
    resize = "avgpool2" if resolution == 48 else "bilinear"
    n_images = int(original.stat().st_size // (3 * 96 * 96))

    def batches(size: int) -> Iterator[np.ndarray]:
        if file_record(original)["md5"] != record["md5"]:  # only read when statistics are computed, not on a cache hit
            raise FileNotFoundError(missing)
        yield from iter_stl10_unlabeled(folder, size)  # 96 px: reference_stats resizes per the manifest

    return ReferenceImages("stl10", "unlabeled", n_images, resolution, resize, batches)


def reference_images(data_file: str, protocol: str, which: str) -> ReferenceImages:
    """The real images of ``protocol`` for the data stage's output ``data_file``."""
    with np.load(data_file, allow_pickle=False) as data:
        manifest = json.loads(str(data["manifest"]))
        arrays = {name: (int(data[name].shape[0]), int(data[name].shape[-1])) for name in ("train", "heldout")}
    if protocol == "clean":
        return _clean(data_file, manifest, which, arrays)
    if protocol != "dgflow-legacy":
        raise ValueError(f"unknown image protocol {protocol!r}; use 'clean' or 'dgflow-legacy'")
    if which != "train":
        raise ValueError("evaluate.image_protocol 'dgflow-legacy' fixes its own reference images; "
                         "set evaluate.fid_reference: train")
    if manifest["source"] == "cifar10":
        return _legacy_cifar10(data_file, manifest, arrays)
    return _legacy_stl10(data_file, manifest)


def data_key(data_file: str) -> str:
    """A short hash of the data stage's manifest: reference statistics of other data are never reused."""
    with np.load(data_file, allow_pickle=False) as data:
        return hashlib.sha256(str(data["manifest"]).encode()).hexdigest()[:16]
