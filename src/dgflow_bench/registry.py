"""One table per axis of the benchmark. Adding a row of a paper table is adding one entry here (plus its
config block), not editing the stages.

- DATASETS: name -> how to build its arrays and which suite (table) it belongs to
- MODELS:   name -> GAN loss, architecture builder and latent prior
- SOURCES:  name -> where a model's weights come from (trained by the pipeline, or imported)
- METHODS:  kind -> refinement function (z0, G, d, params, rng, prior=...) -> RefinementResult
- METRICS:  suite -> metric function over samples at one snapshot
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class DatasetEntry:
    suite: str
    make: Callable[[dict, int], dict[str, np.ndarray]]  # (params, seed) -> {'train': ..., 'heldout': ...}


@dataclass(frozen=True)
class ModelEntry:
    loss: str
    build: Callable[[dict], tuple]  # architecture params -> (generator, critic)
    latent: dict = field(default_factory=dict)  # {'prior': ..., 'dim': ...}


@dataclass(frozen=True)
class SourceEntry:
    trained: bool  # True: the `train` rule makes it; False: the `import_checkpoint` rule does
    description: str


def _toy2d_dataset(sampler_name: str) -> Callable[[dict, int], dict[str, np.ndarray]]:
    def make(params: dict, seed: int) -> dict[str, np.ndarray]:
        from .data.toy2d import TOY2D_SAMPLERS

        train_seq, heldout_seq = np.random.SeedSequence(seed).spawn(2)
        sampler = TOY2D_SAMPLERS[sampler_name]
        return {
            "train": sampler(params["n_train"], np.random.default_rng(train_seq)),
            "heldout": sampler(params["n_heldout"], np.random.default_rng(heldout_seq)),
        }

    return make


def _mlp_pair(arch: dict) -> tuple:
    from .models.mlp import build_critic, build_generator

    g, c = arch["generator"], arch["critic"]
    return build_generator(2, g["hidden"], g["depth"], 2), build_critic(2, c["hidden"], c["depth"])


DATASETS: dict[str, DatasetEntry] = {
    "25gaussians": DatasetEntry("toy2d", _toy2d_dataset("25gaussians")),
    "swissroll": DatasetEntry("toy2d", _toy2d_dataset("swissroll")),
}

MODELS: dict[str, ModelEntry] = {
    "wgan-gp": ModelEntry("wgan-gp", _mlp_pair, {"prior": "uniform", "dim": 2}),
}

SOURCES: dict[str, SourceEntry] = {
    "trained": SourceEntry(True, "trained by the pipeline from the config's recipe"),
    "dot-pretrained": SourceEntry(False, "DOT's published Chainer checkpoints (Tanaka 2019)"),
}


def _method(module: str, func: str) -> Callable:
    def run(*args, **kwargs):
        import importlib

        return getattr(importlib.import_module(f".refine.{module}", __package__), func)(*args, **kwargs)

    return run


METHODS: dict[str, Callable] = {
    "base": _method("base", "run_base"),
    "dgflow": _method("dgflow", "run_dgflow"),
    "dot": _method("dot", "run_dot"),
    "ddls": _method("ddls", "run_ddls"),
}


def _toy2d_metrics(dataset: str, samples: np.ndarray, heldout: np.ndarray, params: dict) -> dict[str, float]:
    from .metrics.toy2d import compute_toy2d_metrics

    return compute_toy2d_metrics(dataset, samples, heldout, kde_bandwidth=params["kde_bandwidth"],
                                 mode_min_share=params["mode_min_share"])


METRICS: dict[str, Callable] = {"toy2d": _toy2d_metrics}


def lookup(table: dict, name: str, axis: str):
    """``table[name]`` with an error that lists the valid names."""
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown {axis} {name!r}; registered: {', '.join(sorted(table))}") from None
