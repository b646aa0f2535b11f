"""Data you bring: two kinds of dataset a config declares itself (registry.DATASET_KINDS, catalog.declare).

    datasets:
      my-faces: {kind: image-folder, path: data/faces, resolution: 32}   # image suite: FID / IS ('clean')
      my-points: {kind: points, path: data/points.npy}                   # 2-D suite: KDE / energy

Each block becomes a DatasetEntry under its own name: the data stage reads the folder / file (data/image_folder.py,
data/points.py) and writes the arrays every dataset of its suite writes; the plan-time check reads headers
only. The config blocks are schemas/definitions/brought_data.yaml."""

from __future__ import annotations

from ..data.image_rows import ImageArchive, ImageDataset
from ..registry import DATASET_KINDS, DeclaredKind
from .base import DatasetEntry

# the suites by name, not by importing their modules here: catalog imports suites/ in sorted order, and the
# registration order (what the configuration reference lists first) must not depend on this module
IMAGES, TOY2D = "images", "toy2d"

IMAGE_FOLDER, POINTS = "image-folder", "points"
_SCHEMAS = {IMAGE_FOLDER: {"$ref": "#/definitions/image_folder_dataset"},
            POINTS: {"$ref": "#/definitions/points_dataset"}}


def _not_an_archive(*_):
    raise ValueError("an image-folder dataset is read by data/image_folder.py, never as an archive")


def image_folder_row(name: str, block: dict) -> ImageDataset:
    """The row the image metrics find the dataset by (data/image_rows.image_datasets): its own source name and
    no fixed reference sets, so FID compares with the stored array 'clean' names and the reference size shows
    in the metric name (e.g. fid50k_my-faces-train-ref90_clean)."""
    archive = ImageArchive(source=name, url="", folder="", split_files={"train": ()}, native_size=0,
                           count=_not_an_archive, chunks=_not_an_archive)
    # the block may not be validated yet (declare runs before the schema): read with .get, defaults unfilled;
    # nothing reads resolution / resize of this row but the reference lookup, which finds no set here anyway
    return ImageDataset(archive, resolution=block.get("resolution"), resize=block.get("resize"),
                        default_splits=("train",))


def _image_folder_writer(name: str):
    def write(params: dict, seed: int, out: str) -> dict:
        from ..data.image_folder import write_image_folder_dataset

        return write_image_folder_dataset(name, params, seed, out)

    return write


def _check_images(spec: dict, key: str) -> None:
    from ..data.image_folder import check_images

    check_images(spec["path"], key, resolution=spec["resolution"], array=spec["array"],
                 heldout_size=spec["heldout_size"])


def _points_writer(name: str):
    def write(params: dict, seed: int, out: str) -> dict:
        from ..data.points import write_points_dataset

        return write_points_dataset(name, params, seed, out)

    return write


def _check_points(spec: dict, key: str) -> None:
    from ..data.points import check_points

    check_points(spec["path"], key, heldout_size=spec["heldout_size"])


DATASET_KINDS.register(IMAGE_FOLDER, DeclaredKind(
    _SCHEMAS[IMAGE_FOLDER],
    lambda name, block: DatasetEntry(IMAGES, _image_folder_writer(name), _SCHEMAS[IMAGE_FOLDER],
                                     check_root=_check_images, row=image_folder_row(name, block)),
    "a folder of PNG / JPEG images or one .npz array, for the image suite (FID / IS, 'clean' protocol)"))
DATASET_KINDS.register(POINTS, DeclaredKind(
    _SCHEMAS[POINTS],
    lambda name, block: DatasetEntry(TOY2D, _points_writer(name), _SCHEMAS[POINTS], check_root=_check_points),
    "an .npy file of (N, 2) points, for the 2-D suite (KDE log-likelihood, energy distance)"))
