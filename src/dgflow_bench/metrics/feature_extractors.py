"""Image feature extractors for FID / IS behind one small interface.

An extractor has ``name``, ``weights_sha256`` ('random-init' for test nets), ``is_reference_weights`` (True only
for the TF "inception-2015-12-05" weights, SHA-256 prefix 6726825d), ``feature_dim``, ``num_classes``,
``library`` / ``library_version`` (what computed the features), and is called on (N, 3, H, W) images in
[0, 255] (uint8 or float) returning float64 numpy arrays: 'pool' (N, feature_dim), 'logits' (N, num_classes,
bias-free as the original IS code) and 'probs' (their softmax).

- ``TorchFidelityInception``: torch-fidelity's 'inception-v3-compat' (TF-exact resize to 299) from a local,
  hash-checked weights file. It never downloads: these machines have no internet, and a silent download would
  hide which weights produced a number.
- ``TinyRandomInception``: a seeded random conv net with the same interface, for tests and CI. Its numbers are
  not FID/IS and its name says so.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F

from dgflow_bench.io import sha256_file
from dgflow_bench.metrics.protocols import as_image_tensor

__all__ = [
    "REFERENCE_WEIGHTS_SHA256_PREFIX",
    "REFERENCE_WEIGHTS_FILENAMES",
    "WEIGHTS_CONFIG_KEY",
    "FeatureExtractor",
    "MissingInceptionWeightsError",
    "InceptionWeightsMismatchError",
    "TorchFidelityInception",
    "TinyRandomInception",
    "softmax_float64",
    "is_reference_weights_hash",
]

REFERENCE_WEIGHTS_SHA256_PREFIX = "6726825d"
# The same converted TF weights are published by both libraries under these names.
REFERENCE_WEIGHTS_FILENAMES = ("pt_inception-2015-12-05-6726825d.pth", "weights-inception-2015-12-05-6726825d.pth")
WEIGHTS_CONFIG_KEY = "evaluate.inception_weights"
RANDOM_INIT = "random-init"


def is_reference_weights_hash(sha256: str) -> bool:
    return isinstance(sha256, str) and sha256.lower().startswith(REFERENCE_WEIGHTS_SHA256_PREFIX)


@runtime_checkable
class FeatureExtractor(Protocol):
    name: str
    weights_sha256: str
    is_reference_weights: bool
    feature_dim: int
    num_classes: int
    library: str
    library_version: str

    def __call__(self, images) -> dict[str, np.ndarray]: ...


class MissingInceptionWeightsError(FileNotFoundError):
    pass


class InceptionWeightsMismatchError(ValueError):
    pass


def softmax_float64(logits) -> np.ndarray:
    """Softmax in float64, as torch-fidelity's IS does (``feature.double().softmax``)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _where_to_get_weights() -> str:
    urls = []
    try:
        from pytorch_fid.inception import FID_WEIGHTS_URL
        urls.append(FID_WEIGHTS_URL)
    except ImportError:  # pragma: no cover - both libraries are dependencies
        pass
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
        urls.append(URL_INCEPTION_V3)
    except ImportError:  # pragma: no cover
        pass
    return (f"download it on a machine with internet from one of {urls} (SHA-256 starts with "
            f"{REFERENCE_WEIGHTS_SHA256_PREFIX}), copy it here and set `{WEIGHTS_CONFIG_KEY}` to its path")


class TorchFidelityInception:
    """torch-fidelity's InceptionV3 ('inception-v3-compat': 2048 pool + 1008 bias-free logits).

    uint8 input goes through torch-fidelity's own forward; float input (the 'dgflow-legacy' protocol, never
    rounded) through ``_forward_float``, the same layer sequence minus the uint8 check.
    ``require_reference_weights=False`` admits other weight files (e.g. for tests); such an extractor reports
    ``is_reference_weights = False`` and metric names flag it.
    """

    INPUT_SIZE = 299
    _LAYERS = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
               "MaxPool_2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
               "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "AvgPool")

    def __init__(self, weights_path, *, device=None, batch_size: int = 64, require_reference_weights: bool = True):
        if weights_path is None or str(weights_path).strip() == "":
            raise MissingInceptionWeightsError(
                f"no Inception weights path given (config key `{WEIGHTS_CONFIG_KEY}`); FID/IS need the TF "
                f"inception-2015-12-05 weights and will not download them: {_where_to_get_weights()}")
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise MissingInceptionWeightsError(
                f"Inception weights file {path} (config key `{WEIGHTS_CONFIG_KEY}`) does not exist; "
                f"{_where_to_get_weights()}")
        sha = sha256_file(path)  # before torch.load: never unpickle a file we have not identified
        if require_reference_weights and not is_reference_weights_hash(sha):
            raise InceptionWeightsMismatchError(
                f"Inception weights file {path} (config key `{WEIGHTS_CONFIG_KEY}`) has SHA-256 {sha}, expected "
                f"one starting with {REFERENCE_WEIGHTS_SHA256_PREFIX} (TF inception-2015-12-05 as "
                f"{' / '.join(REFERENCE_WEIGHTS_FILENAMES)}); refusing to compute FID/IS with other weights")
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        model = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                            feature_extractor_weights_path=str(path))
        self._init_from_model(model, sha, device=device, batch_size=batch_size)
        self.weights_path = str(path)

    @classmethod
    def from_loaded_model(cls, model, weights_sha256: str, *, device=None, batch_size: int = 64):
        """Wrap an already built torch-fidelity model (tests build one with random weights)."""
        self = cls.__new__(cls)
        self._init_from_model(model, weights_sha256, device=device, batch_size=batch_size)
        self.weights_path = None
        return self

    def _init_from_model(self, model, sha: str, *, device, batch_size: int) -> None:
        import torch_fidelity

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self._model = model.to(self.device).eval().requires_grad_(False)
        self.weights_sha256 = sha
        self.is_reference_weights = is_reference_weights_hash(sha)
        self.name = "torch-fidelity-inception-v3-compat"
        self.feature_dim, self.num_classes = 2048, 1008
        self.library, self.library_version = "torch-fidelity", torch_fidelity.__version__
        self.batch_size = int(batch_size)

    @torch.no_grad()
    def _forward_float(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

        m = self._model
        x = x.to(m.feature_extractor_internal_dtype)
        x = interpolate_bilinear_2d_like_tensorflow1x(x, size=(self.INPUT_SIZE,) * 2, align_corners=False)
        x = (x - 128) / 128
        for layer in self._LAYERS:
            x = getattr(m, layer)(x)
        x = torch.flatten(x, 1)
        return x.to(torch.float32), x.mm(m.fc.weight.T).to(torch.float32)

    @torch.no_grad()
    def __call__(self, images) -> dict[str, np.ndarray]:
        x = as_image_tensor(images)
        pools, logits = [], []
        for start in range(0, x.shape[0], self.batch_size):
            batch = x[start:start + self.batch_size].to(self.device)
            pool, logit = self._model(batch) if batch.dtype == torch.uint8 else self._forward_float(batch)
            pools.append(pool.double().cpu().numpy())
            logits.append(logit.double().cpu().numpy())
        logits_all = np.concatenate(logits) if logits else np.zeros((0, self.num_classes))
        pool_all = np.concatenate(pools) if pools else np.zeros((0, self.feature_dim))
        return {"pool": pool_all, "logits": logits_all, "probs": softmax_float64(logits_all)}


class TinyRandomInception:
    """Seeded random-weight conv net with the extractor interface; weights come from numpy's RandomState so
    they are the same on every torch version. Runs in float64 so features do not depend on the batch size.

    resize to ``input_size`` (bilinear) -> (x - 128) / 128 -> 3 stride-(1, 2, 2) 3x3 ReLU convs -> global mean
    ('pool', non-negative like Inception's pool3) -> bias-free linear ('logits').
    """

    def __init__(self, seed: int = 0, feature_dim: int = 64, num_classes: int = 10, input_size: int = 16):
        from dgflow_bench import __version__

        rng = np.random.RandomState(seed)
        widths = (3, 16, 32, int(feature_dim))
        self._convs = []
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            w = rng.standard_normal((c_out, c_in, 3, 3)) * np.sqrt(2.0 / (c_in * 9))  # He init keeps ReLUs alive
            b = rng.standard_normal(c_out) * 0.1
            self._convs.append((torch.from_numpy(w), torch.from_numpy(b)))
        fc = rng.standard_normal((int(feature_dim), int(num_classes))) * 3.0 / np.sqrt(feature_dim)
        self._fc = torch.from_numpy(fc)  # scale 3: spread logits, so IS is well above 1
        self.seed, self.input_size = int(seed), int(input_size)
        self.feature_dim, self.num_classes = int(feature_dim), int(num_classes)
        self.name = f"tiny-random-inception-seed{seed}-d{feature_dim}-k{num_classes}-in{input_size}"
        self.weights_sha256 = RANDOM_INIT
        self.is_reference_weights = False
        self.library, self.library_version = "dgflow_bench", __version__

    def parameters_sha256(self) -> str:
        """Hash of the actual parameters, for anyone who wants more than the seed in the name."""
        h = hashlib.sha256()
        for w, b in self._convs:
            h.update(w.numpy().tobytes())
            h.update(b.numpy().tobytes())
        h.update(self._fc.numpy().tobytes())
        return h.hexdigest()

    @torch.no_grad()
    def __call__(self, images) -> dict[str, np.ndarray]:
        x = as_image_tensor(images).to(torch.float64)
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size,) * 2, mode="bilinear", align_corners=False)
        x = (x - 128.0) / 128.0
        for stride, (w, b) in zip((1, 2, 2), self._convs):
            x = F.relu(F.conv2d(x, w, b, stride=stride, padding=1))
        pool = x.mean(dim=(2, 3))
        logits = pool @ self._fc
        return {"pool": pool.numpy(), "logits": logits.numpy(), "probs": softmax_float64(logits.numpy())}
