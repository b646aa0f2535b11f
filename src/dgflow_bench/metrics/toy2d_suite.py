"""The 2-D suite's metric entry point: held-out data loaded once, the metrics of metrics/toy2d.py per
snapshot."""

from __future__ import annotations

from typing import Iterable

import numpy as np

from .toy2d import compute_toy2d_metrics, metric_directions  # noqa: F401  (re-exported for the report)


def prepare(data_file: str, params: dict, cache_dir: str) -> dict:
    with np.load(data_file, allow_pickle=False) as data:
        return {"heldout": data["heldout"]}


def compute(dataset: str, batches: Iterable[np.ndarray], n_samples: int, prepared: dict,
            params: dict) -> dict[str, float]:
    return compute_toy2d_metrics(dataset, np.concatenate(list(batches)), prepared["heldout"], kde_bandwidth=params["kde_bandwidth"],
                                 mode_min_share=params["mode_min_share"])
