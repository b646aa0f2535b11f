"""The image datasets as rows: what differs between CIFAR10, STL10 at 48 px and STL10 at 32 px is written
here, once, as data (docs/method.md §4-5), and the data stage (data/images.py), the metric protocols
(metrics/protocols.py) and their reference images (metrics/image_references.py) read the rows, never a
dataset's name. Adding an image dataset is one row: ``suites.images.register_image_dataset(name, row)``.

A row is an ``ImageDataset``: its archive (URL, checksums, extracted folder, reader, native size), how the data
stage brings the native images to the stored resolution, which split is held out, and the reference images
each FID protocol compares with. Stored arrays are uint8 (N, 3, H, W) RGB, so a training set is an exact,
hashable file:
- 'none': as distributed; 'avgpool2': 2x2 mean of uint8, rounded half to even (the mean of 4 uint8 values is
  k/4, so the tie rule is the only choice; the same rounding as ``torch.round``); 'bilinear':
  ``torch.nn.functional.interpolate(mode='bilinear', align_corners=False, antialias=True)`` in float64,
  rounded half to even, clamped to [0, 255].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

from ..registry import DATASETS
from . import image_readers as readers

# resize -> how the data stage's manifest describes it (the manifest is the data file's identity)
RESIZE_NOTES = {
    "none": "none",
    "avgpool2": "avgpool2: 2x2 mean of uint8, rounded half to even",
    "bilinear": "bilinear: torch interpolate align_corners=False antialias=True, float64, rounded half to even",
}


@dataclass(frozen=True)
class ImageArchive:
    """One distributed archive of native-size uint8 images and how its splits are read."""

    source: str  # its name in manifests and in reference (metric) names: 'cifar10', 'stl10'
    url: str  # the default download (a config's datasets.<name>.url may name a mirror)
    folder: str  # the folder the archive extracts to
    split_files: dict[str, tuple[str, ...]]  # split -> its files in that folder
    native_size: int
    count: Callable[[Path, str], int]  # (folder, split) -> images in it
    # (folder, split, chunk size) -> (uint8 (n, 3, native, native), labels or None) chunks, in order
    chunks: Callable[[Path, str, int], Iterator[tuple[np.ndarray, Optional[np.ndarray]]]]
    md5: Optional[str] = None  # the archive's published MD5, checked at download (None: record what is seen)
    sha256: Optional[str] = None  # likewise, where one is published (none is for CIFAR10 / STL10: never made up)
    file_md5: dict[str, tuple[int, str]] = field(default_factory=dict)  # file -> (full size, MD5), checked

    @property
    def files(self) -> tuple[str, ...]:
        """Every file an extracted folder must hold."""
        return tuple(dict.fromkeys(f for files in self.split_files.values() for f in files))

    def config_key(self) -> str:
        return f"datasets.{self.source}.root"


@dataclass(frozen=True)
class ReferenceSet:
    """The real images a FID protocol compares with: ``splits`` of the archive (named ``split``), N, and how
    they reach the generator's resolution ('none': the stored arrays; else from the native images, in float)."""

    split: str
    splits: tuple[str, ...]
    n_images: int
    resize: str


@dataclass(frozen=True)
class ImageDataset:
    """One image dataset the data stage stores (a row of the table)."""

    archive: ImageArchive
    resolution: int  # stored size
    resize: str  # native -> stored, in uint8 (RESIZE_NOTES)
    default_splits: tuple[str, ...]  # the archive splits in 'train' unless datasets.<name>.splits says
    # 'heldout': an archive split (CIFAR10's test split), or None: a seeded subset of 'train' (heldout_size)
    heldout_split: Optional[str] = None
    split_names: dict[tuple[str, ...], str] = field(default_factory=dict)  # reference names of 'train' splits
    references: dict[str, ReferenceSet] = field(default_factory=dict)  # FID protocol -> its reference images

    def train_split_name(self, splits) -> str:
        return self.split_names.get(tuple(splits), "+".join(splits))


CIFAR10 = ImageArchive("cifar10", readers.CIFAR10_URL, readers.CIFAR10_FOLDER, readers.CIFAR10_SPLIT_FILES, 32,
                       readers.cifar10_count, readers.cifar10_chunks, md5=readers.CIFAR10_MD5)
STL10 = ImageArchive("stl10", readers.STL10_URL, readers.STL10_FOLDER, {"unlabeled": (readers.STL10_UNLABELED_FILE,)},
                     96, readers.stl10_count, readers.stl10_chunks, md5=readers.STL10_MD5,
                     file_md5={readers.STL10_UNLABELED_FILE: (readers.STL10_UNLABELED_BYTES,
                                                              readers.STL10_UNLABELED_MD5)})


def _stl10(resolution: int, resize: str) -> ImageDataset:
    # the DGflow STL10 generators were trained on all 100k unlabeled images, the reference of both protocols
    unlabeled = ReferenceSet("unlabeled", ("unlabeled",), 100_000, resize)
    return ImageDataset(STL10, resolution, resize, ("unlabeled",),
                        references={"dgflow-legacy": unlabeled, "clean": unlabeled})


# The built-in rows (suites/images.py registers each with registry.DATASETS).
IMAGE_DATASETS: dict[str, ImageDataset] = {
    "cifar10": ImageDataset(
        CIFAR10, 32, "none", ("train",), heldout_split="test",
        split_names={("train",): "train", ("train", "test"): "trainval"},
        references={"dgflow-legacy": ReferenceSet("trainval", ("train", "test"), 60_000, "none"),
                    "clean": ReferenceSet("train", ("train",), 50_000, "none")}),
    "stl10-48": _stl10(48, "avgpool2"),
    "stl10-32": _stl10(32, "bilinear"),
}


def image_datasets() -> dict[str, ImageDataset]:
    """Every row: the built-in ones and those registered with registry.DATASETS (an extension's), by name."""
    registered = {name: entry.row for name, entry in DATASETS.items()
                  if isinstance(getattr(entry, "row", None), ImageDataset)}
    return {**IMAGE_DATASETS, **registered}


def image_dataset(name: str) -> ImageDataset:
    rows = image_datasets()
    if name not in rows:
        raise ValueError(f"unknown image dataset {name!r}; known: {sorted(rows)} (a new one is a row: "
                         "suites.images.register_image_dataset)")
    return rows[name]


def archive_for_url(url: str) -> ImageArchive:
    """The archive a URL downloads, by its file name (a mirror keeps the name)."""
    archives = {row.archive.source: row.archive for row in image_datasets().values()}
    for archive in archives.values():
        if Path(archive.url).name == Path(url).name:
            return archive
    raise ValueError(f"{url} is not a known image archive; known: {sorted(a.url for a in archives.values())}")


def reference_set(protocol: str, source: str, resolution: int) -> Optional[ReferenceSet]:
    """The reference images ``protocol`` prescribes for an archive's images at ``resolution`` (None: none)."""
    for row in image_datasets().values():
        if row.archive.source == source and row.resolution == int(resolution) and protocol in row.references:
            return row.references[protocol]
    return None
