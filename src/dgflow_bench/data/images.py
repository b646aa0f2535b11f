"""The data stage of the image suite: an image dataset's row (data/image_rows.py) read into uint8 (N, 3, H, W)
RGB arrays, 'train' and 'heldout', at the row's resolution (docs/method.md §4-5).

The legacy FID protocol keeps resized references as float; build those from the native source
(metrics/image_references.py reads them through the row), not from these arrays.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import hostile_archive
from ..io import download, savez, write_json
from .image_readers import (CHUNK_IMAGES, CIFAR10_FOLDER, CIFAR10_MD5, CIFAR10_SPLIT_FILES,  # noqa: F401
                            CIFAR10_URL, STL10_FOLDER, STL10_MD5, STL10_UNLABELED_FILE, STL10_UNLABELED_MD5,
                            STL10_URL, ImageDataError, avg_pool2_uint8, bilinear_uint8, file_record,
                            iter_stl10_unlabeled, read_cifar10_binary, read_stl10_unlabeled, torch_version)
from .image_rows import IMAGE_DATASETS, RESIZE_NOTES, ImageArchive, ImageDataset, archive_for_url, image_dataset

__all__ = [
    "CIFAR10_URL", "CIFAR10_MD5", "CIFAR10_FOLDER", "CIFAR10_SPLIT_FILES",
    "STL10_URL", "STL10_MD5", "STL10_FOLDER", "STL10_UNLABELED_FILE", "STL10_UNLABELED_MD5",
    "IMAGE_DATASETS", "ImageDataError", "ensure_archive", "read_cifar10_binary", "iter_stl10_unlabeled",
    "read_stl10_unlabeled", "avg_pool2_uint8", "bilinear_uint8", "prepare_image_dataset", "file_record",
]


def _find_folder(root: Path, folder_name: str, required: Sequence[str]) -> Path | None:
    """``root`` itself or ``root/folder_name``, whichever holds every required file."""
    for candidate in (root, root / folder_name):
        if all((candidate / f).is_file() for f in required):
            return candidate
    return None


def ensure_archive(local_path_or_none: str | os.PathLike | None, archive: ImageArchive | str,
                   download_dir: str | os.PathLike, md5: str | None = None, *, config_key: str | None = None,
                   url: str | None = None) -> Path:
    """The extracted folder (e.g. .../cifar-10-batches-bin) of ``archive`` (a row's, or its URL). A local path
    (the folder or its parent) is used as is and the network is never touched; otherwise ``url`` (default the
    archive's) is downloaded into ``download_dir`` once, atomically, checked against ``md5`` when given, and
    extracted with tarfile's 'data' filter."""
    if isinstance(archive, str):
        url, archive = url or archive, archive_for_url(archive)
    url = url or archive.url
    folder_name, required = archive.folder, archive.files
    key = config_key or archive.config_key()
    if local_path_or_none:
        root = Path(local_path_or_none)
        found = _find_folder(root, folder_name, required)
        if found is None:
            raise ImageDataError(f"{key} = {str(root)!r}: neither {root} nor {root / folder_name} holds "
                                 f"{', '.join(required)}. Download {url}, extract it (tar xzf) and set {key} "
                                 f"to the extracted {folder_name}/ or its parent.")
        return found
    download_dir = Path(download_dir)
    found = _find_folder(download_dir, folder_name, required)
    if found is not None:
        return found
    tarball = download_dir / Path(url).name
    if not tarball.exists():
        try:
            download(url, tarball)
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise ImageDataError(f"could not download {url} ({exc}); looked for {folder_name}/ in "
                                 f"{download_dir}. Offline? Download and extract it elsewhere and set {key} to "
                                 f"the extracted {folder_name}/ or its parent.") from exc
    seen = file_record(tarball)
    if md5 is not None and seen["md5"] != md5.lower():
        tarball.unlink()  # never leave a corrupt archive under its final name
        raise ImageDataError(f"{url} arrived with MD5 {seen['md5']}, expected {md5}: corrupt or another "
                             f"release (removed it; download again or set {key})")
    # the hashes actually seen, for the manifest (no SHA-256 is published for these archives)
    write_json(tarball.with_name(tarball.name + ".hashes.json"), {"url": url, **seen})
    # extract into a scratch folder and move it in at the end: a killed extraction never looks complete
    scratch = Path(tempfile.mkdtemp(prefix=".extract.", dir=download_dir))
    try:
        with tarfile.open(tarball) as archive:
            try:
                archive.extractall(scratch, filter="data")  # refuses absolute paths, '..' and links out
            except tarfile.FilterError as exc:
                raise ImageDataError(hostile_archive(tarball, exc, key)) from None
        if _find_folder(scratch, folder_name, required) != scratch / folder_name:
            raise ImageDataError(f"{tarball} does not hold {folder_name}/ with {', '.join(required)}")
        os.replace(scratch / folder_name, download_dir / folder_name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return download_dir / folder_name


def _archive_hashes(folder: Path, url: str) -> dict | None:
    sidecar = folder.parent / (Path(url).name + ".hashes.json")
    return json.loads(sidecar.read_text()) if sidecar.is_file() else None


def _shrink(resize: str, resolution: int):
    """native uint8 chunk -> stored uint8 chunk (RESIZE_NOTES)."""
    if resize == "none":
        return lambda x: x
    if resize == "avgpool2":
        return avg_pool2_uint8
    if resize == "bilinear":
        return lambda x: bilinear_uint8(x, resolution)
    raise ValueError(f"unknown resize {resize!r} of an image dataset row; use one of {sorted(RESIZE_NOTES)}")


def _read_splits(row: ImageDataset, folder: Path, splits: Sequence[str],
                 chunk_images: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The splits' images at the row's resolution, concatenated in order (filled in place: one copy only),
    and their labels where the reader has them."""
    archive, shrink = row.archive, _shrink(row.resize, row.resolution)
    n = sum(archive.count(folder, split) for split in splits)
    images = np.empty((n, 3, row.resolution, row.resolution), dtype=np.uint8)
    labels, start = [], 0
    for split in splits:
        for chunk, chunk_labels in archive.chunks(folder, split, chunk_images):
            images[start:start + len(chunk)] = shrink(chunk)
            start += len(chunk)
            labels.append(chunk_labels)
    if start != n:
        raise ImageDataError(f"{folder}: the reader gave {start} images of {list(splits)}, its count {n}")
    has_labels = bool(labels) and all(x is not None for x in labels)
    return images, (np.concatenate(labels) if has_labels else None)


def prepare_image_dataset(name: str, root: str | os.PathLike, out_npz: str | os.PathLike,
                          splits: Sequence[str] | None = None, seed: int = 0, *, heldout_size: int = 10_000,
                          heldout_in_train: bool = True, chunk_images: int = CHUNK_IMAGES,
                          row: ImageDataset | None = None) -> dict:
    """Write ``out_npz`` (atomically) with 'train' and 'heldout' uint8 (N, 3, H, W), 'heldout_indices' and
    'manifest' (JSON string); return the manifest. ``root`` = the extracted folder or its parent; the row of
    ``name`` (data/image_rows.py; ``row`` when given) says the rest.

    - 'train' = the ``splits`` concatenated (default: the row's; CIFAR10 ('train',) = 50k, ('train', 'test')
      the 60k legacy FID reference), with 'train_labels' where the reader has labels.
    - a row with a held-out split (CIFAR10: test): 'heldout' = that split (+ 'heldout_labels').
    - otherwise (STL10): 'heldout' = ``heldout_size`` images drawn with
      ``np.random.default_rng(seed).choice(N, heldout_size, replace=False)``, sorted. By default they stay in
      'train' (``heldout_in_train=True``): DGflow's STL10 generators were trained on all 100k unlabeled images
      and the FID reference is all 100k, so 'heldout' is a fixed real subset, not unseen data. Pass False to
      drop them from 'train' for a disjoint split.
    """
    row = row or image_dataset(name)
    archive = row.archive
    splits = tuple(splits or row.default_splits)
    # a row with a held-out split may add it to 'train' (CIFAR10's 60k); a seeded one reads its own splits only
    allowed = list(archive.split_files) if row.heldout_split else list(row.default_splits)
    if any(s not in allowed for s in splits):
        raise ValueError(f"datasets.{name}.splits {list(splits)}: {name} builds 'train' from {allowed} only")
    folder = ensure_archive(root, archive, Path(root), archive.md5)  # a local root: never downloads
    arrays: dict[str, np.ndarray] = {}
    train, train_labels = _read_splits(row, folder, splits, chunk_images)
    if row.heldout_split is not None:
        arrays["train"] = train
        if train_labels is not None:
            arrays["train_labels"] = train_labels
        heldout, heldout_labels = _read_splits(row, folder, (row.heldout_split,), chunk_images)
        arrays["heldout"] = heldout
        if heldout_labels is not None:
            arrays["heldout_labels"] = heldout_labels
        arrays["heldout_indices"] = np.arange(len(heldout), dtype=np.int64)  # rows of the held-out split
        used = (*splits, row.heldout_split)
        heldout_rule = f"the official {row.heldout_split} split (disjoint from the train split)"
    else:
        if not 0 < heldout_size < len(train):
            raise ValueError(f"heldout_size={heldout_size} must be in (0, {len(train)})")
        idx = np.sort(np.random.default_rng(seed).choice(len(train), heldout_size, replace=False))
        arrays["heldout"], arrays["heldout_indices"] = train[idx], idx.astype(np.int64)
        arrays["train"] = train if heldout_in_train else np.delete(train, idx, axis=0)
        used = splits
        heldout_rule = (f"numpy.random.default_rng(seed).choice(N, {heldout_size}, replace=False), sorted; "
                        + ("also kept in train" if heldout_in_train else "removed from train"))
    files = [f for split in dict.fromkeys(used) for f in archive.split_files[split]]
    file_records = [file_record(folder / f) for f in files]
    for rec in file_records:  # a full-size file must be the published one
        size_md5 = archive.file_md5.get(rec["name"])
        if size_md5 is not None and rec["bytes"] == size_md5[0] and rec["md5"] != size_md5[1]:
            raise ImageDataError(f"{folder / rec['name']} has MD5 {rec['md5']}, expected {size_md5[1]}: corrupt; "
                                 f"extract {archive.url} again (config key {archive.config_key()})")
    manifest = {
        "dataset": name, "source": archive.source, "source_url": archive.url, "source_md5": archive.md5,
        "archive": _archive_hashes(folder, archive.url), "files": file_records, "splits": list(splits),
        "resolution": row.resolution, "resize": RESIZE_NOTES[row.resize], "layout": "uint8 (N, 3, H, W) RGB",
        "n_train": int(len(arrays["train"])), "n_heldout": int(len(arrays["heldout"])),
        "heldout": heldout_rule, "heldout_in_train": bool(heldout_in_train) if row.heldout_split is None else False,
        "seed": int(seed), "torch": torch_version(), "numpy": np.__version__,
    }
    # where the originals lie, outside the manifest (a path is not part of the data's identity): the legacy
    # FID protocol resizes the native images in float (metrics.image_references)
    savez(out_npz, **arrays, manifest=np.array(json.dumps(manifest, sort_keys=True)),
          source_folder=np.array(str(Path(folder).resolve())))
    return manifest
