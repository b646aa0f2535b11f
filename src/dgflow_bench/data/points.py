"""2-D points you bring (``datasets.<name>: {kind: points, path: <file>.npy}``): an (N, 2) array of real or
integer coordinates, split into 'train' and a seeded, disjoint 'heldout' sample (the metrics' reference).

The file is read with ``allow_pickle=False`` (an object array is refused, never unpickled); every row must be
finite. Points are stored as float32, as the built-in 2-D datasets; the data manifest holds the SHA-256 of the
array read (dtype, shape, bytes), never the path."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from .image_folder import BroughtDataError, heldout_count, heldout_indices


def _header(path: Path, key: str) -> tuple[tuple, np.dtype]:
    """(shape, dtype) from the .npy header alone."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read(fh)
    except (ValueError, OSError) as exc:
        raise BroughtDataError(f"{key} = {str(path)!r} is not a readable .npy file ({exc}); write it with "
                               "numpy.save(path, points)") from None
    return shape, dtype


def check_points(path: str | Path, key: str, *, heldout_size: int | None = None) -> dict:
    """The plan-time check of a points block (the header only): {'n_points'}, or a BroughtDataError /
    FileNotFoundError naming ``key`` (datasets.<name>.path) and the fix."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{key} = {str(path)!r}: no such file; point it at an .npy file of shape (N, 2)")
    if path.suffix.lower() != ".npy":
        raise BroughtDataError(f"{key} = {str(path)!r} is not an .npy file; save the points with "
                               "numpy.save(path, points) as an (N, 2) array")
    shape, dtype = _header(path, key)
    if dtype.hasobject:
        raise BroughtDataError(f"{key} = {str(path)!r} holds an object array (pickled Python objects, never "
                               "loaded); save the points as a float array of shape (N, 2)")
    if dtype.kind not in "fiu":
        raise BroughtDataError(f"{key} = {str(path)!r} holds {dtype} values; save the points as a float array of "
                               "shape (N, 2)")
    if len(shape) != 2 or shape[1] != 2:
        raise BroughtDataError(f"{key} = {str(path)!r} holds an array of shape {tuple(shape)}; the points must be "
                               "one (N, 2) array, a row per point")
    heldout_count(int(shape[0]), heldout_size, key)
    return {"n_points": int(shape[0])}


def read_points(path: str | Path, key: str) -> tuple[np.ndarray, str]:
    """(float32 (N, 2) points, SHA-256 of the array as read) of a file that passed check_points; NaN or
    infinite rows are refused."""
    path = Path(path)
    with open(path, "rb") as fh:
        raw = np.load(fh, allow_pickle=False)
    bad = np.flatnonzero(~np.isfinite(raw.astype(np.float64)).all(axis=1))
    if len(bad):
        raise BroughtDataError(f"{key} = {str(path)!r}: {len(bad)} of {len(raw)} rows hold NaN or infinite values "
                               f"(first: row {bad[0]}); drop or fix those rows")
    digest = hashlib.sha256(f"{raw.dtype.str};{raw.shape};".encode())
    digest.update(np.ascontiguousarray(raw).tobytes())
    return raw.astype(np.float32), digest.hexdigest()


def split_points(points: np.ndarray, heldout: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, heldout, heldout indices): ``heldout`` rows drawn with
    ``np.random.default_rng(seed).choice(N, heldout, replace=False)``, sorted, and removed from train."""
    idx = heldout_indices(len(points), heldout, seed)
    return np.delete(points, idx, axis=0), points[idx], idx


def write_points_dataset(name: str, params: dict, seed: int, out: str) -> dict:
    """The data stage of ``datasets.<name>: {kind: points, ...}``: 'train', 'heldout', 'heldout_indices' and
    'manifest' (JSON; ``kind: points`` tells the 2-D metrics these points have no known modes) in ``out``,
    written with fixed zip dates; returns the manifest."""
    import json

    from ..io import savez_stable

    key = f"datasets.{name}.path"
    check_points(params["path"], key, heldout_size=params["heldout_size"])  # params: the validated block
    points, content = read_points(params["path"], key)
    count = heldout_count(len(points), params["heldout_size"], key)
    train, heldout, idx = split_points(points, count, seed)
    manifest = {"dataset": name, "kind": "points", "content_sha256": content, "n_points": int(len(points)),
                "n_train": int(len(train)), "n_heldout": count, "layout": "float32 (N, 2)",
                "heldout": f"numpy.random.default_rng(seed).choice(N, {count}, replace=False), sorted; removed "
                           "from train", "seed": int(seed), "numpy": np.__version__}
    savez_stable(out, train=train, heldout=heldout, heldout_indices=idx,
                 manifest=np.array(json.dumps(manifest, sort_keys=True)))
    return manifest
