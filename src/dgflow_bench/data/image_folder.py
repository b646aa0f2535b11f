"""Images you bring (``datasets.<name>: {kind: image-folder, path: ...}``): a folder of PNG / JPEG files or one
.npz array, read into the uint8 (N, 3, R, R) RGB arrays every image dataset stores (data/image_rows.py).

The rules, so the same images always give the same bytes:
- files: the folder's own *.png / *.jpg / *.jpeg (any case; hidden files and sub-folders skipped), in sorted
  file-name order (Python's code-point order, never the file system's);
- colour: PIL's ``convert('RGB')`` (grey replicated to R, G, B; alpha dropped, not composited; palette looked
  up); 16-bit and float modes are refused; EXIF orientation is not applied (pixels as stored). An .npz array
  follows the same rule: 1 channel replicated, a 4th channel dropped;
- shape: a non-square image is centre-cropped to its shorter side (offsets rounded down), then brought to the
  resolution with the image rows' own kernels ('bilinear' or 'avgpool2', data/image_readers.py);
- content: a SHA-256 over every image's decoded pixels (an .npz: its array's dtype, shape and bytes), in
  order: the data manifest holds it and never the path, so a moved folder keeps its identity (and its cached
  FID statistics) and one changed pixel does not.
Plan-time checks (``check_images``) read only headers and file names: no torch here.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from .image_readers import CHUNK_IMAGES, avg_pool2_uint8, bilinear_uint8

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# PIL modes with a stated 8-bit RGB conversion (convert('RGB')); 16-bit ('I;16', 'I') and float ('F') are not
RGB_CONVERTIBLE = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr")
CHANNELS = (1, 3, 4)  # grey, RGB, RGBA
COLOUR_RULE = "PIL convert('RGB'): grey replicated, alpha dropped, palette looked up; EXIF orientation not applied"
CROP_RULE = "centre crop to the shorter side, offsets (h - s) // 2 and (w - s) // 2"
_PIL_ERRORS = (OSError, ValueError, SyntaxError)  # what PIL raises on a file it cannot decode


class BroughtDataError(ValueError):
    """A user's data file or folder that cannot be read as stated; the message names it and the fix."""


def image_files(folder: Path) -> list[Path]:
    """The folder's image files, sorted by name."""
    return sorted((p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                   and not p.name.startswith(".") and p.is_file()), key=lambda p: p.name)


def _base(key: str) -> str:
    return key.rsplit(".", 1)[0]  # datasets.<name>.path -> datasets.<name>


def _open(path: Path, key: str):
    from PIL import Image

    try:
        image = Image.open(path)
    except _PIL_ERRORS as exc:
        raise BroughtDataError(f"{key}: PIL cannot read {path} ({exc}); remove that file or save it again as "
                               "PNG or JPEG") from None
    if image.mode not in RGB_CONVERTIBLE:
        image.close()
        raise BroughtDataError(f"{key}: {path} has PIL mode {image.mode!r} (16-bit or float pixels), which has no "
                               "stated 8-bit RGB conversion; save it as 8-bit grey or RGB")
    return image


def _square(height: int, width: int) -> int:
    return min(height, width)


def _folder_sizes(files: list[Path], key: str) -> list[tuple[int, int]]:
    sizes = []
    for path in files:
        with _open(path, key) as image:
            sizes.append((image.height, image.width))
    return sizes


def _npz_members(path: Path, key: str) -> dict[str, tuple[tuple, np.dtype]]:
    """{array name: (shape, dtype)} of an .npz, from the headers alone (no array is loaded, nothing unpickled)."""
    members = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                              else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = header(fh)
                members[info.filename[: -len(".npy")]] = (shape, dtype)
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise BroughtDataError(f"{key} = {str(path)!r} is not a readable .npz archive ({exc}); write it with "
                               "numpy.savez(path, images=array)") from None
    return members


def _npz_array_name(path: Path, members: dict, array: str | None, key: str) -> str:
    if not members:
        raise BroughtDataError(f"{key} = {str(path)!r} holds no array; save the images into it with "
                               "numpy.savez(path, images=array)")
    if array is not None:
        if array not in members:
            raise BroughtDataError(f"{_base(key)}.array = {array!r}: {path} holds no such array (it holds "
                                   f"{', '.join(sorted(members))}); name one of those")
        return array
    if len(members) > 1:
        raise BroughtDataError(f"{key} = {str(path)!r} holds several arrays ({', '.join(sorted(members))}); name "
                               f"the one to read with {_base(key)}.array")
    return next(iter(members))


def _npz_layout(path: Path, name: str, shape: tuple, dtype: np.dtype, key: str) -> str:
    """'NHW' (grey), 'NHWC' or 'NCHW': rank 3 is grey; rank 4 is channels-last when the last axis is 1, 3 or 4,
    else channels-first when axis 1 is."""
    if dtype.hasobject:
        raise BroughtDataError(f"{key} = {str(path)!r}: array {name!r} is an object array (pickled Python objects, "
                               "never loaded); save the images as a uint8 or float array")
    if not (dtype == np.uint8 or dtype.kind == "f"):
        raise BroughtDataError(f"{key} = {str(path)!r}: array {name!r} has dtype {dtype}; save the images as uint8 "
                               "(0-255) or float (see float_range)")
    if len(shape) == 3:
        return "NHW"
    if len(shape) == 4 and shape[-1] in CHANNELS:
        return "NHWC"
    if len(shape) == 4 and shape[1] in CHANNELS:
        return "NCHW"
    raise BroughtDataError(f"{key} = {str(path)!r}: array {name!r} has shape {tuple(shape)}; images must be "
                           "(N, H, W) grey, (N, H, W, C) or (N, C, H, W) with C = 1, 3 or 4")


def check_images(path: str | Path, key: str, *, resolution: int | None = None, array: str | None = None,
                 heldout_size: int | None = None) -> dict:
    """The plan-time check of an image-folder block (headers only): {'n_images', 'sizes'} or a
    BroughtDataError / FileNotFoundError naming ``key`` (datasets.<name>.path) and the fix."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{key} = {str(path)!r}: no such file or folder; point it at a folder of PNG / "
                                "JPEG images or at one .npz file")
    if path.is_dir():
        files = image_files(path)
        if not files:
            raise BroughtDataError(f"{key} = {str(path)!r} holds no .png, .jpg or .jpeg file (sub-folders are not "
                                   "read); point it at the folder that holds the images")
        by_side: dict[int, tuple[str, tuple[int, int]]] = {}  # the first file of each square side
        for file, size in zip(files, _folder_sizes(files, key)):
            by_side.setdefault(_square(*size), (file.name, size))
        sizes, where = sorted(size for _, size in by_side.values()), list(by_side.values())
        n = len(files)
    elif path.suffix.lower() == ".npz":
        members = _npz_members(path, key)
        name = _npz_array_name(path, members, array, key)
        shape, dtype = members[name]
        layout = _npz_layout(path, name, shape, dtype, key)
        height, width = (shape[1], shape[2]) if layout in ("NHW", "NHWC") else (shape[2], shape[3])
        sizes, where, n = [(height, width)], [], int(shape[0])
    else:
        raise BroughtDataError(f"{key} = {str(path)!r} is neither a folder nor an .npz file; point it at a folder "
                               "of PNG / JPEG images or at one .npz file")
    if len(where) > 1 and resolution is None:
        (file_a, a), (file_b, b) = where[:2]
        raise BroughtDataError(f"{key} = {str(path)!r}: the images differ in size ({a[0]}x{a[1]} in {file_a}, "
                               f"{b[0]}x{b[1]} in {file_b}); set {_base(key)}.resolution to the size to store "
                               "them at (each is centre-cropped to a square, then resized)")
    heldout_count(n, heldout_size, key)
    return {"n_images": n, "sizes": sizes}


def heldout_count(n: int, heldout_size: int | None, key: str) -> int:
    """The held-out subset's size: ``heldout_size``, or max(2, n // 10) for null; at least 2 (FID statistics
    need two images) and fewer than n."""
    count = max(2, n // 10) if heldout_size is None else int(heldout_size)
    if not 2 <= count < n:
        raise BroughtDataError(f"{_base(key)}.heldout_size: {count} held-out of {n} images; it must be at least 2 "
                               f"and below {n} (add images, or set heldout_size)")
    return count


def heldout_indices(n: int, count: int, seed: int) -> np.ndarray:
    """The held-out rows: ``np.random.default_rng(seed).choice(n, count, replace=False)``, sorted, int64."""
    return np.sort(np.random.default_rng(seed).choice(n, count, replace=False)).astype(np.int64)


def _to_resolution(chw: np.ndarray, resolution: int, resize: str, where: str) -> np.ndarray:
    """uint8 (n, 3, h, w) -> centre-cropped square -> (n, 3, R, R) with the rows' kernels."""
    height, width = chw.shape[-2:]
    side = _square(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = np.ascontiguousarray(chw[:, :, top:top + side, left:left + side])
    if side == resolution:
        return square
    if resize == "avgpool2":
        if side != 2 * resolution:
            raise BroughtDataError(f"resize 'avgpool2' halves {2 * resolution} px images to {resolution} px, but "
                                   f"{where} is {side} px after the centre crop; use resize: bilinear")
        return avg_pool2_uint8(square)
    return bilinear_uint8(square, resolution)


def _read_folder(folder: Path, resolution: int | None, resize: str, key: str):
    files = image_files(folder)
    digest = hashlib.sha256()
    images = None
    for i, path in enumerate(files):
        with _open(path, key) as image:
            try:
                rgb = np.asarray(image.convert("RGB"))  # decodes the whole file: a truncated one fails here
            except _PIL_ERRORS as exc:
                raise BroughtDataError(f"{key}: PIL cannot read {path} ({exc}); remove that file or save it "
                                       "again as PNG or JPEG") from None
        digest.update(f"{rgb.shape[0]}x{rgb.shape[1]};".encode())
        digest.update(rgb.tobytes())
        if resolution is None:
            resolution = _square(*rgb.shape[:2])
        if images is None:
            images = np.empty((len(files), 3, resolution, resolution), dtype=np.uint8)
        images[i] = _to_resolution(rgb.transpose(2, 0, 1)[None], resolution, resize, str(path))[0]
    return images, digest.hexdigest(), {"format": "folder", "files": len(files)}


def _read_npz(path: Path, array: str | None, float_range, resolution: int | None, resize: str, key: str):
    members = _npz_members(path, key)
    name = _npz_array_name(path, members, array, key)
    layout = _npz_layout(path, name, *members[name], key)
    with np.load(path, allow_pickle=False) as data:
        raw = np.ascontiguousarray(data[name])
    digest = hashlib.sha256(f"{raw.dtype.str};{raw.shape};".encode())
    digest.update(raw.tobytes())
    nchw = {"NHW": lambda a: a[:, None], "NHWC": lambda a: a.transpose(0, 3, 1, 2), "NCHW": lambda a: a}[layout](raw)
    if nchw.dtype != np.uint8:
        nchw = _float_to_uint8(nchw, float_range, f"{key} = {str(path)!r}: array {name!r}", _base(key))
    nchw = {1: lambda a: np.repeat(a, 3, axis=1), 3: lambda a: a, 4: lambda a: a[:, :3]}[nchw.shape[1]](nchw)
    if resolution is None:
        resolution = _square(*nchw.shape[-2:])
    images = np.empty((len(nchw), 3, resolution, resolution), dtype=np.uint8)
    for start in range(0, len(nchw), CHUNK_IMAGES):
        images[start:start + CHUNK_IMAGES] = _to_resolution(nchw[start:start + CHUNK_IMAGES], resolution, resize,
                                                            f"{path} [{name}]")
    return images, digest.hexdigest(), {"format": "npz", "array": name, "layout": layout, "dtype": raw.dtype.str,
                                        "float_range": list(float_range) if raw.dtype != np.uint8 else None}


def _float_to_uint8(x: np.ndarray, float_range, what: str, base: str) -> np.ndarray:
    """Float pixels in ``float_range`` -> [0, 255], rounded half to even (the rows' rule)."""
    lo, hi = (float(v) for v in float_range)
    x = x.astype(np.float64)
    bad = int(np.count_nonzero(~np.isfinite(x)))
    if bad:
        raise BroughtDataError(f"{what} holds {bad} NaN or infinite values; replace them before bringing the data")
    seen = (float(x.min()), float(x.max())) if x.size else (lo, hi)
    if seen[0] < lo or seen[1] > hi:
        raise BroughtDataError(f"{what} has values in [{seen[0]:g}, {seen[1]:g}], outside {base}.float_range "
                               f"[{lo:g}, {hi:g}]; set float_range to the range the images use")
    return np.rint((x - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def read_images(path: str | Path, key: str, *, resolution: int | None, resize: str, array: str | None,
                float_range) -> tuple[np.ndarray, str, dict]:
    """(uint8 (N, 3, R, R) RGB in order, content SHA-256, {'format', ...}) of a folder or .npz that passed
    check_images."""
    path = Path(path)
    if path.is_dir():
        return _read_folder(path, resolution, resize, key)
    return _read_npz(path, array, float_range, resolution, resize, key)


def write_image_folder_dataset(name: str, params: dict, seed: int, out: str) -> dict:
    """The data stage of ``datasets.<name>: {kind: image-folder, ...}``: 'train', 'heldout' (a seeded subset,
    kept in 'train' unless heldout_in_train is false), 'heldout_indices' and 'manifest' (JSON) in ``out``,
    written with fixed zip dates (the same images give the same bytes); returns the manifest."""
    import json

    import PIL

    from .image_readers import torch_version
    from .image_rows import RESIZE_NOTES
    from ..io import savez_stable

    key = f"datasets.{name}.path"
    # params: the validated block (schemas/definitions/brought_data.yaml fills every default)
    resolution, resize, array = params["resolution"], params["resize"], params["array"]
    found = check_images(params["path"], key, resolution=resolution, array=array, heldout_size=params["heldout_size"])
    images, content, source = read_images(params["path"], key, resolution=resolution, resize=resize, array=array,
                                          float_range=params["float_range"])
    count = heldout_count(found["n_images"], params["heldout_size"], key)
    idx = heldout_indices(len(images), count, seed)
    in_train = bool(params["heldout_in_train"])
    train = images if in_train else np.delete(images, idx, axis=0)
    manifest = {
        # the data's identity: content, rules and versions, never the path (a moved folder is the same data)
        "dataset": name, "source": name, "kind": "image-folder", **source, "content_sha256": content,
        "n_images": int(len(images)), "splits": ["train"], "resolution": int(images.shape[-1]),
        "resize": RESIZE_NOTES[resize], "crop": CROP_RULE, "colour": COLOUR_RULE, "layout": "uint8 (N, 3, H, W) RGB",
        "n_train": int(len(train)), "n_heldout": count, "heldout_in_train": in_train,
        "heldout": (f"numpy.random.default_rng(seed).choice(N, {count}, replace=False), sorted; "
                    + ("also kept in train" if in_train else "removed from train")),
        "seed": int(seed), "torch": torch_version(), "numpy": np.__version__,
        "pillow": PIL.__version__ if source["format"] == "folder" else None,
    }
    savez_stable(out, train=train, heldout=images[idx], heldout_indices=idx,
                 manifest=np.array(json.dumps(manifest, sort_keys=True)))
    return manifest
