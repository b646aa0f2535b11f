"""Import Chainer npz checkpoints (DOT's published 2-D WGAN-GP nets) into the project's MLPs.

Read with numpy (no pickle): keys ``l<k>/W`` of shape (out, in) and ``l<k>/b``, layers applied in
increasing k. Missing indices (DOT's G has l0, l1, l2, l4) are simply skipped."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from ..errors import CheckpointError  # noqa: F401  (raised here; defined light for the CLI)
from .mlp import MLP, Critic

_KEY = re.compile(r"^l(\d+)/([Wb])$")


def read_linear_layers(path: str | Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(W, b), ...] in application order, checked for consistent shapes."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:
        raise CheckpointError(f"{path} is not a readable npz checkpoint ({exc})") from exc
    layers: dict[int, dict[str, np.ndarray]] = {}
    for key, value in arrays.items():
        m = _KEY.match(key)
        if m is None:
            raise CheckpointError(f"{path}: unexpected key {key!r}; expected Chainer Linear keys like 'l0/W'")
        layers.setdefault(int(m.group(1)), {})[m.group(2)] = value
    out = []
    for idx in sorted(layers):
        if set(layers[idx]) != {"W", "b"}:
            raise CheckpointError(f"{path}: layer l{idx} lacks W or b")
        W, b = layers[idx]["W"], layers[idx]["b"]
        if W.ndim != 2 or b.shape != (W.shape[0],):
            raise CheckpointError(f"{path}: layer l{idx} has W {W.shape} and b {b.shape}")
        if out and out[-1][0].shape[0] != W.shape[1]:
            raise CheckpointError(f"{path}: layer l{idx} input {W.shape[1]} != previous output {out[-1][0].shape[0]}")
        out.append((W, b))
    if len(out) < 2:
        raise CheckpointError(f"{path}: expected at least two Linear layers, found {len(out)}")
    return out


def load_chainer_mlp(path: str | Path, kind: str, slope: float = 0.2) -> MLP:
    """An MLP (kind 'generator') or Critic (kind 'critic') holding the npz weights exactly."""
    layers = read_linear_layers(path)
    widths = {W.shape[0] for W, _ in layers[:-1]}
    if len(widths) != 1:
        raise CheckpointError(f"{path}: hidden layers of unequal width {sorted(widths)} are not supported")
    in_dim, out_dim = layers[0][0].shape[1], layers[-1][0].shape[0]
    cls = Critic if kind == "critic" else MLP
    net = cls(in_dim, widths.pop(), len(layers) - 1, out_dim, slope)
    with torch.no_grad():
        for linear, (W, b) in zip(net.layers, layers):
            linear.weight.copy_(torch.from_numpy(np.asarray(W, dtype=np.float32)))
            linear.bias.copy_(torch.from_numpy(np.asarray(b, dtype=np.float32)))
    return net
