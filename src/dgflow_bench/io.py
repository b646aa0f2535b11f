"""Atomic writes, hashing and small JSON helpers. Every output of the pipeline goes through here, so a
killed job never leaves a half-written file under its final name."""

from __future__ import annotations

import contextlib
import hashlib
import json
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
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


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

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def savez(path: str | os.PathLike, **arrays: Any) -> None:
    import numpy as np

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:  # a file handle stops numpy from appending '.npz' to the temp name
            np.savez(fh, **arrays)


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
