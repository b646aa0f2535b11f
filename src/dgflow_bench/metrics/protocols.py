"""FID / IS evaluation protocols as data, plus the two image steps they fix (resize and quantisation).

A protocol pins everything between "images in [0, 255]" and "numbers in a table" that is not the extractor
itself: whether images are rounded to uint8 before the extractor sees them, which reference images (split, N)
and how they are brought to the generator's resolution, how many samples and IS splits.

- 'dgflow-legacy': as the DGflow paper measured (docs/method.md §5): generated images as float [0, 255],
  never rounded; CIFAR10 reference = all 60k train+test images; STL10 48 px = 100k unlabeled images,
  96 -> 48 by 2x2 average pooling (also kept as float); IS with 10 consecutive splits of 50k samples.
- 'clean': what an image saved as PNG would give: uint8 input (rounded after any resize), reference = the
  training split the generators were trained on (CIFAR10 train 50k, STL10 unlabeled 100k).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

__all__ = [
    "PROTOCOLS",
    "RESIZE_MODES",
    "QUANTISATIONS",
    "get_protocol",
    "reference_spec",
    "resize_images",
    "quantise_images",
    "as_image_tensor",
]

RESIZE_MODES = ("none", "avgpool2", "bilinear")
QUANTISATIONS = ("float", "uint8")
_RANGE_SLACK = 1e-3  # float images may overshoot [0, 255] by rounding noise only; more is a bug upstream

PROTOCOLS: dict[str, dict] = {
    "dgflow-legacy": {
        "quantisation": "float",
        "n_generated": 50_000,
        "is_splits": 10,
        "fid_feature": "pool",  # 2048-d pool3 features
        "is_feature": "probs",  # softmax of the 1008 bias-free logits, as the original IS code
        "references": {
            ("cifar10", 32): {"split": "trainval", "n_images": 60_000, "resize": "none"},
            ("stl10", 48): {"split": "unlabeled", "n_images": 100_000, "resize": "avgpool2"},
            ("stl10", 32): {"split": "unlabeled", "n_images": 100_000, "resize": "bilinear"},
        },
    },
    "clean": {
        "quantisation": "uint8",
        "n_generated": 50_000,
        "is_splits": 10,
        "fid_feature": "pool",
        "is_feature": "probs",
        "references": {
            ("cifar10", 32): {"split": "train", "n_images": 50_000, "resize": "none"},
            ("stl10", 48): {"split": "unlabeled", "n_images": 100_000, "resize": "avgpool2"},
            ("stl10", 32): {"split": "unlabeled", "n_images": 100_000, "resize": "bilinear"},
        },
    },
}


def get_protocol(name: str) -> dict:
    """A deep copy, so callers can never edit the registry by accident."""
    if name not in PROTOCOLS:
        raise KeyError(f"unknown metric protocol {name!r}; known: {sorted(PROTOCOLS)}")
    return copy.deepcopy(PROTOCOLS[name])


def reference_spec(protocol: str, dataset: str, resolution: int) -> dict:
    """The reference images a protocol prescribes for (dataset, generator resolution)."""
    refs = get_protocol(protocol)["references"]
    key = (dataset, int(resolution))
    if key not in refs:
        raise KeyError(f"protocol {protocol!r} defines no reference for {dataset} at {resolution} px; "
                       f"known: {sorted(refs)}")
    return dict(refs[key])


def as_image_tensor(images) -> torch.Tensor:
    """(N, 3, H, W) torch tensor from numpy or torch, dtype kept (uint8 stays uint8)."""
    x = torch.as_tensor(images) if not isinstance(images, torch.Tensor) else images
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected images shaped (N, 3, H, W), got {tuple(x.shape)}")
    if x.dtype != torch.uint8 and not x.is_floating_point():
        raise ValueError(f"images must be uint8 or float in [0, 255], got dtype {x.dtype}")
    return x


def resize_images(images, resize: str, resolution: int) -> torch.Tensor:
    """Bring reference images to ``resolution``; float64 out unless nothing had to be done.

    'avgpool2' is an exact 2x2 mean (96 -> 48 for STL10); 'bilinear' is torch's antialiased bilinear, the
    same kernel torchvision's Resize uses on tensors. Neither rounds: quantisation is a separate step.
    """
    x = as_image_tensor(images)
    h, w = x.shape[-2:]
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
    if resize == "none":
        if (h, w) != (resolution, resolution):
            raise ValueError(f"resize='none' but images are {h}x{w}, not {resolution}x{resolution}")
        return x
    x = x.to(torch.float64)
    if resize == "avgpool2":
        if (h, w) != (2 * resolution, 2 * resolution):
            raise ValueError(f"resize='avgpool2' needs {2 * resolution}x{2 * resolution} images, got {h}x{w}")
        return F.avg_pool2d(x, kernel_size=2)
    return F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=True)


def quantise_images(images, quantisation: str) -> torch.Tensor:
    """'float': float64, never rounded (legacy). 'uint8': round half to even, then uint8 (clean)."""
    x = as_image_tensor(images)
    if quantisation not in QUANTISATIONS:
        raise ValueError(f"quantisation must be one of {QUANTISATIONS}, got {quantisation!r}")
    if x.dtype == torch.uint8:
        return x if quantisation == "uint8" else x.to(torch.float64)
    x = x.to(torch.float64)
    if not torch.isfinite(x).all():
        raise ValueError(f"{int((~torch.isfinite(x)).sum())} non-finite pixel values")
    lo, hi = float(x.min()), float(x.max())
    if lo < -_RANGE_SLACK or hi > 255 + _RANGE_SLACK:
        raise ValueError(f"images must lie in [0, 255]; got range [{lo:.4g}, {hi:.4g}] "
                         "(map generator output in [-1, 1] with (x + 1) * 127.5)")
    x = x.clamp(0, 255)
    if quantisation == "float":
        return x
    return torch.round(x).to(torch.uint8)
