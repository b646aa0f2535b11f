"""The 2-D suite's metric entry point: held-out data loaded once, the metrics of metrics/toy2d.py per
snapshot."""

from __future__ import annotations

from typing import Iterable

import numpy as np

from .toy2d import compute_toy2d_metrics, mean_pairwise_distance, metric_directions  # noqa: F401


def prepare(data_file: str, params: dict, cache_dir: str) -> dict:
    with np.load(data_file, allow_pickle=False) as data:
        heldout = data["heldout"]
    # the held-out set's own energy term is the same for every snapshot: once per job
    return {"heldout": heldout, "heldout_self_distance": mean_pairwise_distance(heldout, heldout)}


def compute(dataset: str, batches: Iterable[np.ndarray], n_samples: int, prepared: dict,
            params: dict) -> dict[str, float]:
    return compute_toy2d_metrics(dataset, np.concatenate(list(batches)), prepared["heldout"],
                                 kde_bandwidth=params["kde_bandwidth"], mode_min_share=params["mode_min_share"],
                                 heldout_self_distance=prepared["heldout_self_distance"])
