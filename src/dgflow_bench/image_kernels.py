"""Image kernels shared by the data stage and the metrics: checking an image batch, resizing reference
images to a generator's resolution, and quantising to uint8. Pure tensor functions: no protocol, no file."""

from __future__ import annotations

import torch
import torch.nn.functional as F

RESIZE_MODES = ("none", "avgpool2", "bilinear")
QUANTISATIONS = ("float", "uint8")
_RANGE_SLACK = 1e-3  # float images may overshoot [0, 255] by rounding noise only; more is a bug upstream


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
