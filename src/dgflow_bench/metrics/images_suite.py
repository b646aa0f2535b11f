"""The image suite's metric entry point: FID against real reference images and the Inception Score, under the
'clean' protocol (metrics.protocols): the refine stage stores samples as uint8 (modalities.images), and both
the samples and the reference images reach the extractor as uint8, so a number here is what PNG files of the
same images would give.

The extractor follows ``evaluate.inception_weights``: a path to the TF inception-2015-12-05 weights
(pt_inception-2015-12-05-6726825d.pth, SHA-256 checked, never downloaded) gives real FID/IS; null gives
``TinyRandomInception``, and every metric name then ends in ``_RANDOM-WEIGHTS`` (reference_stats.fid_name /
is_name), so such numbers can never pass for FID/IS.

Reference statistics are cached with ``load_or_compute_reference_stats`` under ``<cache>/images-<data key>/``:
the file name carries the ReferenceManifest key (dataset, split, N, resolution, quantisation, extractor,
weights, library version, protocol) and the folder the SHA-256 of the data stage's manifest (source files'
hashes, splits, resize), so statistics of other data or other weights are never reused.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .feature_extractors import TinyRandomInception, TorchFidelityInception
from .frechet import StreamingGaussianStats, frechet_distance, inception_score
from .reference_stats import (ReferenceManifest, assert_mixable, fid_name, is_name,
                              load_or_compute_reference_stats, stream_features)

PROTOCOL = "clean"
QUANTISATION = "uint8"


def metric_directions() -> dict[str, str]:
    return {"fid": "lower", "is": "higher"}


def make_extractor(weights_path: str | None):
    """The reference Inception from a local weights file, or the random-weight test net for null."""
    if weights_path is None:
        return TinyRandomInception()
    return TorchFidelityInception(weights_path)


def _split_name(data_manifest: dict, which: str) -> str:
    """The reference split as the protocol names it: cifar10 'train' / 'trainval', stl10 'unlabeled', and the
    held-out array as 'test' (CIFAR10's test split) or 'heldout' (the seeded STL10 subset)."""
    source = data_manifest["source"]
    if which == "heldout":
        return "test" if source == "cifar10" else "heldout"
    splits = list(data_manifest["splits"])
    if source == "cifar10":
        return {("train",): "train", ("train", "test"): "trainval"}.get(tuple(splits), "+".join(splits))
    return "+".join(splits)


def _batches(images: np.ndarray, size: int):
    for start in range(0, len(images), size):
        yield np.ascontiguousarray(images[start:start + size])


def prepare(data_file: str, params: dict, cache_dir: str) -> dict:
    extractor = make_extractor(params.get("inception_weights"))
    which = params["fid_reference"]
    with np.load(data_file, allow_pickle=False) as data:
        manifest_json = str(data["manifest"])
        n_images = int(data[which].shape[0])
        resolution = int(data[which].shape[-1])
    data_manifest = json.loads(manifest_json)
    # the stored arrays are already at the generator's resolution (stl10-48: 2x2 mean, rounded half to even,
    # in the data stage), so the reference is read as is: resize 'none'
    dataset = data_manifest["source"] if data_manifest["resize"] == "none" else data_manifest["dataset"]
    manifest = ReferenceManifest.for_extractor(
        extractor, protocol=PROTOCOL, dataset=dataset, resolution=resolution,
        split=_split_name(data_manifest, which), n_images=n_images, resize="none", quantisation=QUANTISATION)
    data_key = hashlib.sha256(manifest_json.encode()).hexdigest()[:16]
    batch = int(params["feature_batch_size"])

    def images():
        with np.load(data_file, allow_pickle=False) as data:
            reference = data[which]
        yield from _batches(reference, batch)

    stats = load_or_compute_reference_stats(Path(cache_dir) / f"images-{data_key}", manifest, extractor, images)
    return {"extractor": extractor, "reference": stats, "manifest": manifest}


def compute(dataset: str, samples: np.ndarray, prepared: dict, params: dict) -> dict[str, float]:
    """FID and IS (mean over ``is_splits``) of one snapshot's uint8 samples (N, 3, H, W)."""
    samples = np.asarray(samples)
    if samples.dtype != np.uint8 or samples.ndim != 4:
        raise ValueError(f"the image suite scores uint8 (N, 3, H, W) samples, got {samples.dtype} {samples.shape}")
    manifest, reference = prepared["manifest"], prepared["reference"]
    acc, probs = StreamingGaussianStats(), []
    for feats in stream_features(_batches(samples, int(params["feature_batch_size"])), prepared["extractor"],
                                 quantisation=QUANTISATION):
        acc.update(feats[manifest.feature])
        probs.append(feats["probs"])
    mu, sigma = acc.finalize()
    n = len(samples)
    splits = int(params["is_splits"])
    names = (fid_name(manifest, n), is_name(manifest, n, splits))
    assert_mixable(names)
    fid = frechet_distance(mu, sigma, reference.mu, reference.sigma)
    is_mean, _ = inception_score(np.concatenate(probs), splits)
    return {names[0]: float(fid), names[1]: float(is_mean)}


def describe(params: dict) -> str:
    """One sentence for table captions: the protocol and the extractor."""
    weights = params.get("inception_weights")
    extractor = (f"torch-fidelity InceptionV3 with the TF inception-2015-12-05 weights ({Path(weights).name})"
                 if weights else "a tiny RANDOM-WEIGHTS conv net (pipeline check only: these are not FID/IS)")
    return (f"'{PROTOCOL}' protocol (uint8 samples and uint8 {params['fid_reference']} reference images); "
            f"features from {extractor}")
