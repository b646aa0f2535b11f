""".npz files whose bytes depend on their arrays alone: ``numpy.savez`` stamps every member with the time of
writing, so the same data written twice would hash differently. Here each member carries one fixed date, and
members are written in the order given, so a data file and the hash its record holds repeat exactly."""

from __future__ import annotations

import os
import zipfile

import numpy as np

from ..io import atomic_path

_FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold


def savez_stable(path: str | os.PathLike, **arrays) -> None:
    """Write ``arrays`` as an uncompressed .npz (what ``np.load`` reads) atomically, each member dated
    _FIXED_DATE. Object arrays are refused, as ``np.load(..., allow_pickle=False)`` would refuse them."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, value in arrays.items():
            value = np.asanyarray(value)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_DATE)
            info.external_attr = 0o644 << 16  # rw-r--r--, fixed too
            with archive.open(info, "w", force_zip64=True) as member:  # zip64 as numpy: arrays over 2 GB
                np.lib.format.write_array(member, value, allow_pickle=False)
