"""Atomic writes, hashing and small JSON helpers. Every output of the pipeline goes through here, so a
killed job never leaves a half-written file under its final name."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the same folder; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """JSON has no NaN or infinity: such numbers are written as null, so every file stays valid JSON."""
    text = json.dumps(_finite(obj), indent=2, sort_keys=True, default=_json_default, allow_nan=False)
    write_text(path, text + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """The JSON in ``path``; an unreadable file raises CorruptFileError naming it."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptFileError(path, f"not valid JSON ({exc})") from None


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:  # numpy / torch scalars
        return _finite(obj.item())
    return obj


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def torch_save(obj: Any, path: str | os.PathLike) -> None:
    import torch

    # Through a file handle: given a path, torch names the zip's root folder after the (random) temp file, so
    # two identical saves would differ in bytes.
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)


def savez(path: str | os.PathLike, **arrays: Any) -> None:
    import numpy as np

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:  # a file handle stops numpy from appending '.npz' to the temp name
            np.savez(fh, **arrays)


# ``numpy.savez`` stamps every member with the time of writing, so the same arrays written twice hash
# differently; savez_stable dates each member with this fixed date instead (data files whose hash repeats)
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold


def savez_stable(path: str | os.PathLike, **arrays) -> None:
    """Write ``arrays`` as an uncompressed .npz (what ``np.load`` reads) atomically, each member dated
    _FIXED_DATE. Object arrays are refused, as ``np.load(..., allow_pickle=False)`` would refuse them."""
    import zipfile

    import numpy as np

    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, value in arrays.items():
            value = np.asanyarray(value)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_DATE)
            info.external_attr = 0o644 << 16  # rw-r--r--, fixed too
            with archive.open(info, "w", force_zip64=True) as member:  # zip64 as numpy: arrays over 2 GB
                np.lib.format.write_array(member, value, allow_pickle=False)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sidecar_path(output: str | os.PathLike, suffix: str) -> Path:
    """A file that describes ``output``, right next to it: ``model.pt`` -> ``model<suffix>``."""
    output = Path(output)
    return output.with_name(output.stem + suffix)


def config_path_for(output: str | os.PathLike) -> Path:
    """Where the resolved config of a job that wrote ``output`` lives: right next to it."""
    return sidecar_path(output, ".config.json")


def write_resolved_config(output: str | os.PathLike, stage: str, params: dict, **extra: Any) -> None:
    from . import __version__

    write_json(config_path_for(output), {"stage": stage, "dgflow_bench": __version__, "params": params, **extra})


def drop_resume_state(state: str | os.PathLike | None) -> None:
    """A finished job's resume checkpoint is scratch: the final output holds the result, and a leftover state
    file would outlive `snakemake --delete-all-output`."""
    if state and os.path.exists(state):
        os.unlink(state)


def download(url: str, dest: str | os.PathLike, timeout: float = 60.0, block: int = 1 << 22) -> Path:
    """Stream ``url`` to ``dest`` atomically: an interrupted download never leaves a file under ``dest``.
    Network errors propagate (urllib.error.URLError, OSError, TimeoutError): callers turn them into a message
    that names the config key for an offline copy."""
    import urllib.request

    with atomic_path(dest) as tmp:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as fh:
            while chunk := resp.read(block):
                fh.write(chunk)
    return Path(dest)


class CorruptFileError(ValueError):
    """An intermediate that cannot be read or does not match the checksum recorded when it was written."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = Path(path)
        super().__init__(
            f"{path} is damaged: {problem}. Fix: delete it and rerun snakemake; the workflow rebuilds it and "
            "everything made from it.")


def seal(output: str | os.PathLike, provenance: str | None) -> None:
    """Record ``output``'s SHA-256, size and provenance hash in its resolved-config sidecar, so readers can
    tell a damaged file and the workflow can tell a deleted one."""
    sidecar = config_path_for(output)
    record = read_json(sidecar) if sidecar.exists() else {}
    record["output"] = {"file": Path(output).name, "sha256": sha256_file(output), "bytes": os.path.getsize(output)}
    if provenance:
        record["provenance"] = provenance
    write_json(sidecar, record)


def verify_file(path: str | os.PathLike) -> None:
    """Raise CorruptFileError if ``path`` is missing or differs from the checksum its sidecar recorded. Files
    without a sealed sidecar (made outside the workflow) are only checked for existence."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    sidecar = config_path_for(path)
    if not sidecar.exists():
        return
    record = read_json(sidecar)
    recorded = record.get("output") if isinstance(record, dict) else None
    if not isinstance(recorded, dict) or recorded.get("file") != path.name:
        return
    size = path.stat().st_size
    if recorded.get("bytes") is not None and size != recorded["bytes"]:
        raise CorruptFileError(path, f"{size} bytes where {recorded['bytes']} were written ({sidecar.name})")
    if recorded.get("sha256") and sha256_file(path) != recorded["sha256"]:
        raise CorruptFileError(path, f"its SHA-256 differs from the one recorded in {sidecar.name}")


def derive_seed(base: int, *names: str) -> int:
    """A stable per-job seed: the same names always give the same seed, different names differ."""
    digest = hashlib.sha256("/".join([str(base), *names]).encode()).digest()
    return int.from_bytes(digest[:4], "little")
