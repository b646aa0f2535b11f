"""One table per axis of the benchmark. Adding a row of a paper table is adding one entry here (plus its
config block), not editing the stages.

- DATASETS: name -> how to build its arrays and which suite (table) it belongs to
- MODELS:   name -> GAN loss, architecture builder and latent prior
- SOURCES:  name -> where a model's weights come from (trained by the pipeline, or imported)
- METHODS:  kind -> refinement function (z0, G, d, params, rng, prior=...) -> RefinementResult
- METRICS:  suite -> metric module (prepare once per job, compute per snapshot)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class DatasetEntry:
    suite: str
    # (params, seed, out .npz) -> summary for the resolved config; the npz holds 'train' and 'heldout'
    write: Callable[[dict, int, str], dict]


@dataclass(frozen=True)
class ModelEntry:
    suite: str
    loss: str
    build: Callable[[dict, dict], tuple]  # (architecture params, data info) -> (generator, critic)
    prior: str  # latent prior: 'uniform' (U[-1, 1]) or 'normal' (N(0, I))
    default_latent_dim: int  # used unless the architecture block sets z_dim

    def latent(self, arch: dict) -> dict:
        return {"prior": self.prior, "dim": int(arch.get("z_dim", self.default_latent_dim))}


@dataclass(frozen=True)
class SourceEntry:
    trained: bool  # True: the `train` rule makes it; False: the `import_checkpoint` rule does
    description: str


def _toy2d_dataset(sampler_name: str) -> Callable[[dict, int, str], dict]:
    def write(params: dict, seed: int, out: str) -> dict:
        from .data.toy2d import TOY2D_SAMPLERS
        from .io import savez

        train_seq, heldout_seq = np.random.SeedSequence(seed).spawn(2)
        sampler = TOY2D_SAMPLERS[sampler_name]
        arrays = {"train": sampler(params["n_train"], np.random.default_rng(train_seq)),
                  "heldout": sampler(params["n_heldout"], np.random.default_rng(heldout_seq))}
        savez(out, **arrays)
        return {"shapes": {k: list(v.shape) for k, v in arrays.items()}}

    return write


def _billion_words(params: dict, seed: int, out: str) -> dict:
    from pathlib import Path

    from .data.text import ensure_corpus, prepare_text_dataset

    root = ensure_corpus(params.get("root"), params["url"], Path(out).parent / "download", params.get("sha256"))
    return prepare_text_dataset(root, out, max_lines=params["max_lines"], heldout_lines=params["heldout_lines"],
                                seed=seed, vocab_size=params["vocab_size"])


def _mlp_pair(arch: dict, info: dict) -> tuple:
    from .models.mlp import build_critic, build_generator

    g, c, dim = arch["generator"], arch["critic"], info.get("dim", 2)
    return build_generator(2, g["hidden"], g["depth"], dim), build_critic(dim, c["hidden"], c["depth"])


def _charcnn_pair(arch: dict, info: dict) -> tuple:
    from .models.text_cnn import CharCNNCritic, CharCNNGenerator

    shape = {"seq_len": info["seq_len"], "vocab_size": info["vocab_size"], "dim": arch["dim"],
             "n_blocks": arch["n_blocks"]}
    return CharCNNGenerator(z_dim=arch["z_dim"], **shape), CharCNNCritic(**shape)


DATASETS: dict[str, DatasetEntry] = {
    "25gaussians": DatasetEntry("toy2d", _toy2d_dataset("25gaussians")),
    "swissroll": DatasetEntry("toy2d", _toy2d_dataset("swissroll")),
    "billion-words": DatasetEntry("text", _billion_words),
}

MODELS: dict[str, ModelEntry] = {
    "wgan-gp": ModelEntry("toy2d", "wgan-gp", _mlp_pair, "uniform", 2),
    "wgan-gp-charcnn": ModelEntry("text", "wgan-gp", _charcnn_pair, "normal", 128),
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


# suite -> module under metrics/ defining prepare(data_file, params, cache_dir) (once per job),
# compute(dataset, samples, prepared, params) -> {name: value} (per snapshot) and metric_directions().
METRICS: dict[str, str] = {"toy2d": "toy2d_suite", "text": "text_suite"}


def metric_suite(suite: str):
    import importlib

    return importlib.import_module(f".metrics.{lookup(METRICS, suite, 'metric suite')}", __package__)


def lookup(table: dict, name: str, axis: str):
    """``table[name]`` with an error that lists the valid names."""
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown {axis} {name!r}; registered: {', '.join(sorted(table))}") from None
