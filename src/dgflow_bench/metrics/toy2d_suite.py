"""The 2-D suite's metric entry point: held-out data loaded once, the metrics of metrics/toy2d.py per
snapshot. Points you bring (a data file whose manifest says ``kind: points``) get the metrics that need no
known modes, and 'n/a' with the reason for the others."""

from __future__ import annotations

import json
from typing import Iterable

import numpy as np

from .toy2d import (compute_free_points_metrics, compute_toy2d_metrics, mean_pairwise_distance,  # noqa: F401
                    metric_directions)


def prepare(data_file: str, params: dict, cache_dir: str) -> dict:
    with np.load(data_file, allow_pickle=False) as data:
        heldout = data["heldout"]
        # the built-in 2-D data files hold no manifest; a points file you bring says its kind there
        kind = json.loads(str(data["manifest"])).get("kind") if "manifest" in data else None
    # the held-out set's own energy term is the same for every snapshot: once per job
    return {"heldout": heldout, "heldout_self_distance": mean_pairwise_distance(heldout, heldout),
            "free_points": kind == "points"}


def compute(dataset: str, batches: Iterable[np.ndarray], n_samples: int, prepared: dict,
            params: dict) -> dict[str, float | str]:
    if prepared.get("free_points"):
        return compute_free_points_metrics(np.concatenate(list(batches)), prepared["heldout"],
                                           kde_bandwidth=params["kde_bandwidth"],
                                           mode_min_share=params["mode_min_share"],
                                           heldout_self_distance=prepared["heldout_self_distance"])
    return compute_toy2d_metrics(dataset, np.concatenate(list(batches)), prepared["heldout"],
                                 kde_bandwidth=params["kde_bandwidth"], mode_min_share=params["mode_min_share"],
                                 heldout_self_distance=prepared["heldout_self_distance"])
