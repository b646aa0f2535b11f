"""An image dataset is one row: a test registers a new one (a folder holding one .npy of 16 px images, pooled
to 8 px) with the one call an extension module makes, and builds its data and its reference statistics
through the data and evaluate stages, with no other file touched. The built-in rows keep their facts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dgflow_bench.config import ConfigError, data_params, evaluate_params, validate
from dgflow_bench.data.image_rows import IMAGE_DATASETS, ImageArchive, ImageDataset, ReferenceSet, image_dataset
from dgflow_bench.metrics.feature_extractors import TinyRandomInception
from dgflow_bench.metrics.frechet import gaussian_stats
from dgflow_bench.metrics.protocols import reference_spec, resize_images
from dgflow_bench.registry import DATASETS
from dgflow_bench.snapshots import write_snapshots
from dgflow_bench.stages import data as data_stage
from dgflow_bench.stages import evaluate as evaluate_stage
from dgflow_bench.suites.images import register_image_dataset

N, NATIVE = 24, 16


def _count(folder: Path, split: str) -> int:
    return int(np.load(folder / "images.npy", mmap_mode="r").shape[0])


def _chunks(folder: Path, split: str, size: int):
    images = np.load(folder / "images.npy", mmap_mode="r")
    for start in range(0, len(images), size):
        yield np.ascontiguousarray(images[start:start + size]), None


TINY = ImageDataset(
    ImageArchive("tinyset", "https://example.invalid/tinyset.tar.gz", "tinyset", {"all": ("images.npy",)},
                 NATIVE, _count, _chunks),
    resolution=8, resize="avgpool2", default_splits=("all",),
    references={"dgflow-legacy": ReferenceSet("all", ("all",), N, "avgpool2"),
                "clean": ReferenceSet("all", ("all",), N, "avgpool2")})


@pytest.fixture
def tiny(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (N, 3, NATIVE, NATIVE), dtype=np.uint8)
    (tmp_path / "tinyset").mkdir()
    np.save(tmp_path / "tinyset" / "images.npy", images)
    register_image_dataset("tiny-folder", TINY)  # the extension module's one call
    yield tmp_path, images
    DATASETS.unregister("tiny-folder")


def _config(root, protocol: str) -> dict:
    return validate({"datasets": {"tiny-folder": {"root": str(root), "heldout_size": 4}},
                     "models": {"sn-dcgan-hinge": {"datasets": ["tiny-folder"]}},
                     "methods": {"base": {"kind": "base"}},
                     "evaluate": {"image_protocol": protocol, "is_splits": 2, "feature_batch_size": 5}})


@pytest.mark.parametrize("protocol", ["dgflow-legacy", "clean"])
def test_a_new_image_dataset_is_one_row_through_the_stages(tiny, tmp_path, protocol):
    root, images = tiny
    config = _config(root, protocol)
    assert config["datasets"]["tiny-folder"]["splits"] == ["all"]  # the block's schema comes from the row
    data_file = str(tmp_path / "data" / "tiny-folder.npz")
    data_stage.run("tiny-folder", data_params(config, "tiny-folder"), data_file)
    with np.load(data_file) as z:
        manifest = json.loads(str(z["manifest"]))
        assert z["train"].shape == (N, 3, 8, 8) and z["heldout"].shape == (4, 3, 8, 8)
    assert (manifest["source"], manifest["resize"].split(":")[0], manifest["n_train"]) == ("tinyset", "avgpool2", N)
    # samples as the refine stage stores them for this protocol; the evaluate stage computes the reference
    samples = str(tmp_path / "samples.npz")
    dtype = np.float32 if protocol == "dgflow-legacy" else np.uint8
    with write_snapshots(samples) as writer:
        writer.add_batch({0: np.random.default_rng(1).uniform(0, 255, (10, 3, 8, 8)).astype(dtype)})
        writer.finish(np.zeros((10, 4), dtype=np.float32))
    out = str(tmp_path / "metrics.json")
    evaluate_stage.run(samples, data_file, evaluate_params(config, "tiny-folder", "sn-dcgan-hinge", "trained",
                                                           "base"), out, progress=False)
    names = [k for k in json.loads(Path(out).read_text())["per_step"][0] if k.startswith("fid")]
    cached = [json.loads(p.read_text()) for p in (tmp_path / "data" / "cache").rglob("*.json")]
    assert len(cached) == 1
    reference = cached[0]["manifest"]
    if protocol == "dgflow-legacy":
        # the row's legacy reference: all 16 px originals pooled to 8 px in float, never rounded
        assert names == ["fid10_tinyset-8px-all_RANDOM-WEIGHTS"]
        assert (reference["dataset"], reference["resize"], reference["n_images"]) == ("tinyset", "avgpool2", N)
        stored = np.load(next((tmp_path / "data" / "cache").rglob("*.npz")))
        mu, _ = gaussian_stats(TinyRandomInception()(resize_images(torch.from_numpy(images), "avgpool2", 8))["pool"])
        np.testing.assert_allclose(stored["mu"], mu, rtol=1e-10)
    else:
        assert names == ["fid10_tiny-folder-all-ref24_clean_RANDOM-WEIGHTS"]
        assert (reference["dataset"], reference["resize"], reference["n_images"]) == ("tiny-folder", "none", N)


def test_the_rows_config_block_and_root_check(tiny, tmp_path):
    root, _ = tiny
    with pytest.raises(ConfigError, match="tiny-folder.splits"):
        validate({"datasets": {"tiny-folder": {"splits": ["test"]}},
                  "models": {"sn-dcgan-hinge": {"datasets": ["tiny-folder"]}}, "methods": {"base": {"kind": "base"}}})
    check = DATASETS["tiny-folder"].check_root
    check({"root": str(root)}, "datasets.tiny-folder.root")
    with pytest.raises(FileNotFoundError, match="datasets.tiny-folder.root"):
        check({"root": str(tmp_path / "elsewhere")}, "datasets.tiny-folder.root")
    assert image_dataset("tiny-folder") is TINY and reference_spec("clean", "tinyset", 8)["n_images"] == N


def test_the_built_in_rows_keep_their_protocol_references():
    assert reference_spec("dgflow-legacy", "cifar10", 32) == {"split": "trainval", "n_images": 60_000, "resize": "none"}
    assert reference_spec("clean", "cifar10", 32) == {"split": "train", "n_images": 50_000, "resize": "none"}
    for px, resize in ((48, "avgpool2"), (32, "bilinear")):
        for protocol in ("dgflow-legacy", "clean"):
            assert reference_spec(protocol, "stl10", px) == {"split": "unlabeled", "n_images": 100_000, "resize": resize}
    with pytest.raises(KeyError, match="no reference for stl10 at 64 px"):
        reference_spec("clean", "stl10", 64)
    assert {name: (row.archive.source, row.resolution) for name, row in IMAGE_DATASETS.items()} == {
        "cifar10": ("cifar10", 32), "stl10-48": ("stl10", 48), "stl10-32": ("stl10", 32)}
