"""CIFAR10 / STL10 binary data: tiny files in exactly the official on-disk layouts go through the real readers,
resizers and ``prepare_image_dataset``. The network is never used: urlopen is replaced by a function that fails
the test, or by a fake server returning a tarball built here."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch

from fixtures.images import N_CIFAR, N_STL, cifar_image, make_cifar, make_stl, stl_images

from dgflow_bench.data.images import (
    CIFAR10_FOLDER,
    CIFAR10_MD5,
    CIFAR10_SPLIT_FILES,
    CIFAR10_URL,
    STL10_MD5,
    STL10_UNLABELED_FILE,
    STL10_URL,
    ImageDataError,
    avg_pool2_uint8,
    bilinear_uint8,
    ensure_archive,
    iter_stl10_unlabeled,
    prepare_image_dataset,
    read_cifar10_binary,
    read_stl10_unlabeled,
)
from dgflow_bench.metrics.protocols import resize_images


@pytest.fixture
def no_network(monkeypatch):
    def fail(*args, **kwargs):
        pytest.fail(f"network access attempted: urlopen{args}")
    monkeypatch.setattr(urllib.request, "urlopen", fail)


def test_cifar_binary_round_trip(tmp_path, no_network):
    make_cifar(tmp_path)
    for root in (tmp_path, tmp_path / CIFAR10_FOLDER):  # the folder or its parent
        folder = ensure_archive(root, CIFAR10_URL, tmp_path / "unused", CIFAR10_MD5)
        assert folder == tmp_path / CIFAR10_FOLDER
    images, labels = read_cifar10_binary(folder)
    assert images.dtype == np.uint8 and images.shape == (6 * N_CIFAR, 3, 32, 32)
    expected = np.stack([cifar_image(f, r) for f in range(6) for r in range(N_CIFAR)])
    np.testing.assert_array_equal(images, expected)
    np.testing.assert_array_equal(labels, [(f + r) % 10 for f in range(6) for r in range(N_CIFAR)])
    test_images, _ = read_cifar10_binary(folder, ("test",))
    np.testing.assert_array_equal(test_images, expected[5 * N_CIFAR:])
    with pytest.raises(ValueError, match="unknown CIFAR10 split"):
        read_cifar10_binary(folder, ("val",))


def test_truncated_file_is_refused(tmp_path):
    folder = make_cifar(tmp_path)
    with open(folder / "test_batch.bin", "ab") as fh:
        fh.write(b"\0" * 5)
    with pytest.raises(ImageDataError, match="whole number"):
        read_cifar10_binary(folder, ("test",))


def test_stl_column_major_transpose_and_chunks(tmp_path, no_network):
    images = stl_images()
    folder = ensure_archive(make_stl(tmp_path, images).parent, STL10_URL, tmp_path / "unused")
    np.testing.assert_array_equal(read_stl10_unlabeled(folder, chunk_images=5), images)
    chunks = list(iter_stl10_unlabeled(folder, chunk_images=5))
    assert [len(c) for c in chunks] == [5, 5, 2]
    # byte-level check of the layout: pixel (row y, column x) of channel c sits at c*9216 + x*96 + y
    raw = np.fromfile(folder / STL10_UNLABELED_FILE, dtype=np.uint8)
    assert raw[1 * 9216 + 7 * 96 + 2] == images[0, 1, 2, 7] != images[0, 1, 7, 2]


def test_avg_pool2_matches_hand_computation():
    block = np.array([[[[1, 2, 10, 10], [3, 4, 11, 10], [0, 0, 255, 255], [1, 0, 255, 254]]]], dtype=np.uint8)
    # means: (1+2+3+4)/4 = 2.5 -> 2 (tie to even); 41/4 = 10.25 -> 10; 1/4 = 0.25 -> 0; 1019/4 = 254.75 -> 255
    np.testing.assert_array_equal(avg_pool2_uint8(block), [[[[2, 10], [0, 255]]]])
    ties = np.array([[[[3, 4], [3, 4]]]], dtype=np.uint8)  # 14/4 = 3.5 -> 4 (even)
    assert avg_pool2_uint8(ties).item() == 4
    x = stl_images(3)
    exact = resize_images(torch.from_numpy(x), "avgpool2", 48).numpy()
    np.testing.assert_array_equal(avg_pool2_uint8(x), np.rint(exact).astype(np.uint8))
    with pytest.raises(ValueError):
        avg_pool2_uint8(x.astype(np.float32))


def test_bilinear_32_shape_range_and_kernel():
    x = stl_images(4)
    out = bilinear_uint8(x, 32)
    assert out.shape == (4, 3, 32, 32) and out.dtype == np.uint8
    exact = resize_images(torch.from_numpy(x), "bilinear", 32).numpy()
    assert np.abs(out.astype(np.float64) - exact).max() <= 0.5 + 1e-9  # rounding only
    constant = np.full((1, 3, 96, 96), 200, dtype=np.uint8)
    np.testing.assert_array_equal(bilinear_uint8(constant, 32), 200)
    extremes = np.zeros((1, 3, 96, 96), dtype=np.uint8)
    extremes[..., ::2] = 255
    assert bilinear_uint8(extremes, 32).min() >= 0 and bilinear_uint8(extremes, 32).max() <= 255


def test_prepare_cifar10(tmp_path, no_network):
    make_cifar(tmp_path)
    out = tmp_path / "out" / "cifar10.npz"
    manifest = prepare_image_dataset("cifar10", tmp_path, out, seed=0)
    with np.load(out) as z:
        assert json.loads(str(z["manifest"])) == manifest
        assert z["train"].shape == (5 * N_CIFAR, 3, 32, 32) and z["train"].dtype == np.uint8
        assert z["heldout"].shape == (N_CIFAR, 3, 32, 32)
        np.testing.assert_array_equal(z["heldout"][3], cifar_image(5, 3))
        np.testing.assert_array_equal(z["train_labels"][:3], [0, 1, 2])
    assert manifest["resolution"] == 32 and manifest["resize"] == "none" and manifest["source_md5"] == CIFAR10_MD5
    files = {f["name"]: f for f in manifest["files"]}
    assert sorted(files) == sorted([*CIFAR10_SPLIT_FILES["train"], "test_batch.bin"])
    raw = (tmp_path / CIFAR10_FOLDER / "test_batch.bin").read_bytes()
    assert files["test_batch.bin"] == {"name": "test_batch.bin", "bytes": len(raw),
                                       "md5": hashlib.md5(raw).hexdigest(), "sha256": hashlib.sha256(raw).hexdigest()}
    all60 = prepare_image_dataset("cifar10", tmp_path, tmp_path / "all.npz", splits=("train", "test"))
    assert all60["n_train"] == 6 * N_CIFAR and all60["n_heldout"] == N_CIFAR


@pytest.mark.parametrize("name, px", [("stl10-48", 48), ("stl10-32", 32)])
def test_prepare_stl10(tmp_path, no_network, name, px):
    images = stl_images()
    make_stl(tmp_path, images)
    out = tmp_path / f"{name}.npz"
    manifest = prepare_image_dataset(name, tmp_path, out, seed=3, heldout_size=4, chunk_images=5)
    expected = avg_pool2_uint8(images) if px == 48 else bilinear_uint8(images, 32)
    with np.load(out) as z:
        np.testing.assert_array_equal(z["train"], expected)  # held-out images stay in train by default
        idx = z["heldout_indices"]
        assert len(set(idx.tolist())) == 4 and list(idx) == sorted(idx)
        np.testing.assert_array_equal(z["heldout"], expected[idx])
    assert manifest["resolution"] == px and manifest["n_train"] == N_STL and manifest["heldout_in_train"]
    assert manifest["files"][0]["name"] == STL10_UNLABELED_FILE and manifest["source_md5"] == STL10_MD5
    again = prepare_image_dataset(name, tmp_path, tmp_path / "again.npz", seed=3, heldout_size=4,
                                  heldout_in_train=False)
    with np.load(tmp_path / "again.npz") as z:
        np.testing.assert_array_equal(z["heldout_indices"], idx)  # same seed, same subset
        assert again["n_train"] == N_STL - 4
        np.testing.assert_array_equal(z["train"], np.delete(expected, idx, axis=0))


def test_missing_folder_names_url_folder_and_key(tmp_path, no_network):
    with pytest.raises(ImageDataError) as err:
        ensure_archive(tmp_path / "nowhere", STL10_URL, tmp_path / "dl")
    msg = str(err.value)
    assert STL10_URL in msg and str(tmp_path / "nowhere") in msg and "datasets.stl10.root" in msg
    with pytest.raises(ImageDataError, match="datasets.cifar10.root"):
        prepare_image_dataset("cifar10", tmp_path / "nowhere", tmp_path / "x.npz")


def test_offline_download_error(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no route to host")
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(ImageDataError) as err:
        ensure_archive(None, CIFAR10_URL, tmp_path / "dl", CIFAR10_MD5, config_key="datasets.cifar10.root")
    msg = str(err.value)
    assert CIFAR10_URL in msg and str(tmp_path / "dl") in msg and "datasets.cifar10.root" in msg
    assert not list((tmp_path / "dl").iterdir())  # no partial download left behind


def test_download_verifies_md5_and_extracts(tmp_path, monkeypatch):
    make_cifar(tmp_path / "src")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(tmp_path / "src" / CIFAR10_FOLDER, arcname=CIFAR10_FOLDER)
    payload = buf.getvalue()
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: io.BytesIO(payload))
    dl = tmp_path / "dl"
    with pytest.raises(ImageDataError, match="MD5"):  # the real MD5 is not that of this tiny archive
        ensure_archive(None, CIFAR10_URL, dl, CIFAR10_MD5)
    assert not (dl / "cifar-10-binary.tar.gz").exists() and not (dl / CIFAR10_FOLDER).exists()
    folder = ensure_archive(None, CIFAR10_URL, dl, hashlib.md5(payload).hexdigest())
    assert folder == dl / CIFAR10_FOLDER
    np.testing.assert_array_equal(read_cifar10_binary(folder)[0][0], cifar_image(0, 0))
    hashes = json.loads((dl / "cifar-10-binary.tar.gz.hashes.json").read_text())
    assert hashes["sha256"] == hashlib.sha256(payload).hexdigest() and hashes["url"] == CIFAR10_URL
    manifest = prepare_image_dataset("cifar10", dl, tmp_path / "c.npz")
    assert manifest["archive"]["md5"] == hashlib.md5(payload).hexdigest()
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("downloaded twice"))
    assert ensure_archive(None, CIFAR10_URL, dl) == folder  # already extracted: no network
