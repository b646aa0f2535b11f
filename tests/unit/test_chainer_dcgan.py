"""Chainer npz weights of the DCGAN family load exactly. The published files cannot be downloaded here, so
the tests write npz files in Chainer's key layout themselves (random weights of the right shapes, BN
statistics, SN ``u`` vectors) and compare the imported torch nets with functional forward passes written
from the raw arrays."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dgflow_bench.models.chainer_dcgan import (CheckpointError, load_chainer_dcgan,
                                               load_chainer_dcgan_discriminator, load_chainer_dcgan_generator)

Z_DIM, CH = 16, 64  # small nets: the loader reads z_dim, ch and bottom width from the shapes
SN_CONVS = [("c0_0", 3, CH // 8, 3, 1), ("c0_1", CH // 8, CH // 4, 4, 2), ("c1_0", CH // 4, CH // 4, 3, 1),
            ("c1_1", CH // 4, CH // 2, 4, 2), ("c2_0", CH // 2, CH // 2, 3, 1), ("c2_1", CH // 2, CH, 4, 2),
            ("c3_0", CH, CH, 3, 1)]
WGAN_NAMES = ["c0", "c1", "c1_0", "c2", "c2_0", "c3", "c3_0"]




def generator_arrays(rng, bw: int = 4) -> dict[str, np.ndarray]:
    f32 = np.float32
    arrays = {"l0/W": rng.normal(0, 0.3, (bw * bw * CH, Z_DIM)).astype(f32),
              "l0/b": rng.normal(0, 0.1, bw * bw * CH).astype(f32)}
    widths = [CH, CH // 2, CH // 4, CH // 8, 3]
    for i, k in zip(range(1, 5), [4, 4, 4, 3]):
        arrays[f"dc{i}/W"] = rng.normal(0, 0.1, (widths[i - 1], widths[i], k, k)).astype(f32)  # (in, out, kh, kw)
        arrays[f"dc{i}/b"] = rng.normal(0, 0.1, widths[i]).astype(f32)
    for i, n in enumerate([bw * bw * CH, CH // 2, CH // 4, CH // 8]):
        arrays[f"bn{i}/gamma"] = rng.normal(1, 0.2, n).astype(f32)
        arrays[f"bn{i}/beta"] = rng.normal(0, 0.2, n).astype(f32)
        arrays[f"bn{i}/avg_mean"] = rng.normal(0, 0.5, n).astype(f32)
        arrays[f"bn{i}/avg_var"] = rng.uniform(0.2, 3.0, n).astype(f32)
        arrays[f"bn{i}/N"] = np.array(1234)
    return arrays


def discriminator_arrays(rng, bw: int = 4, sn: bool = True, with_u: bool = True) -> dict[str, np.ndarray]:
    arrays = {}
    names = [c[0] for c in SN_CONVS] if sn else WGAN_NAMES
    shapes = [(c_out, c_in, k, k) for _, c_in, c_out, k, _ in SN_CONVS] + [(1, bw * bw * CH)]
    for name, shape in zip(names + ["l4"], shapes):
        arrays[f"{name}/W"] = rng.normal(0, 0.05, shape).astype(np.float32)
        arrays[f"{name}/b"] = rng.normal(0, 0.05, shape[0]).astype(np.float32)
        if sn and with_u:
            arrays[f"{name}/u"] = rng.normal(size=(1, shape[0])).astype(np.float32)
    return arrays


def reference_generator(a: dict[str, np.ndarray], z: np.ndarray, bw: int) -> torch.Tensor:
    t = {k: torch.from_numpy(v.astype(np.float64)) for k, v in a.items()}

    def bn(h, i):  # Chainer's BatchNormalization at test time, eps 2e-5
        shape = (1, -1) + (1,) * (h.ndim - 2)
        return ((h - t[f"bn{i}/avg_mean"].view(shape)) / torch.sqrt(t[f"bn{i}/avg_var"].view(shape) + 2e-5)
                * t[f"bn{i}/gamma"].view(shape) + t[f"bn{i}/beta"].view(shape))

    h = torch.from_numpy(z.astype(np.float64)) @ t["l0/W"].T + t["l0/b"]
    h = F.relu(bn(h, 0)).reshape(len(z), CH, bw, bw)  # C-order reshape, as F.reshape in chainer-gan-lib
    for i in (1, 2, 3):
        h = F.relu(bn(F.conv_transpose2d(h, t[f"dc{i}/W"], t[f"dc{i}/b"], stride=2, padding=1), i))
    return torch.tanh(F.conv_transpose2d(h, t["dc4/W"], t["dc4/b"], stride=1, padding=1))


def reference_discriminator(a, x: np.ndarray, names: list[str], sn: bool, slope: float = 0.2) -> torch.Tensor:
    def weight(name):
        W = a[f"{name}/W"].astype(np.float64)
        if sn:  # divide by the exact largest singular value of W reshaped to (out, -1)
            W = W / np.linalg.svd(W.reshape(W.shape[0], -1), compute_uv=False)[0]
        return torch.from_numpy(W)

    h = torch.from_numpy(x.astype(np.float64))
    for name, (_, _, _, k, stride) in zip(names, SN_CONVS):
        b = torch.from_numpy(a[f"{name}/b"].astype(np.float64))
        h = F.leaky_relu(F.conv2d(h, weight(name), b, stride=stride, padding=1), slope)
    return (h.flatten(1) @ weight("l4").T)[:, 0] + float(a["l4/b"][0])


@pytest.mark.parametrize("bw", [4, 6])
def test_generator_matches_functional_forward(tmp_path, bw):
    rng = np.random.default_rng(bw)
    a = generator_arrays(rng, bw)
    np.savez(tmp_path / "gen.npz", **a)
    G = load_chainer_dcgan_generator(tmp_path / "gen.npz")
    assert G.spec == {"arch": "dcgan_generator", "z_dim": Z_DIM, "bottom_width": bw, "ch": CH}
    assert not G.training and G.bn2.num_batches_tracked.item() == 1234
    z = rng.uniform(-1, 1, (4, Z_DIM)).astype(np.float32)
    with torch.no_grad():
        x = G(torch.from_numpy(z))
    assert x.shape == (4, 3, 8 * bw, 8 * bw)
    torch.testing.assert_close(x.double(), reference_generator(a, z, bw), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("bw,with_u", [(4, True), (6, False)])
def test_sn_discriminator_uses_exact_sigma(tmp_path, bw, with_u):
    rng = np.random.default_rng(10 + bw)
    a = discriminator_arrays(rng, bw, sn=True, with_u=with_u)  # chainer-gan-lib's SN links save no u
    np.savez(tmp_path / "dis.npz", **a)
    D = load_chainer_dcgan_discriminator(tmp_path / "dis.npz")
    assert D.spec == {"arch": "dcgan_discriminator", "bottom_width": bw, "ch": CH, "spectral_norm": True,
                      "slope": 0.2}
    names = [c[0] for c in SN_CONVS]
    with torch.no_grad():
        for name in names + ["l4"]:  # the very first forward divides by the exact sigma
            W = a[f"{name}/W"].astype(np.float64)
            sigma = np.linalg.svd(W.reshape(W.shape[0], -1), compute_uv=False)[0]
            torch.testing.assert_close(getattr(D, name).weight.double(), torch.from_numpy(W / sigma),
                                       rtol=1e-5, atol=1e-6)
    x = rng.uniform(-1, 1, (3, 3, 8 * bw, 8 * bw)).astype(np.float32)
    expected = reference_discriminator(a, x, names, sn=True)
    for mode in ("eval", "train"):  # a training-mode power iteration must not move sigma off the exact value
        getattr(D, mode)()
        with torch.no_grad():
            d = D(torch.from_numpy(x))
        assert d.shape == (3,)
        torch.testing.assert_close(d.double(), expected, rtol=1e-4, atol=1e-5)


def test_wgan_critic_layout_loads_without_spectral_norm(tmp_path):
    rng = np.random.default_rng(3)
    a = discriminator_arrays(rng, 4, sn=False)
    np.savez(tmp_path / "critic.npz", **a)
    D = load_chainer_dcgan(tmp_path / "critic.npz", "critic", slope=0.1)
    assert D.spec["spectral_norm"] is False and D.spec["slope"] == 0.1
    x = rng.uniform(-1, 1, (2, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        d = D(torch.from_numpy(x))
    torch.testing.assert_close(d.double(), reference_discriminator(a, x, WGAN_NAMES, sn=False, slope=0.1),
                               rtol=1e-4, atol=1e-5)


def test_snapshot_prefix(tmp_path):
    a = generator_arrays(np.random.default_rng(4))
    np.savez(tmp_path / "snap.npz", **{f"updater/model:gen/{k}": v for k, v in a.items()},
             **{"updater/iteration": np.array(7)})
    G = load_chainer_dcgan_generator(tmp_path / "snap.npz", prefix="updater/model:gen/")
    torch.testing.assert_close(G.dc3.bias, torch.from_numpy(a["dc3/b"]))


def _expect_error(tmp_path, arrays, kind, *needles):
    path = tmp_path / f"broken_{kind}.npz"
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError) as info:
        load_chainer_dcgan(path, kind)
    for needle in (str(path), *needles):
        assert needle in str(info.value)


def test_missing_unexpected_and_misshaped_keys_are_named(tmp_path):
    rng = np.random.default_rng(5)
    gen = generator_arrays(rng)
    _expect_error(tmp_path, {k: v for k, v in gen.items() if k != "dc2/b"}, "generator", "dc2/b")
    _expect_error(tmp_path, {k: v for k, v in gen.items() if k != "bn1/avg_var"}, "generator", "bn1/avg_var")
    _expect_error(tmp_path, {**gen, "bn3/gamma": np.ones(5, np.float32)}, "generator", "bn3/gamma")
    _expect_error(tmp_path, {**gen, "l0/W": gen["l0/W"][:-CH]}, "generator", "l0/W")  # not bw²·ch rows
    _expect_error(tmp_path, {**gen, "dc5/W": np.zeros(3, np.float32)}, "generator", "dc5/W")

    dis = discriminator_arrays(rng)
    _expect_error(tmp_path, {k: v for k, v in dis.items() if k != "c2_1/W"}, "discriminator", "c2_1/W")
    _expect_error(tmp_path, {**dis, "c1_0/W": np.zeros((CH // 4, CH // 4, 4, 4), np.float32)},
                  "discriminator", "c1_0/W")
    _expect_error(tmp_path, {**dis, "c0_1/u": np.zeros((1, 7), np.float32)}, "discriminator", "c0_1/u")
    _expect_error(tmp_path, {**dis, "bn0_1/beta": np.zeros(CH // 4, np.float32)}, "discriminator", "bn0_1/beta")
    wgan = discriminator_arrays(rng, sn=False)
    _expect_error(tmp_path, {**wgan, "c2/u": np.zeros((1, CH // 2), np.float32)}, "critic", "c2/u")
    _expect_error(tmp_path, {k: v for k, v in wgan.items() if k != "c3/b"}, "critic", "c3/b")
    _expect_error(tmp_path, {"foo/W": np.zeros(2, np.float32)}, "critic", "c0_0/W")


def test_unreadable_files_raise_checkpoint_error(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="junk.npz"):
        load_chainer_dcgan_generator(tmp_path / "junk.npz")
    np.savez(tmp_path / "pickled.npz", **{"l0/W": np.array([None], dtype=object)})
    with pytest.raises(CheckpointError, match="l0/W"):
        load_chainer_dcgan_generator(tmp_path / "pickled.npz")
