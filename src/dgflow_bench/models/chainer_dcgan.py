"""Import Chainer npz weights of chainer-gan-lib's DCGAN family (as published by DOT and the DGflow release)
into dcgan.py's nets.

Chainer's ``serializers.save_npz(path, link)`` writes one array per parameter / persistent value, keyed
``<link name>/<attribute>``; a trainer snapshot nests them under a prefix such as ``updater/model:gen/``
(pass it as ``prefix``). Layouts read here (chainer-gan-lib common/net.py, DOT model.py):

- DCGANGenerator: ``l0/W`` (bw²·ch, z) and ``l0/b`` (Linear W is (out, in), as torch's);
  ``dc1..dc4/W`` (in, out, kh, kw) and ``/b`` (Deconvolution2D W is laid out as torch's ConvTranspose2d);
  ``bn0..bn3/gamma, beta, avg_mean, avg_var`` and optionally ``/N`` (the batch count, a scalar).
- SNDCGANDiscriminator: ``c0_0, c0_1, c1_0, c1_1, c2_0, c2_1, c3_0, l4`` each with ``W`` and ``b``.
  Chainer keeps the raw, un-normalised W. chainer-gan-lib's SN links hold ``u`` as a plain attribute (not
  saved); sngan_projection-style links persist it as ``<link>/u`` of shape (1, out). Either is accepted and
  ``u`` is ignored: sigma is set exactly at load (dcgan.set_exact_spectral_norm).
- WGANDiscriminator (the WGAN-GP critic, no spectral norm): ``c0, c1, c1_0, c2, c2_0, c3, c3_0, l4``,
  renamed to the SN-DCGAN names above (same shapes, same order).

Anything missing, unexpected or mis-shaped raises CheckpointError naming the file and the key. Nets come
back in eval mode (BatchNorm uses the stored statistics); call ``.train()`` to reproduce the official
code's per-batch statistics."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .chainer_npz import CheckpointError
from .dcgan import DCGANGenerator, SNDCGANDiscriminator, set_exact_spectral_norm

GENERATOR_LINEAR_AND_DECONVS = ("l0", "dc1", "dc2", "dc3", "dc4")
GENERATOR_BATCHNORMS = ("bn0", "bn1", "bn2", "bn3")
SN_DISCRIMINATOR_LINKS = ("c0_0", "c0_1", "c1_0", "c1_1", "c2_0", "c2_1", "c3_0", "l4")
# chainer-gan-lib WGANDiscriminator link -> the SN-DCGAN link of the same shape and position
WGAN_TO_SN_NAMES = {"c0": "c0_0", "c1": "c0_1", "c1_0": "c1_0", "c2": "c1_1", "c2_0": "c2_0",
                    "c3": "c2_1", "c3_0": "c3_0", "l4": "l4"}


def read_chainer_npz(path: str | Path, prefix: str = "") -> dict[str, np.ndarray]:
    """{key without prefix: array} for the keys under ``prefix``; read with numpy, never unpickling."""
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise CheckpointError(f"{path} is not a readable npz checkpoint ({exc})") from exc
    arrays = {}
    with npz:
        for key in npz.files:
            if not key.startswith(prefix):
                continue
            try:
                arrays[key[len(prefix):]] = npz[key]
            except Exception as exc:  # e.g. an object array (an uninitialised Chainer parameter)
                raise CheckpointError(f"{path}: key {key!r} cannot be read without pickle ({exc})") from exc
    if not arrays:
        raise CheckpointError(f"{path}: no keys under prefix {prefix!r}")
    return arrays


class _Keys:
    """Takes arrays out of a checkpoint by key, checking shapes, so that leftovers are the unexpected keys."""

    def __init__(self, arrays: dict[str, np.ndarray], path):
        self.arrays, self.path = dict(arrays), path

    def peek(self, key: str, ndim: int) -> tuple[int, ...]:
        if key not in self.arrays:
            raise CheckpointError(f"{self.path}: missing key {key!r}")
        shape = self.arrays[key].shape
        if len(shape) != ndim:
            raise CheckpointError(f"{self.path}: key {key!r} has shape {shape}, expected {ndim} dimensions")
        return shape

    def take(self, key: str, shape: tuple[int, ...], optional: bool = False) -> torch.Tensor | None:
        if key not in self.arrays:
            if optional:
                return None
            raise CheckpointError(f"{self.path}: missing key {key!r}")
        value = self.arrays.pop(key)
        if tuple(value.shape) != tuple(shape):
            raise CheckpointError(f"{self.path}: key {key!r} has shape {value.shape}, expected {tuple(shape)}")
        if not np.issubdtype(value.dtype, np.number):
            raise CheckpointError(f"{self.path}: key {key!r} has non-numeric dtype {value.dtype}")
        return torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))

    def copy_into(self, key: str, target: torch.Tensor) -> None:
        with torch.no_grad():
            target.copy_(self.take(key, tuple(target.shape)))

    def drop_power_iteration_vector(self, key: str, out: int) -> None:
        """An SN link's stored ``u`` is optional and superseded by the exact SVD; only its shape is checked."""
        if key in self.arrays:
            u = self.arrays.pop(key)
            if tuple(u.shape) not in ((1, out), (out,)):
                raise CheckpointError(f"{self.path}: key {key!r} has shape {u.shape}, expected (1, {out})")

    def finish(self) -> None:
        if self.arrays:
            raise CheckpointError(f"{self.path}: unexpected key(s) {sorted(self.arrays)}")


def _bottom_width(features: int, ch: int, key: str, path) -> int:
    bw = math.isqrt(max(features // max(ch, 1), 0))
    if ch < 8 or ch % 8 or bw < 1 or bw * bw * ch != features:
        raise CheckpointError(f"{path}: key {key!r} has {features} features, not bw²·ch for ch={ch}")
    return bw


def load_chainer_dcgan_generator(path: str | Path, prefix: str = "") -> DCGANGenerator:
    """chainer-gan-lib DCGANGenerator weights -> DCGANGenerator (eval mode); z_dim, bw and ch from the shapes."""
    keys = _Keys(read_chainer_npz(path, prefix), path)
    features, z_dim = keys.peek("l0/W", 2)
    ch = keys.peek("dc1/W", 4)[0]
    net = DCGANGenerator(z_dim, _bottom_width(features, ch, "l0/W", path), ch)
    for link in GENERATOR_LINEAR_AND_DECONVS:
        layer = getattr(net, link)
        keys.copy_into(f"{link}/W", layer.weight)
        keys.copy_into(f"{link}/b", layer.bias)
    for link in GENERATOR_BATCHNORMS:
        bn: nn.modules.batchnorm._BatchNorm = getattr(net, link)
        keys.copy_into(f"{link}/gamma", bn.weight)
        keys.copy_into(f"{link}/beta", bn.bias)
        keys.copy_into(f"{link}/avg_mean", bn.running_mean)
        keys.copy_into(f"{link}/avg_var", bn.running_var)
        count = keys.take(f"{link}/N", (), optional=True)
        if count is not None:
            bn.num_batches_tracked.fill_(int(count))
    keys.finish()
    return net.eval()


def detect_discriminator_layout(arrays: dict[str, np.ndarray], path) -> str:
    """'sn' for chainer-gan-lib's SNDCGANDiscriminator names, 'wgan' for its WGANDiscriminator names."""
    sn, wgan = "c0_0/W" in arrays, "c0/W" in arrays
    if sn == wgan:
        raise CheckpointError(f"{path}: expected key 'c0_0/W' (SN-DCGAN discriminator) or 'c0/W' (WGAN-GP "
                              f"critic), found {'both' if sn else 'neither'}")
    return "sn" if sn else "wgan"


def load_chainer_dcgan_discriminator(path: str | Path, slope: float = 0.2,
                                     prefix: str = "") -> SNDCGANDiscriminator:
    """SN-DCGAN discriminator (spectral norm, exact sigma) or WGAN-GP critic (no spectral norm), chosen by the
    file's key names; bw and ch from the shapes. Returned in eval mode."""
    arrays = read_chainer_npz(path, prefix)
    layout = detect_discriminator_layout(arrays, path)
    # (link name in the file, torch attribute); error messages use the file's names
    if layout == "sn":
        links = [(name, name) for name in SN_DISCRIMINATOR_LINKS]
    else:
        links = list(WGAN_TO_SN_NAMES.items())
    keys = _Keys(arrays, path)
    ch = keys.peek("c3_0/W", 4)[0]  # c3_0 is named alike in both layouts
    features = keys.peek("l4/W", 2)[1]
    net = SNDCGANDiscriminator(_bottom_width(features, ch, "l4/W", path), ch, spectral_norm=(layout == "sn"),
                               slope=slope)
    for link, attr in links:
        layer = getattr(net, attr)
        if layout == "sn":
            raw = layer.parametrizations.weight.original  # Chainer stores the un-normalised W
            keys.copy_into(f"{link}/W", raw)
            keys.drop_power_iteration_vector(f"{link}/u", raw.shape[0])
        else:
            keys.copy_into(f"{link}/W", layer.weight)
        keys.copy_into(f"{link}/b", layer.bias)
    keys.finish()
    if layout == "sn":
        set_exact_spectral_norm(net)
    return net.eval()


def load_chainer_dcgan(path: str | Path, kind: str, slope: float = 0.2, prefix: str = "") -> nn.Module:
    """kind 'generator' -> DCGANGenerator; 'discriminator' or 'critic' -> SNDCGANDiscriminator."""
    if kind == "generator":
        return load_chainer_dcgan_generator(path, prefix)
    if kind in ("discriminator", "critic"):
        return load_chainer_dcgan_discriminator(path, slope, prefix)
    raise ValueError(f"kind must be 'generator', 'discriminator' or 'critic', got {kind!r}")
