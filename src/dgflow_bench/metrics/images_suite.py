"""The image suite's metric entry point: FID against real reference images and the Inception Score, under
the protocol named by ``evaluate.image_protocol`` (metrics.protocols):

- 'clean': uint8 samples (the refine stage rounds them, as a PNG would) against the uint8 training array;
- 'dgflow-legacy': float samples in [0, 255], never rounded, against the paper's references
  (metrics.image_references), with IS over 10 consecutive splits.

The extractor follows ``evaluate.inception_weights``: a path to the TF inception-2015-12-05 weights
(pt_inception-2015-12-05-6726825d.pth, SHA-256 checked, never downloaded) gives real FID/IS; null gives
``TinyRandomInception``, and every metric name then ends in ``_RANDOM-WEIGHTS`` (reference_stats.fid_name /
is_name), so such numbers can never pass for FID/IS. ``evaluate.pytorch_fid_crosscheck`` adds a second FID
from pytorch-fid's network on the same images (metric name prefixed 'crosscheck-pytorch-fid_').

Samples arrive shard by shard (snapshots.Snapshots.batches): features go straight into running Gaussian
statistics and a streaming Inception Score, so memory does not grow with the number of samples.

Reference statistics are cached with ``load_or_compute_reference_stats`` under ``<cache>/images-<data key>/``:
the file name carries the ReferenceManifest key (dataset, split, N, resolution, resize, quantisation,
extractor, weights, library version, protocol) and the folder the SHA-256 of the data stage's manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from .feature_extractors import TinyRandomInception, TorchFidelityInception
from .frechet import StreamingGaussianStats, StreamingInceptionScore, frechet_distance
from .image_references import data_key, reference_images
from .protocols import get_protocol, quantise_images
from .reference_stats import (ReferenceManifest, assert_mixable, fid_name, is_name,
                              load_or_compute_reference_stats)

CROSSCHECK_PREFIX = "crosscheck-pytorch-fid_"
STORAGE_OF_QUANTISATION = {"uint8": np.uint8, "float": np.float32}


def metric_directions() -> dict[str, str]:
    return {"fid": "lower", "is": "higher", CROSSCHECK_PREFIX + "fid": "lower"}


def make_extractor(weights_path: str | None):
    """The reference Inception from a local weights file, or the random-weight test net for null."""
    if weights_path is None:
        return TinyRandomInception()
    return TorchFidelityInception(weights_path)


def make_crosscheck_extractor(weights_path: str | None):
    """pytorch-fid's network from the same file; null gives a second random-weight net (tests only)."""
    if weights_path is None:
        return TinyRandomInception(seed=1)
    from .pytorch_fid_extractor import PytorchFidInception

    return PytorchFidInception(weights_path)


def _engine(extractor, reference, protocol: str, cache: Path, batch: int) -> dict:
    manifest = ReferenceManifest.for_extractor(
        extractor, protocol=protocol, dataset=reference.dataset, resolution=reference.resolution,
        split=reference.split, n_images=reference.n_images, resize=reference.resize,
        quantisation=get_protocol(protocol)["quantisation"])

    # resize and quantisation follow the manifest inside compute_reference_stats
    stats = load_or_compute_reference_stats(cache, manifest, extractor, lambda: reference.batches(batch))
    return {"extractor": extractor, "reference": stats, "manifest": manifest}


def prepare(data_file: str, params: dict, cache_dir: str) -> dict:
    protocol = params["image_protocol"]
    reference = reference_images(data_file, protocol, params["fid_reference"])
    cache = Path(cache_dir) / f"images-{data_key(data_file)}"
    batch = int(params["feature_batch_size"])
    engines = {"main": _engine(make_extractor(params.get("inception_weights")), reference, protocol, cache, batch)}
    if params["pytorch_fid_crosscheck"]:
        engines["crosscheck"] = _engine(make_crosscheck_extractor(params.get("inception_weights")), reference,
                                        protocol, cache, batch)
    return {"engines": engines, "protocol": protocol}


def compute(dataset: str, batches: Iterable[np.ndarray], n_samples: int, prepared: dict,
            params: dict) -> dict[str, float]:
    """FID and IS (mean over ``is_splits`` consecutive splits) of one snapshot, streamed shard by shard."""
    engines, quantisation = prepared["engines"], get_protocol(prepared["protocol"])["quantisation"]
    splits, step_batch = int(params["is_splits"]), int(params["feature_batch_size"])
    gaussians = {name: StreamingGaussianStats() for name in engines}
    inception_score = StreamingInceptionScore(n_samples, splits)
    for shard in batches:
        if shard.ndim != 4 or shard.dtype != STORAGE_OF_QUANTISATION[quantisation]:
            raise ValueError(f"the '{prepared['protocol']}' protocol scores {np.dtype(STORAGE_OF_QUANTISATION[quantisation])} "
                             f"(N, 3, H, W) samples, got {shard.dtype} {shard.shape}: rerun the refine stage")
        for start in range(0, len(shard), step_batch):
            images = quantise_images(np.ascontiguousarray(shard[start:start + step_batch]), quantisation)
            for name, engine in engines.items():
                feats = engine["extractor"](images)
                gaussians[name].update(feats[engine["manifest"].feature])
                if name == "main":
                    inception_score.update(feats["probs"])
    out = {}
    for name, engine in engines.items():
        manifest, reference = engine["manifest"], engine["reference"]
        mu, sigma = gaussians[name].finalize()
        fid = float(frechet_distance(mu, sigma, reference.mu, reference.sigma))
        out[(CROSSCHECK_PREFIX if name == "crosscheck" else "") + fid_name(manifest, n_samples)] = fid
    main = engines["main"]["manifest"]
    out[is_name(main, n_samples, splits)] = inception_score.finalize()[0]
    assert_mixable([k for k in out if not k.startswith(CROSSCHECK_PREFIX)])
    return out


def describe(params: dict) -> str:
    """One sentence for table captions: the protocol and the extractor."""
    weights = params.get("inception_weights")
    protocol = params.get("image_protocol", "clean")
    extractor = (f"torch-fidelity InceptionV3 with the TF inception-2015-12-05 weights ({Path(weights).name})"
                 if weights else "a tiny RANDOM-WEIGHTS conv net (pipeline check only: these are not FID/IS)")
    what = ("uint8 samples and uint8 reference images" if protocol == "clean"
            else "float samples never rounded; the paper's reference images")
    return f"'{protocol}' protocol ({what}, FID reference '{params['fid_reference']}'); features from {extractor}"
