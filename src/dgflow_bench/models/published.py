"""Published checkpoints: where they live on the web, their SHA-256, and how to get them offline.

Every file is checked against its SHA-256 whether it was downloaded or taken from a local folder, so a
truncated or foreign file never reaches a table."""

from __future__ import annotations

import urllib.error
from pathlib import Path

from ..io import download as fetch
from ..io import sha256_file
from .chainer_npz import CheckpointError

DOT_2D_URL = "https://github.com/AkinoriTanaka-phys/DOT/raw/master/trained_models"
DOT_2D_SHA256 = {
    "D_25gaussians_WGAN-GP.npz": "b56f4ffba097acbf43504e0020dfd5c38c70aac5cd950fc8b808dc8ca2c64fee",
    "D_swissroll_WGAN-GP.npz": "94de2d5d13bd15a4a53fdd6f542670c4aaef2030ff48e859a0885f294c9d1d02",
    "G_25gaussians_WGAN-GP.npz": "c084aefd17f2880814754221a4ff83f1f1d18585ee607ff45bb4b15113151513",
    "G_swissroll_WGAN-GP.npz": "646b6be9e6a41792a8c2444c4fad824d8ed4391060a235daac347404817ff5c1",
}
LOCAL_DIR_KEY = "sources.dot-pretrained.local_dir"


def dot_2d_filenames(dataset: str) -> dict[str, str]:
    names = {"generator": f"G_{dataset}_WGAN-GP.npz", "critic": f"D_{dataset}_WGAN-GP.npz"}
    missing = [n for n in names.values() if n not in DOT_2D_SHA256]
    if missing:
        raise CheckpointError(f"DOT published no 2-D checkpoint for dataset {dataset!r} (no {missing[0]})")
    return names


def verify_sha256(path: Path, expected: str, config_key: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise CheckpointError(
            f"{path} has SHA-256 {actual}, expected {expected}: the file is corrupt or a different "
            f"release. Replace it (config key: {config_key})."
        )


def download(url: str, dest: Path, expected_sha256: str, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` atomically and verify it; a failure explains the offline route."""
    try:
        fetch(url, dest, timeout=timeout)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise CheckpointError(
            f"could not download {url} ({exc}). Offline? Download the file elsewhere, put it in a "
            f"folder and set {LOCAL_DIR_KEY} in config.yaml to that folder."
        ) from exc
    try:
        verify_sha256(dest, expected_sha256, LOCAL_DIR_KEY)
    except CheckpointError:
        dest.unlink()  # a wrong file never stays under the name a later run would trust
        raise
    return dest


def fetch_dot_2d(dataset: str, *, local_dir: str | None, url: str, cache_dir: str | Path) -> dict[str, Path]:
    """Paths of the verified generator and critic npz files for ``dataset``."""
    out = {}
    for role, name in dot_2d_filenames(dataset).items():
        expected = DOT_2D_SHA256[name]
        if local_dir:
            path = Path(local_dir) / name
            if not path.exists():
                raise CheckpointError(f"{path} not found: {LOCAL_DIR_KEY} = {local_dir!r} lacks {name}")
            verify_sha256(path, expected, LOCAL_DIR_KEY)
        else:
            path = Path(cache_dir) / name
            if not (path.exists() and sha256_file(path) == expected):
                download(f"{url.rstrip('/')}/{name}", path, expected)
        out[role] = path
    return out
