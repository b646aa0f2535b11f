"""pytorch-fid's InceptionV3 as a second FID engine, for the optional cross-check.

It reads the same weights file as torch-fidelity (pt_inception-2015-12-05-6726825d.pth) but resizes to 299
px with plain bilinear interpolation instead of TF1's, so its FID differs slightly from torch-fidelity's; the
cross-check writes both numbers so a user sees the size of that difference. pytorch-fid only knows how to
download the file: its module-level ``load_state_dict_from_url`` is replaced, for the one call that builds
the network, by a local ``torch.load(weights_only=True)`` of the hash-checked file.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import numpy as np
import torch

from ..io import sha256_file
from .feature_extractors import (REFERENCE_WEIGHTS_SHA256_PREFIX, WEIGHTS_CONFIG_KEY,
                                 InceptionWeightsMismatchError, MissingInceptionWeightsError,
                                 is_reference_weights_hash)
from .protocols import as_image_tensor


def _build_network(state_dict: dict):
    from pytorch_fid import inception

    with mock.patch.object(inception, "load_state_dict_from_url", lambda *args, **kwargs: state_dict):
        return inception.InceptionV3([inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=True,
                                     normalize_input=True, use_fid_inception=True)


class PytorchFidInception:
    """2048-d pool3 features of pytorch-fid's FID Inception; no logits (the cross-check is FID only)."""

    name = "pytorch-fid-inception-v3"
    feature_dim = 2048

    def __init__(self, weights_path, *, device=None, batch_size: int = 64, require_reference_weights: bool = True):
        path = Path(str(weights_path or "")).expanduser()
        if not path.is_file():
            raise MissingInceptionWeightsError(f"Inception weights file {path} (config key "
                                               f"`{WEIGHTS_CONFIG_KEY}`) does not exist")
        sha = sha256_file(path)  # identified before anything is unpickled
        if require_reference_weights and not is_reference_weights_hash(sha):
            raise InceptionWeightsMismatchError(f"{path} has SHA-256 {sha}, expected {REFERENCE_WEIGHTS_SHA256_PREFIX}...")
        self._init(torch.load(path, map_location="cpu", weights_only=True), sha, device, batch_size)

    def _init(self, state_dict: dict, sha: str, device, batch_size: int) -> None:
        import pytorch_fid

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self._model = _build_network(state_dict).to(self.device).eval().requires_grad_(False)
        self.weights_sha256, self.is_reference_weights = sha, is_reference_weights_hash(sha)
        self.library, self.library_version = "pytorch-fid", pytorch_fid.__version__
        self.batch_size = int(batch_size)

    @classmethod
    def from_state_dict(cls, state_dict: dict, weights_sha256: str, *, device=None, batch_size: int = 64):
        """Tests build one from random weights."""
        self = cls.__new__(cls)
        self._init(state_dict, weights_sha256, device, batch_size)
        return self

    @torch.no_grad()
    def __call__(self, images) -> dict[str, np.ndarray]:
        x = as_image_tensor(images)
        pools = []
        for start in range(0, x.shape[0], self.batch_size):
            batch = x[start:start + self.batch_size].to(self.device, torch.float32) / 255.0  # pytorch-fid: [0, 1]
            pools.append(self._model(batch)[0].flatten(1).double().cpu().numpy())
        return {"pool": np.concatenate(pools) if pools else np.zeros((0, self.feature_dim))}
