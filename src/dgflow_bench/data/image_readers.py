"""The readers of the image datasets' distributed files and the uint8 resizers of the data stage; no dataset
knowledge beyond each format (the rows of data/image_rows.py say which dataset uses which).

No pickle anywhere: data from elsewhere is never unpickled, so CIFAR10 is read from cifar-10-binary.tar.gz
(records of 1 label byte + 3,072 channel-major pixels) and STL10 from stl10_binary.tar.gz (unlabeled_X.bin:
3x96x96 per image, each channel stored column-major, hence the (0, 1, 3, 2) transpose of the official reader).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

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
STL10_UNLABELED_BYTES = 100_000 * 3 * 96 * 96
_CIFAR10_RECORD = 1 + 3 * 32 * 32
_STL10_IMAGE = 3 * 96 * 96
CHUNK_IMAGES = 2_000  # images resized at a time: ~55 MB of uint8 96 px input, bounded float64 temporaries


class ImageDataError(FileNotFoundError):
    """Data missing, incomplete or corrupt; the message says where it looked and which config key to set."""


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


def torch_version() -> str:
    import torch  # here, not at the top: the plan-time data-root check imports this module, torch costs seconds

    return torch.__version__


def bilinear_uint8(images: np.ndarray, size: int) -> np.ndarray:
    """Antialiased bilinear resize of uint8 (N, 3, H, W) to size x size (the kernel of the metric protocols),
    rounded half to even and clamped to uint8."""
    import torch

    from ..image_kernels import resize_images

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


# --- the readers as the rows call them: (folder, split) -> count; (folder, split, chunk) -> (images, labels) ---

def cifar10_count(folder: Path, split: str) -> int:
    return sum(_records(Path(folder) / name, _CIFAR10_RECORD).shape[0] for name in CIFAR10_SPLIT_FILES[split])


def cifar10_chunks(folder: Path, split: str, chunk_images: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One split at a time (50k CIFAR10 images are 150 MB: read whole, labels kept)."""
    yield read_cifar10_binary(folder, (split,))


def stl10_count(folder: Path, split: str) -> int:
    return int(_records(Path(folder) / STL10_UNLABELED_FILE, _STL10_IMAGE).shape[0])


def stl10_chunks(folder: Path, split: str, chunk_images: int) -> Iterator[tuple[np.ndarray, None]]:
    for chunk in iter_stl10_unlabeled(folder, chunk_images):
        yield chunk, None
