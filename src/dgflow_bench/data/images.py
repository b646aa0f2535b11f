"""CIFAR10 and STL10 from their official *binary* distributions, as uint8 (N, 3, H, W) RGB arrays (docs/method.md §4-5).

No pickle anywhere: data from elsewhere is never unpickled, so CIFAR10 is read from cifar-10-binary.tar.gz
(records of 1 label byte + 3,072 channel-major pixels) and STL10 from stl10_binary.tar.gz (unlabeled_X.bin:
3x96x96 per image, each channel stored column-major, hence the (0, 1, 3, 2) transpose of the official reader).

Stored resolutions (every array uint8, so a training set is an exact, hashable file):
- 'cifar10': 32 px as distributed.
- 'stl10-48': 2x2 average pooling of the 96 px images; the mean of 4 uint8 values is k/4 and is rounded half
  to even (x.5 -> nearest even), the same rounding as ``torch.round`` in ``metrics.protocols.quantise_images``.
- 'stl10-32': ``torch.nn.functional.interpolate(mode='bilinear', align_corners=False, antialias=True)`` in
  float64 (``metrics.protocols.resize_images``), rounded half to even, clamped to [0, 255].
The legacy FID protocol keeps resized references as float; build those from the 96 px source, not from these.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ..io import download, savez, write_json

__all__ = [
    "CIFAR10_URL", "CIFAR10_MD5", "CIFAR10_FOLDER", "CIFAR10_SPLIT_FILES",
    "STL10_URL", "STL10_MD5", "STL10_FOLDER", "STL10_UNLABELED_FILE", "STL10_UNLABELED_MD5",
    "DATASETS", "ImageDataError", "ensure_archive", "read_cifar10_binary", "iter_stl10_unlabeled",
    "read_stl10_unlabeled", "avg_pool2_uint8", "bilinear_uint8", "prepare_image_dataset", "file_record",
]

# MD5s as published by the dataset pages / torchvision. Their SHA-256s are not known here and are deliberately
# not made up: the SHA-256 actually seen at download is recorded next to the archive and in the manifest.
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
CIFAR10_FOLDER = "cifar-10-batches-bin"
CIFAR10_SPLIT_FILES = {"train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)), "test": ("test_batch.bin",)}
STL10_URL = "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"
STL10_MD5 = "91f7769df0f17e558f3565bffb0c7dfb"
STL10_FOLDER = "stl10_binary"
STL10_UNLABELED_FILE = "unlabeled_X.bin"
STL10_UNLABELED_MD5 = "5242ba1fed5e4be9e1e742405eb56ca4"  # torchvision; checked only on a full-size file
_STL10_UNLABELED_BYTES = 100_000 * 3 * 96 * 96
_CIFAR10_RECORD = 1 + 3 * 32 * 32
_STL10_IMAGE = 3 * 96 * 96
CHUNK_IMAGES = 2_000  # images resized at a time: ~55 MB of uint8 96 px input, bounded float64 temporaries

# dataset -> (source, stored resolution, resize method written to the manifest)
DATASETS = {
    "cifar10": ("cifar10", 32, "none"),
    "stl10-48": ("stl10", 48, "avgpool2: 2x2 mean of uint8, rounded half to even"),
    "stl10-32": ("stl10", 32, "bilinear: torch interpolate align_corners=False antialias=True, float64, "
                              "rounded half to even"),
}
_SOURCES = {  # source -> (url, md5, extracted folder, files that must exist in it)
    "cifar10": (CIFAR10_URL, CIFAR10_MD5, CIFAR10_FOLDER, sum(CIFAR10_SPLIT_FILES.values(), ())),
    "stl10": (STL10_URL, STL10_MD5, STL10_FOLDER, (STL10_UNLABELED_FILE,)),
}


class ImageDataError(FileNotFoundError):
    """Data missing, incomplete or corrupt; the message says where it looked and which config key to set."""


def _source_for_url(url: str) -> str:
    for source, (known_url, *_) in _SOURCES.items():
        if Path(known_url).name == Path(url).name:
            return source
    raise ValueError(f"{url} is not a known image archive; known: {[s[0] for s in _SOURCES.values()]}")


def _find_folder(root: Path, folder_name: str, required: Sequence[str]) -> Path | None:
    """``root`` itself or ``root/folder_name``, whichever holds every required file."""
    for candidate in (root, root / folder_name):
        if all((candidate / f).is_file() for f in required):
            return candidate
    return None


def ensure_archive(local_path_or_none: str | os.PathLike | None, url: str, download_dir: str | os.PathLike,
                   md5: str | None = None, *, config_key: str | None = None) -> Path:
    """The extracted folder (e.g. .../cifar-10-batches-bin). A local path (the folder or its parent) is used
    as is and the network is never touched; otherwise ``url`` is downloaded into ``download_dir`` once,
    atomically, checked against ``md5`` when given, and extracted with tarfile's 'data' filter."""
    source = _source_for_url(url)
    _, _, folder_name, required = _SOURCES[source]
    key = config_key or f"datasets.{source}.root"
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
            archive.extractall(scratch, filter="data")  # refuses absolute paths, '..' and links out
        if _find_folder(scratch, folder_name, required) != scratch / folder_name:
            raise ImageDataError(f"{tarball} does not hold {folder_name}/ with {', '.join(required)}")
        os.replace(scratch / folder_name, download_dir / folder_name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return download_dir / folder_name


def _records(path: Path, record_bytes: int) -> np.memmap:
    size = path.stat().st_size
    if size == 0 or size % record_bytes:
        raise ImageDataError(f"{path} has {size} bytes, not a whole number of {record_bytes}-byte records: "
                             "truncated or not the binary distribution")
    return np.memmap(path, dtype=np.uint8, mode="r", shape=(size // record_bytes, record_bytes))


def read_cifar10_binary(folder: str | os.PathLike,
                        splits: Sequence[str] = ("train", "test")) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 3, 32, 32) RGB, labels uint8 (N,)), the splits' files concatenated in order."""
    unknown = set(splits) - set(CIFAR10_SPLIT_FILES)
    if unknown:
        raise ValueError(f"unknown CIFAR10 split(s) {sorted(unknown)}; known: {sorted(CIFAR10_SPLIT_FILES)}")
    records = [_records(Path(folder) / name, _CIFAR10_RECORD)
               for split in splits for name in CIFAR10_SPLIT_FILES[split]]
    data = np.concatenate(records) if records else np.empty((0, _CIFAR10_RECORD), np.uint8)
    return data[:, 1:].reshape(-1, 3, 32, 32).copy(), data[:, 0].copy()


def iter_stl10_unlabeled(folder: str | os.PathLike, chunk_images: int = CHUNK_IMAGES) -> Iterator[np.ndarray]:
    """The unlabeled images as uint8 (n <= chunk_images, 3, 96, 96) chunks read from a memmap, so the 2.7 GB
    file is never in memory at once."""
    raw = _records(Path(folder) / STL10_UNLABELED_FILE, _STL10_IMAGE)
    for start in range(0, len(raw), chunk_images):
        chunk = np.asarray(raw[start:start + chunk_images]).reshape(-1, 3, 96, 96)
        yield np.ascontiguousarray(chunk.transpose(0, 1, 3, 2))  # stored column-major per channel


def read_stl10_unlabeled(folder: str | os.PathLike, chunk_images: int = CHUNK_IMAGES) -> np.ndarray:
    """All unlabeled images, uint8 (N, 3, 96, 96) (2.7 GB for the full set), filled chunk by chunk."""
    n = _records(Path(folder) / STL10_UNLABELED_FILE, _STL10_IMAGE).shape[0]
    out = np.empty((n, 3, 96, 96), dtype=np.uint8)
    start = 0
    for chunk in iter_stl10_unlabeled(folder, chunk_images):
        out[start:start + len(chunk)] = chunk
        start += len(chunk)
    return out


def avg_pool2_uint8(images: np.ndarray) -> np.ndarray:
    """2x2 mean of uint8 (N, C, H, W) images, rounded half to even (np.rint) back to uint8. The sum of four
    uint8 values divided by 4 is exact in float64, so the only choice is the tie rule for x.5."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[2] % 2 or images.shape[3] % 2:
        raise ValueError(f"expected uint8 (N, C, H, W) with even H and W, got {images.dtype} {images.shape}")
    total = (images[:, :, 0::2, 0::2].astype(np.uint16) + images[:, :, 1::2, 0::2]
             + images[:, :, 0::2, 1::2] + images[:, :, 1::2, 1::2])
    return np.rint(total / 4.0).astype(np.uint8)


def _torch_version() -> str:
    import torch  # here, not at the top: the plan-time data-root check imports this module, torch costs seconds

    return torch.__version__


def bilinear_uint8(images: np.ndarray, size: int) -> np.ndarray:
    """Antialiased bilinear resize of uint8 (N, 3, H, W) to size x size (the kernel of the metric protocols),
    rounded half to even and clamped to uint8."""
    import torch

    from ..imaging import resize_images

    resized = resize_images(torch.from_numpy(np.ascontiguousarray(images)), "bilinear", size)
    return torch.round(resized).clamp_(0, 255).to(torch.uint8).numpy()


def file_record(path: Path) -> dict:
    """Name, size, MD5 and SHA-256 of a file, as the data manifest records its source files."""
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            md5.update(block)
            sha256.update(block)
    return {"name": path.name, "bytes": path.stat().st_size, "md5": md5.hexdigest(), "sha256": sha256.hexdigest()}


def _archive_hashes(folder: Path, url: str) -> dict | None:
    sidecar = folder.parent / (Path(url).name + ".hashes.json")
    return json.loads(sidecar.read_text()) if sidecar.is_file() else None


def prepare_image_dataset(name: str, root: str | os.PathLike, out_npz: str | os.PathLike,
                          splits: Sequence[str] | None = None, seed: int = 0, *, heldout_size: int = 10_000,
                          heldout_in_train: bool = True, chunk_images: int = CHUNK_IMAGES) -> dict:
    """Write ``out_npz`` (atomically) with 'train' and 'heldout' uint8 (N, 3, H, W), 'heldout_indices' and
    'manifest' (JSON string); return the manifest. ``root`` = the extracted folder or its parent.

    - cifar10: 'train' = the ``splits`` concatenated (default ('train',) = 50k; ('train', 'test') gives the 60k
      legacy FID reference), 'heldout' = the test split (10k), plus 'train_labels' / 'heldout_labels'.
    - stl10-*: ``splits`` must be ('unlabeled',) (the default). 'heldout' = ``heldout_size`` images drawn with
      ``np.random.default_rng(seed).choice(N, heldout_size, replace=False)``, sorted. By default they stay in
      'train' (``heldout_in_train=True``): DGflow's STL10 generators were trained on all 100k unlabeled images
      and the FID reference is all 100k, so 'heldout' is a fixed real subset, not unseen data. Pass False to
      drop them from 'train' for a disjoint split.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown image dataset {name!r}; known: {sorted(DATASETS)}")
    source, resolution, resize = DATASETS[name]
    url, md5, folder_name, _ = _SOURCES[source]
    folder = ensure_archive(root, url, Path(root), md5)  # a local root: never downloads
    arrays: dict[str, np.ndarray] = {}
    if source == "cifar10":
        splits = tuple(splits or ("train",))
        arrays["train"], arrays["train_labels"] = read_cifar10_binary(folder, splits)
        arrays["heldout"], arrays["heldout_labels"] = read_cifar10_binary(folder, ("test",))
        arrays["heldout_indices"] = np.arange(len(arrays["heldout"]), dtype=np.int64)  # rows of the test split
        files = [f for split in dict.fromkeys((*splits, "test")) for f in CIFAR10_SPLIT_FILES[split]]
        heldout_rule = "the official test split (disjoint from the train split)"
    else:
        splits = tuple(splits or ("unlabeled",))
        if splits != ("unlabeled",):
            raise ValueError(f"STL10 datasets are built from the unlabeled split only, got splits={splits}")
        shrink = avg_pool2_uint8 if resolution == 48 else lambda x: bilinear_uint8(x, resolution)
        n = _records(folder / STL10_UNLABELED_FILE, _STL10_IMAGE).shape[0]
        images = np.empty((n, 3, resolution, resolution), dtype=np.uint8)  # filled in place: one copy only
        for start, chunk in zip(range(0, n, chunk_images), iter_stl10_unlabeled(folder, chunk_images)):
            images[start:start + len(chunk)] = shrink(chunk)
        if not 0 < heldout_size < len(images):
            raise ValueError(f"heldout_size={heldout_size} must be in (0, {len(images)})")
        idx = np.sort(np.random.default_rng(seed).choice(len(images), heldout_size, replace=False))
        arrays["heldout"], arrays["heldout_indices"] = images[idx], idx.astype(np.int64)
        arrays["train"] = images if heldout_in_train else np.delete(images, idx, axis=0)
        files = [STL10_UNLABELED_FILE]
        heldout_rule = (f"numpy.random.default_rng(seed).choice(N, {heldout_size}, replace=False), sorted; "
                        + ("also kept in train" if heldout_in_train else "removed from train"))
    file_records = [file_record(folder / f) for f in files]
    for rec in file_records:  # a full-size unlabeled file must be the published one
        if rec["name"] == STL10_UNLABELED_FILE and rec["bytes"] == _STL10_UNLABELED_BYTES \
                and rec["md5"] != STL10_UNLABELED_MD5:
            raise ImageDataError(f"{folder / rec['name']} has MD5 {rec['md5']}, expected {STL10_UNLABELED_MD5}: "
                                 f"corrupt; extract {url} again (config key datasets.{source}.root)")
    manifest = {
        "dataset": name, "source": source, "source_url": url, "source_md5": md5,
        "archive": _archive_hashes(folder, url), "files": file_records, "splits": list(splits),
        "resolution": resolution, "resize": resize, "layout": "uint8 (N, 3, H, W) RGB",
        "n_train": int(len(arrays["train"])), "n_heldout": int(len(arrays["heldout"])),
        "heldout": heldout_rule, "heldout_in_train": bool(heldout_in_train) if source == "stl10" else False,
        "seed": int(seed), "torch": _torch_version(), "numpy": np.__version__,
    }
    # where the originals lie, outside the manifest (a path is not part of the data's identity): the legacy
    # FID protocol resizes STL10's 96 px originals in float (metrics.image_references)
    savez(out_npz, **arrays, manifest=np.array(json.dumps(manifest, sort_keys=True)),
          source_folder=np.array(str(Path(folder).resolve())))
    return manifest
