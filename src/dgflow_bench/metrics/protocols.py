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

# the image kernels live below both the data stage and the metrics (imaging.py); the protocols name them
from ..imaging import QUANTISATIONS, RESIZE_MODES, as_image_tensor, quantise_images, resize_images  # noqa: F401

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
