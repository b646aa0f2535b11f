"""DOT's published npz checkpoints load into the project's MLPs exactly: the torch forward pass equals an
independent numpy forward pass of the same npz."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dgflow_bench.models.chainer_npz import CheckpointError, load_chainer_mlp
from dgflow_bench.models.checkpoint_downloads import DOT_2D_SHA256, fetch_dot_2d


def numpy_forward(path, x: np.ndarray) -> np.ndarray:
    with np.load(path) as npz:
        keys = sorted({k.split("/")[0] for k in npz.files}, key=lambda k: int(k[1:]))
        layers = [(npz[f"{k}/W"].astype(np.float64), npz[f"{k}/b"].astype(np.float64)) for k in keys]
    h = x.astype(np.float64)
    for i, (W, b) in enumerate(layers):
        h = h @ W.T + b
        if i < len(layers) - 1:
            h = np.where(h > 0, h, 0.2 * h)
    return h


@pytest.mark.parametrize("dataset", ["25gaussians", "swissroll"])
def test_published_nets_match_numpy(dot2d_dir, dataset):
    rng = np.random.default_rng(0)
    z = rng.uniform(-1, 1, size=(512, 2)).astype(np.float32)
    g_path, d_path = dot2d_dir / f"G_{dataset}_WGAN-GP.npz", dot2d_dir / f"D_{dataset}_WGAN-GP.npz"
    G, D = load_chainer_mlp(g_path, "generator"), load_chainer_mlp(d_path, "critic")
    assert G.spec["hidden"] == 256 and D.spec["hidden"] == 512 and G.spec["depth"] == D.spec["depth"] == 3
    with torch.no_grad():
        x = G(torch.from_numpy(z)).numpy()
        d = D(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(x, numpy_forward(g_path, z), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(d, numpy_forward(d_path, x)[:, 0], rtol=1e-4, atol=1e-4)


def test_fetch_verifies_local_files(dot2d_dir, tmp_path):
    files = fetch_dot_2d("25gaussians", local_dir=str(dot2d_dir), url="http://unused", cache_dir=tmp_path)
    assert files["generator"].name in DOT_2D_SHA256 and files["critic"].name in DOT_2D_SHA256


def test_corrupt_local_file_names_file_and_key(dot2d_dir, tmp_path):
    for name in ("G_swissroll_WGAN-GP.npz", "D_swissroll_WGAN-GP.npz"):
        data = (dot2d_dir / name).read_bytes()
        (tmp_path / name).write_bytes(data[:-10] + b"0123456789")
    with pytest.raises(CheckpointError, match=r"SHA-256.*sources\.dot-pretrained\.local_dir"):
        fetch_dot_2d("swissroll", local_dir=str(tmp_path), url="http://unused", cache_dir=tmp_path)


def test_missing_local_file_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="G_25gaussians_WGAN-GP.npz"):
        fetch_dot_2d("25gaussians", local_dir=str(tmp_path), url="http://unused", cache_dir=tmp_path)


def test_failed_download_says_how_to_go_offline(tmp_path):
    # an unroutable local URL fails at once, as a download does offline
    with pytest.raises(CheckpointError, match="local_dir"):
        fetch_dot_2d("25gaussians", local_dir=None, url="http://127.0.0.1:9", cache_dir=tmp_path)
    assert not list(tmp_path.glob("*.npz")), "a failed download must leave no file behind"


def test_npz_layout_errors(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, **{"l0/W": np.zeros((4, 2)), "l0/b": np.zeros(4), "l1/W": np.zeros((1, 5)), "l1/b": np.zeros(1)})
    with pytest.raises(CheckpointError, match="input 5 != previous output 4"):
        load_chainer_mlp(bad, "critic")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="not a readable npz"):
        load_chainer_mlp(junk, "critic")
