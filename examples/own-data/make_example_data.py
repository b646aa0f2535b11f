"""Writes the example data that config.yaml names, next to it: images/ (100 PNGs of coloured discs, 40x48 px:
non-square, so they are centre-cropped to 40 px, then resized to 32) and points.npy (2,000 points on a
noisy ring). Replace them with your own folder and file.

    python examples/own-data/make_example_data.py [output folder]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image


def write_images(folder: Path, n: int = 100, height: int = 40, width: int = 48, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[:height, :width]
    for i in range(n):
        cy, cx, r = rng.uniform(10, height - 10), rng.uniform(10, width - 10), rng.uniform(5, 12)
        disc = (y - cy) ** 2 + (x - cx) ** 2 <= r ** 2
        image = np.full((height, width, 3), 255, dtype=np.uint8)
        image[disc] = rng.integers(0, 256, size=3, dtype=np.uint8)
        Image.fromarray(image).save(folder / f"disc_{i:03d}.png")


def write_points(path: Path, n: int = 2000, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, 2 * np.pi, n)
    radius = 1.0 + 0.05 * rng.standard_normal(n)
    np.save(path, np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1))


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    write_images(out / "images")
    write_points(out / "points.npy")
    print(f"wrote {out / 'images'}/ and {out / 'points.npy'}")
