"""Published checkpoints: where they live on the web, their SHA-256, and how to get them offline.

Every file with a known SHA-256 is checked against it whether it was downloaded or taken from a local folder,
so a truncated or foreign file never reaches a table. DOT's image checkpoints have no published hash: the
config may give one (sources.dot-pretrained.image_sha256), and the hash seen is recorded either way."""

from __future__ import annotations

import re
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


def download(url: str, dest: Path, expected_sha256: str | None, timeout: float = 60.0,
             hash_key: str = LOCAL_DIR_KEY) -> Path:
    """Download ``url`` to ``dest`` atomically and verify it (None: no published hash, the caller records the
    hash seen); a failure explains the offline route."""
    try:
        fetch(url, dest, timeout=timeout)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise CheckpointError(
            f"could not download {url} ({exc}). Offline? Download the file elsewhere, put it in a "
            f"folder and set {LOCAL_DIR_KEY} in config.yaml to that folder."
        ) from exc
    if expected_sha256 is None:
        return dest
    try:
        verify_sha256(dest, expected_sha256, hash_key)
    except CheckpointError:
        dest.unlink()  # a wrong file never stays under the name a later run would trust
        raise
    return dest


def fetch_dot_2d(dataset: str, *, local_dir: str | None, url: str, cache_dir: str | Path,
                 sha256: dict[str, str] | None = None) -> dict[str, Path]:
    """Paths of the verified generator and critic npz files for ``dataset``. ``sha256`` ({file name: hash},
    config key sources.dot-pretrained.sha256) replaces the published hash of a file: for a retrained file in
    DOT's format, never needed for DOT's own release."""
    out = {}
    for role, name in dot_2d_filenames(dataset).items():
        expected = {**DOT_2D_SHA256, **(sha256 or {})}[name]
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


# ---- DOT's image DCGANs (SN-DCGAN hinge / non-saturating, WGAN-GP) ----
# DOT's repository does not host these: its train_GAN.py writes them, named by evaluation.save_models
# "{net}_{G|D}_{data}_{mode}_{objective}_{iteration}.npz", and the DGflow release's configs load exactly
# trained_models/DCGAN_{G,D}_{CIFAR,STL48}_{SNGAN,WGAN-GP}_{Hinge,NonSaturating,Wasserstein}_150001.npz.
# No public URL or SHA-256 is known, so none is made up: the hash seen is recorded instead.
IMAGE_FILES_KEY = "sources.dot-pretrained.image_files"
IMAGE_SHA256_KEY = "sources.dot-pretrained.image_sha256"
IMAGE_PATTERN_FIELDS = ("role", "data", "mode", "objective", "iteration")
DOT_IMAGE_DATA = {"cifar10": ("CIFAR", 32), "stl10-48": ("STL48", 48)}  # dataset -> (DOT's --data, px)
DOT_IMAGE_RUNS = {  # model -> DOT's (--mode, --objective)
    "sn-dcgan-hinge": ("SNGAN", "Hinge"),
    "sn-dcgan-ns": ("SNGAN", "NonSaturating"),
    "wgan-gp-dcgan": ("WGAN-GP", "Wasserstein"),
}
WHERE_TO_GET_IMAGE_FILES = (
    "DOT's repository does not host its image checkpoints; DGflow's README (github.com/clear-nus/DGflow) "
    "points to DOT (github.com/AkinoriTanaka-phys/DOT) for them, so ask the authors for the files, or make "
    "them with DOT's train_GAN.py (--net DCGAN --data CIFAR|STL48 --mode SNGAN|WGAN-GP "
    "--objective Hinge|NonSaturating|Wasserstein), which writes files under these names")


def dot_image_filenames(dataset: str, model: str, pattern: str, iteration: int) -> dict[str, str]:
    """{'generator': ..., 'critic': ...} file names of DOT's checkpoints of ``model`` on ``dataset``."""
    if dataset not in DOT_IMAGE_DATA:
        raise CheckpointError(f"DOT trained its DCGANs on {sorted(DOT_IMAGE_DATA)} only, not on {dataset!r}: "
                              f"use source 'trained' for {dataset}")
    if model not in DOT_IMAGE_RUNS:
        raise CheckpointError(f"DOT has no image checkpoint for model {model!r}; it has {sorted(DOT_IMAGE_RUNS)}")
    data, mode, objective = DOT_IMAGE_DATA[dataset][0], *DOT_IMAGE_RUNS[model]
    # <field> rather than {field}: Snakemake would take a {name} in a config value for a wildcard
    unknown = sorted(set(re.findall(r"<(\w*)>", pattern)) - set(IMAGE_PATTERN_FIELDS))
    if unknown:
        raise CheckpointError(f"{IMAGE_FILES_KEY} = {pattern!r} has unknown field(s) {unknown}; its fields are "
                              + ", ".join(f"<{f}>" for f in IMAGE_PATTERN_FIELDS))
    names = {}
    for kind, role in (("generator", "G"), ("critic", "D")):
        values = {"role": role, "data": data, "mode": mode, "objective": objective, "iteration": str(iteration)}
        names[kind] = re.sub(r"<(\w+)>", lambda m: values[m.group(1)], pattern)
    for name in names.values():
        if not name or Path(name).name != name:
            raise CheckpointError(f"{IMAGE_FILES_KEY} = {pattern!r} gives {name!r}, not a plain file name; "
                                  f"the folder is {LOCAL_DIR_KEY}")
    return names


def fetch_dot_images(dataset: str, model: str, *, local_dir: str | None, pattern: str, iteration: int,
                     url: str | None, sha256: dict[str, str], cache_dir: str | Path) -> dict[str, dict]:
    """{'generator' | 'critic': {'path', 'sha256', 'sha256_checked'}}: the file from ``local_dir``, else
    downloaded once from the mirror ``url``; checked against ``sha256[name]`` where the config gives one, and
    the hash seen recorded either way (the caller writes it to the resolved config)."""
    out = {}
    for role, name in dot_image_filenames(dataset, model, pattern, iteration).items():
        expected = sha256[name].lower() if name in sha256 else None
        what = f"the {role} of {model} on {dataset} (name from {IMAGE_FILES_KEY})"
        if local_dir:
            path = Path(local_dir) / name
            if not path.is_file():
                raise CheckpointError(f"{path} not found: {LOCAL_DIR_KEY} = {local_dir!r} lacks {name}, "
                                      f"{what}. {WHERE_TO_GET_IMAGE_FILES}.")
        elif url:
            path = Path(cache_dir) / name
            if not (path.exists() and (expected is None or sha256_file(path) == expected)):
                download(f"{url.rstrip('/')}/{name}", path, expected, hash_key=IMAGE_SHA256_KEY)
        else:
            raise CheckpointError(f"no copy of {name}, {what}: put it in a folder and set {LOCAL_DIR_KEY} to "
                                  f"that folder. {WHERE_TO_GET_IMAGE_FILES}.")
        if expected is not None:
            verify_sha256(path, expected, IMAGE_SHA256_KEY)
        out[role] = {"path": path, "sha256": sha256_file(path), "sha256_checked": expected is not None}
    return out
