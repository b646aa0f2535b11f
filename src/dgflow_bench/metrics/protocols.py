"""FID / IS evaluation protocols as data, plus the two image steps they fix (resize and quantisation).

A protocol pins everything between "images in [0, 255]" and "numbers in a table" that is not the extractor
itself: whether images are rounded to uint8 before the extractor sees them, which reference images (split, N)
and how they are brought to the generator's resolution, how many samples and IS splits.

- 'dgflow-legacy': as the DGflow paper measured (docs/method.md §5): generated images as float [0, 255],
  never rounded; IS with 10 consecutive splits of 50k samples.
- 'clean': what an image saved as PNG would give: uint8 input (rounded after any resize).
Which real images each protocol compares with is a fact of the dataset: its row's ``references``
(data/image_rows.py: e.g. CIFAR10's legacy reference is all 60k train + test images, STL10 48 px all 100k
unlabeled images pooled 96 -> 48 in float; 'clean' takes the training split the generators were trained on).
"""

from __future__ import annotations

import copy

from ..data.image_rows import reference_set
# the image kernels live below both the data stage and the metrics (image_kernels.py); the protocols name them
from ..image_kernels import QUANTISATIONS, RESIZE_MODES, as_image_tensor, quantise_images, resize_images  # noqa: F401

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
    },
    "clean": {
        "quantisation": "uint8",
        "n_generated": 50_000,
        "is_splits": 10,
        "fid_feature": "pool",
        "is_feature": "probs",
    },
}


def get_protocol(name: str) -> dict:
    """A deep copy, so callers can never edit the registry by accident."""
    if name not in PROTOCOLS:
        raise KeyError(f"unknown metric protocol {name!r}; known: {sorted(PROTOCOLS)}")
    return copy.deepcopy(PROTOCOLS[name])


def reference_spec(protocol: str, dataset: str, resolution: int) -> dict:
    """The reference images a protocol prescribes for an archive's images (``dataset``: its source name, e.g.
    'cifar10') at the generator's resolution, from the dataset rows: {'split', 'n_images', 'resize'}."""
    get_protocol(protocol)  # an unknown protocol is named as such
    found = reference_set(protocol, dataset, resolution)
    if found is None:
        raise KeyError(f"protocol {protocol!r} defines no reference for {dataset} at {resolution} px (no image "
                       f"dataset row of source {dataset!r} at {resolution} px has one)")
    return {"split": found.split, "n_images": found.n_images, "resize": found.resize}
