"""Reference statistics keyed by their manifest, metric names, protocols and feature extractors.

Everything here runs on TinyRandomInception (seeded random weights, said in every metric name) or on
torch-fidelity's Inception with random init; the real TF weights are used only where
$DGFLOW_BENCH_INCEPTION_WEIGHTS points at them. Nothing may download: the hub loader is patched to fail.
"""

import dataclasses
import json
import os
from unittest import mock

import numpy as np
import pytest
import torch

from dgflow_bench.metrics.feature_extractors import (
    FeatureExtractor,
    InceptionWeightsMismatchError,
    MissingInceptionWeightsError,
    TinyRandomInception,
    TorchFidelityInception,
)
from dgflow_bench.metrics.frechet import gaussian_stats
from dgflow_bench.metrics.protocols import quantise_images, resize_images
from dgflow_bench.metrics.reference_stats import (
    ReferenceManifest,
    ReferenceStatsMismatchError,
    assert_mixable,
    compute_reference_stats,
    fid_name,
    image_stats,
    is_name,
    load_or_compute_reference_stats,
    load_reference_stats,
)

REAL_SHA = "6726825d" + "0" * 56  # shaped like the reference hash, for naming tests only
N_IMAGES = 24


@pytest.fixture(autouse=True)
def _no_downloads():
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to download weights")

    with mock.patch("torch.hub.load_state_dict_from_url", refuse), \
            mock.patch("torch_fidelity.feature_extractor_inceptionv3.load_state_dict_from_url", refuse):
        yield


@pytest.fixture
def images():
    return np.random.RandomState(0).randint(0, 256, size=(N_IMAGES, 3, 16, 16)).astype(np.uint8)


@pytest.fixture
def extractor():
    return TinyRandomInception(seed=0)


def batches(x, size):
    return (x[i:i + size] for i in range(0, len(x), size))


def make_manifest(extractor, **overrides):
    fields = dict(split="train", n_images=N_IMAGES, resize="none", quantisation="uint8")
    fields.update(overrides)
    return ReferenceManifest.for_extractor(extractor, protocol="clean", dataset="synthetic", resolution=16, **fields)


def test_tiny_extractor_follows_the_interface(extractor, images):
    assert isinstance(extractor, FeatureExtractor)
    assert "random" in extractor.name and extractor.is_reference_weights is False
    assert extractor.weights_sha256 == "random-init"
    out = extractor(images)
    assert out["pool"].shape == (N_IMAGES, extractor.feature_dim) and out["pool"].dtype == np.float64
    assert out["logits"].shape == out["probs"].shape == (N_IMAGES, extractor.num_classes)
    np.testing.assert_allclose(out["probs"].sum(axis=1), 1.0, rtol=1e-12)
    assert (out["pool"] >= 0).all() and out["pool"].std(axis=0).min() > 0  # no dead features


def test_stats_roundtrip_with_the_same_manifest(tmp_path, extractor, images):
    manifest = make_manifest(extractor)
    out = tmp_path / "ref.npz"
    computed = compute_reference_stats(batches(images, 10), extractor, manifest, out)
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["manifest"] == manifest.to_dict() and side["manifest_key"] == manifest.manifest_key()
    loaded = load_reference_stats(out, manifest)
    np.testing.assert_array_equal(loaded.mu, computed.mu)
    np.testing.assert_array_equal(loaded.sigma, computed.sigma)
    assert loaded.n == N_IMAGES and loaded.manifest == manifest
    mu, sigma = gaussian_stats(extractor(images)["pool"])  # the streaming pipeline = features, then stats
    np.testing.assert_allclose(loaded.mu, mu, rtol=1e-12)
    np.testing.assert_allclose(loaded.sigma, sigma, rtol=1e-10, atol=1e-14)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp files


def test_resized_reference_goes_through_the_manifest_resize(tmp_path, extractor):
    big = np.random.RandomState(1).randint(0, 256, size=(12, 3, 32, 32)).astype(np.uint8)
    manifest = make_manifest(extractor, n_images=12, resize="avgpool2", quantisation="float")
    stats = compute_reference_stats(batches(big, 5), extractor, manifest, tmp_path / "pooled.npz")
    pooled = torch.nn.functional.avg_pool2d(torch.from_numpy(big).double(), 2)  # quarter values, not rounded
    mu, sigma = gaussian_stats(extractor(pooled)["pool"])
    np.testing.assert_allclose(stats.mu, mu, rtol=1e-12)
    np.testing.assert_allclose(stats.sigma, sigma, rtol=1e-10, atol=1e-14)


def _different(field, value):
    if field in ("resize", "quantisation"):  # these only take a few values
        return {"resize": "bilinear", "quantisation": "float"}[field]
    return value + 1 if isinstance(value, int) else f"{value}-other"


def test_every_differing_field_is_refused_by_name(tmp_path, extractor, images):
    manifest = make_manifest(extractor)
    out = tmp_path / "ref.npz"
    compute_reference_stats(batches(images, 8), extractor, manifest, out)
    for field in dataclasses.fields(ReferenceManifest):
        other = dataclasses.replace(manifest, **{field.name: _different(field.name, getattr(manifest, field.name))})
        assert other.manifest_key() != manifest.manifest_key()
        with pytest.raises(ReferenceStatsMismatchError, match=field.name) as info:
            load_reference_stats(out, other)
        assert set(info.value.differences) == {field.name}


def test_stats_from_other_extractor_weights_are_refused(tmp_path, extractor, images):
    out = tmp_path / "ref.npz"
    compute_reference_stats(batches(images, 8), extractor, make_manifest(extractor), out)
    other = TinyRandomInception(seed=1)
    with pytest.raises(ReferenceStatsMismatchError, match="extractor_name"):
        load_reference_stats(out, make_manifest(other))


def test_compute_refuses_a_wrong_count_or_a_foreign_manifest(tmp_path, extractor, images):
    with pytest.raises(ValueError, match="n_images"):
        compute_reference_stats(batches(images, 8), extractor, make_manifest(extractor, n_images=25),
                                tmp_path / "a.npz")
    with pytest.raises(ValueError, match="extractor_name"):
        compute_reference_stats(batches(images, 8), TinyRandomInception(seed=3), make_manifest(extractor),
                                tmp_path / "b.npz")
    assert not list(tmp_path.iterdir())


def test_pipeline_is_deterministic_and_batch_size_independent(extractor, images):
    runs = [image_stats(batches(images, bs), extractor, quantisation="uint8") for bs in (1, 5, N_IMAGES)]
    again = image_stats(batches(images, 7), TinyRandomInception(seed=0), quantisation="uint8")
    for mu, sigma, n in runs[1:] + [again]:
        assert n == N_IMAGES
        np.testing.assert_allclose(mu, runs[0][0], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(sigma, runs[0][1], rtol=1e-10, atol=1e-14)
    other = image_stats(batches(images, 8), TinyRandomInception(seed=1), quantisation="uint8")
    assert not np.allclose(other[0], runs[0][0])  # the seed matters, hence it is in the name


def test_cache_is_keyed_by_manifest(tmp_path, extractor, images):
    manifest = make_manifest(extractor)
    calls = []

    def factory():
        calls.append(1)
        return batches(images, 8)

    first = load_or_compute_reference_stats(tmp_path, manifest, extractor, factory)
    second = load_or_compute_reference_stats(tmp_path, manifest, extractor, factory)
    assert len(calls) == 1 and np.array_equal(first.sigma, second.sigma)
    load_or_compute_reference_stats(tmp_path, make_manifest(extractor, split="test"), extractor, factory)
    assert len(calls) == 2 and len(list(tmp_path.glob("*.npz"))) == 2


def test_metric_names_carry_protocol_and_weights(extractor):
    real = dataclasses.replace(
        ReferenceManifest.for_extractor(extractor, protocol="dgflow-legacy", dataset="cifar10", resolution=32),
        extractor_name="torch-fidelity-inception-v3-compat", extractor_weights_sha256=REAL_SHA)
    assert (real.split, real.n_images, real.quantisation) == ("trainval", 60_000, "float")
    assert fid_name(real, 50_000) == "fid50k_cifar10-trainval"
    assert is_name(real, 50_000) == "is50k_10splits"
    rand = dataclasses.replace(real, extractor_weights_sha256="random-init")
    assert fid_name(rand, 50_000) == "fid50k_cifar10-trainval_RANDOM-WEIGHTS"
    assert is_name(extractor, 50_000) == "is50k_10splits_RANDOM-WEIGHTS"
    assert fid_name(dataclasses.replace(real, extractor_weights_sha256="ab" * 32), 50_000).endswith("_NONREF-WEIGHTS")
    assert fid_name(dataclasses.replace(real, n_images=10_000), 5000) == "fid5k_cifar10-trainval-ref10k"
    stl = dataclasses.replace(real, dataset="stl10", split="unlabeled", resolution=48, resize="avgpool2",
                              n_images=100_000)
    assert fid_name(stl, 50_000) == "fid50k_stl10-48px-unlabeled"
    clean = dataclasses.replace(real, protocol="clean", split="train", n_images=50_000, quantisation="uint8")
    assert fid_name(clean, 50_000) == "fid50k_cifar10-train_clean"
    assert "RANDOM-WEIGHTS" in fid_name(make_manifest(extractor), 24)


def test_assert_mixable():
    assert_mixable("fid50k_cifar10-trainval", "is50k_10splits", "js4")
    assert_mixable(["fid50k_cifar10-trainval_RANDOM-WEIGHTS", "is50k_10splits_RANDOM-WEIGHTS", "hq_fraction"])
    with pytest.raises(ValueError, match="RANDOM-WEIGHTS"):
        assert_mixable("fid50k_cifar10-trainval", "is50k_10splits_RANDOM-WEIGHTS")


def test_resize_and_quantisation_steps():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float64).reshape(2, 3, 4, 4) % 256
    pooled = resize_images(x, "avgpool2", 2)
    assert pooled.shape == (2, 3, 2, 2) and pooled[0, 0, 0, 0] == (0 + 1 + 4 + 5) / 4
    assert resize_images(x, "bilinear", 3).shape == (2, 3, 3, 3)
    with pytest.raises(ValueError):
        resize_images(x, "none", 3)
    f = torch.tensor([0.4, 0.5, 1.5, 254.6, 255.0]).reshape(1, 1, 1, 5).expand(1, 3, 1, 5)
    assert quantise_images(f, "uint8")[0, 0, 0].tolist() == [0, 0, 2, 255, 255]  # half to even
    assert quantise_images(f, "float").dtype == torch.float64  # legacy: never rounded
    with pytest.raises(ValueError, match="0, 255"):
        quantise_images(f * 2, "float")


# --- the torch-fidelity Inception wrapper ----------------------------------------------------------------------

def test_missing_weights_path_raises_a_clear_error(tmp_path):
    for path in (None, "", tmp_path / "absent.pth"):
        with pytest.raises(MissingInceptionWeightsError, match="evaluate.inception_weights") as info:
            TorchFidelityInception(path)
        assert "6726825d" in str(info.value)


def test_wrong_hash_weights_file_is_refused(tmp_path):
    fake = tmp_path / "pt_inception-2015-12-05-6726825d.pth"  # the right name is not enough
    fake.write_bytes(b"not the inception weights")
    with mock.patch("torch.load") as torch_load:
        with pytest.raises(InceptionWeightsMismatchError, match="evaluate.inception_weights") as info:
            TorchFidelityInception(fake)
    assert str(fake) in str(info.value) and not torch_load.called  # refused before unpickling


def test_float_path_matches_torch_fidelity_forward():
    """Legacy float input runs our copy of the layer sequence; on integer-valued input it must equal
    torch-fidelity's own uint8 forward. Random init keeps this offline and fast."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    torch.manual_seed(0)
    with mock.patch.object(FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None), \
            mock.patch("torch.load", lambda *a, **k: {}):
        model = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                            feature_extractor_weights_path="unused")
    wrapped = TorchFidelityInception.from_loaded_model(model, "random-init", device="cpu")
    assert wrapped.is_reference_weights is False and isinstance(wrapped, FeatureExtractor)
    x = torch.from_numpy(np.random.RandomState(5).randint(0, 256, size=(2, 3, 32, 32)).astype(np.uint8))
    lib = wrapped(x)
    ours = wrapped(x.to(torch.float64))
    assert lib["pool"].shape == (2, 2048) and lib["logits"].shape == (2, 1008)
    np.testing.assert_allclose(ours["pool"], lib["pool"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ours["logits"], lib["logits"], rtol=1e-6, atol=1e-6)


@pytest.mark.skipif(not os.environ.get("DGFLOW_BENCH_INCEPTION_WEIGHTS"),
                    reason="set DGFLOW_BENCH_INCEPTION_WEIGHTS to the local pt_inception-2015-12-05-6726825d.pth")
def test_real_weights_are_recognised():
    ext = TorchFidelityInception(os.environ["DGFLOW_BENCH_INCEPTION_WEIGHTS"], device="cpu")
    assert ext.is_reference_weights and ext.weights_sha256.startswith("6726825d")
    out = ext(np.random.RandomState(0).randint(0, 256, size=(2, 3, 32, 32)).astype(np.uint8))
    assert out["pool"].shape == (2, 2048) and out["probs"].shape == (2, 1008)
