"""The image suite's two protocols at the metric level: which reference images each reads, the storage form
each scores, streaming independent of shard sizes, and the optional pytorch-fid cross-check."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import torch

from dgflow_bench.config import validate
from dgflow_bench.data.images import avg_pool2_uint8, prepare_image_dataset
from dgflow_bench.metrics import images_suite
from dgflow_bench.metrics.feature_extractors import TinyRandomInception
from dgflow_bench.metrics.frechet import gaussian_stats
from dgflow_bench.metrics.protocols import resize_images
from fixtures.images import N_CIFAR, make_cifar, make_stl, stl_images


def metric_params(**overrides) -> dict:
    config = validate({"datasets": {"cifar10": {}}, "models": {"sn-dcgan-hinge": {"datasets": ["cifar10"]}},
                       "methods": {"base": {"kind": "base"}}, "evaluate": {"is_splits": 4, **overrides}})
    return config["evaluate"]


@pytest.fixture(scope="module")
def cifar_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    make_cifar(root)
    files = {}
    for splits in (("train",), ("train", "test")):
        files[splits] = str(root / f"{'-'.join(splits)}.npz")
        prepare_image_dataset("cifar10", root, files[splits], splits=splits)
    return files


def fake_samples(n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    samples = rng.uniform(0, 255, (n, 3, 32, 32))
    return samples.astype(np.float32) if dtype == "float32" else np.round(samples).astype(np.uint8)


def test_legacy_cifar10_reference_is_train_plus_test_whatever_the_training_split(cifar_files, tmp_path):
    params = metric_params(image_protocol="dgflow-legacy")
    from_train = images_suite.prepare(cifar_files[("train",)], params, str(tmp_path / "a"))
    from_trainval = images_suite.prepare(cifar_files[("train", "test")], params, str(tmp_path / "b"))
    for prepared in (from_train, from_trainval):
        manifest = prepared["engines"]["main"]["manifest"]
        assert (manifest.split, manifest.n_images, manifest.quantisation) == ("trainval", 6 * N_CIFAR, "float")
    np.testing.assert_allclose(from_train["engines"]["main"]["reference"].mu,
                               from_trainval["engines"]["main"]["reference"].mu, rtol=1e-12)
    clean = images_suite.prepare(cifar_files[("train",)], metric_params(), str(tmp_path / "c"))
    assert clean["engines"]["main"]["manifest"].n_images == 5 * N_CIFAR
    with pytest.raises(ValueError, match="fid_reference: train"):
        images_suite.prepare(cifar_files[("train",)], metric_params(image_protocol="dgflow-legacy",
                                                                    fid_reference="heldout"), str(tmp_path))


def test_legacy_stl10_reference_is_pooled_in_float_from_the_originals(tmp_path):
    images = stl_images()
    make_stl(tmp_path, images)
    data = str(tmp_path / "stl10-48.npz")
    prepare_image_dataset("stl10-48", tmp_path, data, seed=0, heldout_size=4)
    legacy = images_suite.prepare(data, metric_params(image_protocol="dgflow-legacy"), str(tmp_path / "cache"))
    manifest = legacy["engines"]["main"]["manifest"]
    assert (manifest.dataset, manifest.resize, manifest.quantisation) == ("stl10", "avgpool2", "float")
    net = TinyRandomInception()
    mu_float, _ = gaussian_stats(net(resize_images(images, "avgpool2", 48))["pool"])
    mu_rounded, _ = gaussian_stats(net(avg_pool2_uint8(images))["pool"])
    np.testing.assert_allclose(legacy["engines"]["main"]["reference"].mu, mu_float, rtol=1e-10)
    assert not np.allclose(mu_float, mu_rounded, rtol=1e-10, atol=0)  # rounding is visible in the statistics
    (tmp_path / "stl10_binary" / "unlabeled_X.bin").write_bytes(b"\0" * (3 * 96 * 96 * len(images)))
    with pytest.raises(FileNotFoundError, match="differs from the file the data stage read"):
        images_suite.prepare(data, metric_params(image_protocol="dgflow-legacy"), str(tmp_path / "other"))


@pytest.mark.parametrize("protocol, dtype", [("clean", "uint8"), ("dgflow-legacy", "float32")])
def test_streamed_metrics_do_not_depend_on_shard_sizes(cifar_files, tmp_path, protocol, dtype):
    params = metric_params(image_protocol=protocol, feature_batch_size=16)
    prepared = images_suite.prepare(cifar_files[("train",)], params, str(tmp_path))
    samples = fake_samples(64, dtype)
    whole = images_suite.compute("cifar10", [samples], 64, prepared, params)
    shards = images_suite.compute("cifar10", [samples[:10], samples[10:30], samples[30:]], 64, prepared, params)
    assert whole.keys() == shards.keys() and len(whole) == 2
    for name in whole:
        assert whole[name] == pytest.approx(shards[name], rel=1e-9), name
    other = "float32" if dtype == "uint8" else "uint8"
    with pytest.raises(ValueError, match="rerun the refine stage"):
        images_suite.compute("cifar10", [fake_samples(64, other)], 64, prepared, params)


def test_crosscheck_writes_a_second_labelled_fid(cifar_files, tmp_path):
    params = metric_params(pytorch_fid_crosscheck=True)
    prepared = images_suite.prepare(cifar_files[("train",)], params, str(tmp_path))
    out = images_suite.compute("cifar10", [fake_samples(64, "uint8")], 64, prepared, params)
    main = [k for k in out if k.startswith("fid")]
    cross = [k for k in out if k.startswith(images_suite.CROSSCHECK_PREFIX)]
    assert len(main) == 1 and cross == [images_suite.CROSSCHECK_PREFIX + main[0]]
    assert out[cross[0]] > 0 and out[cross[0]] != out[main[0]]  # another network: another number


def test_pytorch_fid_extractor_reads_images_in_0_255():
    from pytorch_fid import inception

    from dgflow_bench.metrics.pytorch_fid_extractor import PytorchFidInception

    torch.manual_seed(0)
    with mock.patch.object(inception, "load_state_dict_from_url", lambda *args, **kwargs: {}), \
            mock.patch.object(torch.nn.Module, "load_state_dict", lambda self, *args, **kwargs: None):
        state = inception.fid_inception_v3().state_dict()  # the weights file's layout, random values
    extractor = PytorchFidInception.from_state_dict(state, "random-init", device="cpu")
    images = np.random.default_rng(3).integers(0, 256, (2, 3, 32, 32), dtype=np.uint8)
    pool = extractor(images)["pool"]
    assert pool.shape == (2, 2048) and np.isfinite(pool).all()
    np.testing.assert_allclose(extractor(images.astype(np.float32))["pool"], pool, rtol=1e-6)
    with torch.no_grad():
        direct = extractor._model(torch.from_numpy(images).float() / 255.0)[0].flatten(1).double().numpy()
    np.testing.assert_allclose(pool, direct, rtol=1e-6)
