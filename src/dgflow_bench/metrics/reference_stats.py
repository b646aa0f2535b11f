"""Reference statistics for FID, keyed by everything that changes them, and metric names that say how a
number was made.

torch-fidelity's own cache key ignores the data and the weights, so we key reference (mu, sigma) ourselves:
a ``ReferenceManifest`` lists dataset, split, N, resolution, resize, quantisation, extractor (name, weights
SHA-256), library (name, version) and protocol. It is stored inside the .npz next to the numbers (and as a
.json beside it for people); loading with a different expected manifest is refused, naming the fields, so
statistics from other weights, another N, another resize or another library version never meet.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from dgflow_bench.io import savez, sha256_file, write_json
from dgflow_bench.metrics.feature_extractors import RANDOM_INIT, is_reference_weights_hash
from dgflow_bench.metrics.frechet import StreamingGaussianStats
from dgflow_bench.metrics.protocols import (QUANTISATIONS, RESIZE_MODES, get_protocol, quantise_images,
                                            reference_spec, resize_images)

__all__ = [
    "ReferenceManifest",
    "ReferenceStats",
    "ReferenceStatsMismatchError",
    "stream_features",
    "image_stats",
    "compute_reference_stats",
    "load_reference_stats",
    "reference_stats_path",
    "load_or_compute_reference_stats",
    "fid_name",
    "is_name",
    "weights_tag",
    "assert_mixable",
]

_LEGACY = "dgflow-legacy"


class ReferenceStatsMismatchError(ValueError):
    def __init__(self, path, differences: dict[str, tuple]):
        self.differences = differences
        lines = "; ".join(f"{k}: stored={v[0]!r} expected={v[1]!r}" for k, v in sorted(differences.items()))
        super().__init__(f"reference statistics {path} were computed under a different manifest "
                         f"(fields {sorted(differences)} differ): {lines}. Recompute them for this protocol.")


@dataclass(frozen=True)
class ReferenceManifest:
    dataset: str
    split: str
    n_images: int
    resolution: int
    resize: str
    quantisation: str
    extractor_name: str
    extractor_weights_sha256: str
    library: str
    library_version: str
    protocol: str
    feature: str = "pool"

    def __post_init__(self):
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, got {self.resize!r}")
        if self.quantisation not in QUANTISATIONS:
            raise ValueError(f"quantisation must be one of {QUANTISATIONS}, got {self.quantisation!r}")
        if int(self.n_images) < 2 or int(self.resolution) < 1:
            raise ValueError(f"n_images >= 2 and resolution >= 1 required, got {self.n_images}, {self.resolution}")

    @classmethod
    def for_extractor(cls, extractor, *, protocol: str, dataset: str, resolution: int, **overrides):
        """Fill the data fields from the protocol's reference spec (when it has one) and the extractor fields
        from the extractor; ``overrides`` (split, n_images, resize, quantisation, feature) win."""
        proto = get_protocol(protocol)
        try:
            spec = reference_spec(protocol, dataset, resolution)
        except KeyError:
            spec = {}
        fields = {"split": None, "n_images": None, "resize": None, "quantisation": proto["quantisation"],
                  "feature": proto["fid_feature"], **spec, **overrides}
        missing = [k for k, v in fields.items() if v is None]
        if missing:
            raise ValueError(f"protocol {protocol!r} has no reference for {dataset} at {resolution} px; "
                             f"give {missing} explicitly")
        return cls(dataset=dataset, resolution=int(resolution), protocol=protocol,
                   extractor_name=extractor.name, extractor_weights_sha256=extractor.weights_sha256,
                   library=extractor.library, library_version=extractor.library_version, **fields)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ReferenceManifest":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown manifest fields {sorted(unknown)}")
        return cls(**d)

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def manifest_key(self, length: int = 16) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:length]

    @property
    def is_reference_weights(self) -> bool:
        return is_reference_weights_hash(self.extractor_weights_sha256)

    def differences(self, other: "ReferenceManifest") -> dict[str, tuple]:
        a, b = self.to_dict(), other.to_dict()
        return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


@dataclass(frozen=True)
class ReferenceStats:
    mu: np.ndarray
    sigma: np.ndarray
    n: int
    manifest: ReferenceManifest


def stream_features(images: Iterable, extractor, *, resize: str = "none", resolution: int | None = None,
                    quantisation: str = "float") -> Iterator[dict[str, np.ndarray]]:
    """Per batch: resize (reference images only), quantise, extract. One pass serves FID and IS."""
    for batch in images:
        if resize != "none" or resolution is not None:
            batch = resize_images(batch, resize, resolution if resolution is not None else batch.shape[-1])
        yield extractor(quantise_images(batch, quantisation))


def image_stats(images: Iterable, extractor, *, resize: str = "none", resolution: int | None = None,
                quantisation: str = "float", feature: str = "pool") -> tuple[np.ndarray, np.ndarray, int]:
    """(mu, sigma, n) of one feature over a stream of image batches."""
    acc = StreamingGaussianStats()
    for feats in stream_features(images, extractor, resize=resize, resolution=resolution, quantisation=quantisation):
        acc.update(feats[feature])
    mu, sigma = acc.finalize()
    return mu, sigma, acc.n


def _check_extractor_matches(extractor, manifest: ReferenceManifest) -> None:
    have = {"extractor_name": extractor.name, "extractor_weights_sha256": extractor.weights_sha256,
            "library": extractor.library, "library_version": extractor.library_version}
    diff = {k: (v, getattr(manifest, k)) for k, v in have.items() if v != getattr(manifest, k)}
    if diff:
        raise ValueError("the extractor does not match the manifest: "
                         + "; ".join(f"{k}: extractor={a!r} manifest={b!r}" for k, (a, b) in diff.items()))


def compute_reference_stats(images: Iterable, extractor, manifest: ReferenceManifest, out_npz) -> ReferenceStats:
    """Stream batches -> resize/quantise per the manifest -> features -> (mu, sigma); write the .npz (with the
    manifest inside) and a .json beside it, atomically. Refuses to save when N differs from the manifest."""
    _check_extractor_matches(extractor, manifest)
    mu, sigma, n = image_stats(images, extractor, resize=manifest.resize, resolution=manifest.resolution,
                               quantisation=manifest.quantisation, feature=manifest.feature)
    if n != manifest.n_images:
        raise ValueError(f"manifest says n_images={manifest.n_images} but the image stream gave {n}; not saved")
    out_npz = Path(out_npz)
    savez(out_npz, mu=mu, sigma=sigma, n=np.int64(n), manifest_json=np.array(manifest.canonical_json()))
    write_json(out_npz.with_suffix(".json"), {
        "manifest": manifest.to_dict(), "manifest_key": manifest.manifest_key(), "n": n,
        "feature_dim": int(mu.shape[0]), "npz": out_npz.name, "npz_sha256": sha256_file(out_npz)})
    return ReferenceStats(mu=mu, sigma=sigma, n=n, manifest=manifest)


def load_reference_stats(path, expected_manifest: ReferenceManifest) -> ReferenceStats:
    """Load (mu, sigma); raise ``ReferenceStatsMismatchError`` naming every field that differs."""
    with np.load(Path(path), allow_pickle=False) as data:
        stored = ReferenceManifest.from_dict(json.loads(str(data["manifest_json"])))
        mu, sigma, n = data["mu"], data["sigma"], int(data["n"])
    diff = stored.differences(expected_manifest)
    if diff:
        raise ReferenceStatsMismatchError(path, diff)
    if n != stored.n_images or mu.ndim != 1 or sigma.shape != (mu.shape[0],) * 2:
        raise ValueError(f"{path} is inconsistent: n={n}, mu {mu.shape}, sigma {sigma.shape}")
    return ReferenceStats(mu=mu, sigma=sigma, n=n, manifest=stored)


def reference_stats_path(cache_dir, manifest: ReferenceManifest) -> Path:
    m = manifest
    return Path(cache_dir) / f"{m.dataset}-{m.split}-{m.resolution}px-{m.manifest_key()}.npz"


def load_or_compute_reference_stats(cache_dir, manifest: ReferenceManifest, extractor,
                                    images_factory: Callable[[], Iterable]) -> ReferenceStats:
    """Cached by manifest key; ``images_factory`` is only called (the data only read) on a miss."""
    path = reference_stats_path(cache_dir, manifest)
    if path.exists():
        return load_reference_stats(path, manifest)
    return compute_reference_stats(images_factory(), extractor, manifest, path)


# --- metric names -------------------------------------------------------------------------------------------

def _count(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def weights_tag(weights_sha256: str) -> str:
    """'' for the reference TF weights, otherwise a loud suffix so such numbers are never taken for FID/IS."""
    if is_reference_weights_hash(weights_sha256):
        return ""
    return "_RANDOM-WEIGHTS" if str(weights_sha256).startswith(RANDOM_INIT) else "_NONREF-WEIGHTS"


def _protocol_tag(protocol: str) -> str:
    return "" if protocol == _LEGACY else f"_{protocol}"


def fid_name(manifest: ReferenceManifest, n_generated: int) -> str:
    """e.g. 'fid50k_cifar10-trainval'; resized references carry their resolution ('stl10-48px-unlabeled'), a
    reference N other than the protocol's its N, a non-legacy protocol its name, other weights a flag."""
    m = manifest
    ref = f"{m.dataset}-{m.resolution}px-{m.split}" if m.resize != "none" else f"{m.dataset}-{m.split}"
    try:
        default_n = reference_spec(m.protocol, m.dataset, m.resolution)["n_images"]
    except KeyError:
        default_n = None
    if m.n_images != default_n:
        ref += f"-ref{_count(m.n_images)}"
    return f"fid{_count(int(n_generated))}_{ref}{_protocol_tag(m.protocol)}{weights_tag(m.extractor_weights_sha256)}"


def is_name(source, n_generated: int, splits: int = 10, protocol: str | None = None) -> str:
    """e.g. 'is50k_10splits'. ``source``: a ReferenceManifest, an extractor or a weights SHA-256."""
    if isinstance(source, ReferenceManifest):
        sha, protocol = source.extractor_weights_sha256, protocol or source.protocol
    else:
        sha = getattr(source, "weights_sha256", source)
    return f"is{_count(int(n_generated))}_{int(splits)}splits{_protocol_tag(protocol or _LEGACY)}{weights_tag(sha)}"


_METRIC_NAME = re.compile(r"^(fid|is)\d+k?_")
_WEIGHT_FLAGS = ("_RANDOM-WEIGHTS", "_NONREF-WEIGHTS")


def assert_mixable(*names) -> None:
    """Raise if FID/IS names from the reference weights and from other weights would share one table.
    Accepts names or one iterable of names; other metric names (js4, hq_fraction, ...) are ignored."""
    if len(names) == 1 and not isinstance(names[0], str):
        names = tuple(names[0])
    kinds: dict[str, list[str]] = {}
    for name in names:
        if not _METRIC_NAME.match(name):
            continue
        kind = next((flag.strip("_") for flag in _WEIGHT_FLAGS if flag in name), "reference-weights")
        kinds.setdefault(kind, []).append(name)
    if len(kinds) > 1:
        raise ValueError(f"refusing to mix FID/IS computed with different Inception weights in one table: {kinds}")
