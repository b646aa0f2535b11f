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


def _image_dataset(name: str) -> Callable[[dict, int, str], dict]:
    def write(params: dict, seed: int, out: str) -> dict:
        from pathlib import Path

        from .data import images

        source = images.DATASETS[name][0]
        md5 = {"cifar10": images.CIFAR10_MD5, "stl10": images.STL10_MD5}[source]
        # a local root is used as is (never downloads); null downloads params['url'] next to the data once
        folder = images.ensure_archive(params.get("root"), params["url"], Path(out).parent / "download", md5,
                                       config_key=f"datasets.{name}.root")
        kwargs = {"splits": params.get("splits"), "seed": seed}
        if source == "stl10":
            kwargs.update(heldout_size=params["heldout_size"], heldout_in_train=params["heldout_in_train"])
        return images.prepare_image_dataset(name, folder, out, **kwargs)

    return write


def _mlp_pair(arch: dict, info: dict) -> tuple:
    from .models.mlp import build_critic, build_generator

    g, c, dim = arch["generator"], arch["critic"], info.get("dim", 2)
    return build_generator(2, g["hidden"], g["depth"], dim), build_critic(dim, c["hidden"], c["depth"])


def _charcnn_pair(arch: dict, info: dict) -> tuple:
    from .models.text_cnn import CharCNNCritic, CharCNNGenerator

    shape = {"seq_len": info["seq_len"], "vocab_size": info["vocab_size"], "dim": arch["dim"],
             "n_blocks": arch["n_blocks"]}
    return CharCNNGenerator(z_dim=arch["z_dim"], **shape), CharCNNCritic(**shape)


def _dcgan_pair(critic: str) -> Callable[[dict, dict], tuple]:
    """chainer-gan-lib's DCGAN generator with an SN-DCGAN discriminator ('sn') or the WGAN-GP critic ('wgan');
    the bottom width follows the data's image size (32 px -> 4, 48 px -> 6)."""

    def build(arch: dict, info: dict) -> tuple:
        from .models.dcgan import DCGANGenerator, SNDCGANDiscriminator, build_wgan_gp_critic

        size = int(info["image_size"])
        if size % 8:
            raise ValueError(f"DCGAN nets need an image size divisible by 8, the data has {size} px")
        bw = size // 8
        generator = DCGANGenerator(z_dim=arch["z_dim"], bottom_width=bw, ch=arch["g_ch"])
        if critic == "sn":
            return generator, SNDCGANDiscriminator(bottom_width=bw, ch=arch["d_ch"], spectral_norm=True)
        return generator, build_wgan_gp_critic(bottom_width=bw, ch=arch["d_ch"])

    return build


def _resnet_pair(arch: dict, info: dict) -> tuple:
    """Miyato et al.'s SN-ResNet-GAN (models/resnet.py); the generator's bottom width follows the data's
    image size (32 px -> 4, 48 px -> 6), the discriminator ends in global sum pooling and fits any size."""
    from .models.resnet import ResNetGenerator, SNResNetDiscriminator

    size = int(info["image_size"])
    if size % 8:
        raise ValueError(f"SN-ResNet-GAN nets need an image size divisible by 8, the data has {size} px")
    generator = ResNetGenerator(z_dim=arch["z_dim"], bottom_width=size // 8, ch=arch["g_ch"])
    critic = SNResNetDiscriminator(ch=arch["d_ch"], down_blocks=arch["d_down_blocks"],
                                   plain_blocks=arch["d_plain_blocks"], spectral_norm=True)
    return generator, critic


DATASETS: dict[str, DatasetEntry] = {
    "25gaussians": DatasetEntry("toy2d", _toy2d_dataset("25gaussians")),
    "swissroll": DatasetEntry("toy2d", _toy2d_dataset("swissroll")),
    "billion-words": DatasetEntry("text", _billion_words),
    "cifar10": DatasetEntry("images", _image_dataset("cifar10")),
    "stl10-48": DatasetEntry("images", _image_dataset("stl10-48")),
    "stl10-32": DatasetEntry("images", _image_dataset("stl10-32")),
}

MODELS: dict[str, ModelEntry] = {
    "wgan-gp": ModelEntry("toy2d", "wgan-gp", _mlp_pair, "uniform", 2),
    "wgan-gp-charcnn": ModelEntry("text", "wgan-gp", _charcnn_pair, "normal", 128),
    "sn-dcgan-hinge": ModelEntry("images", "hinge", _dcgan_pair("sn"), "normal", 128),
    "sn-dcgan-ns": ModelEntry("images", "ns", _dcgan_pair("sn"), "normal", 128),
    "wgan-gp-dcgan": ModelEntry("images", "wgan-gp", _dcgan_pair("wgan"), "normal", 128),
    "sn-resnet-gan": ModelEntry("images", "hinge", _resnet_pair, "normal", 128),
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
# compute(dataset, batches, n_samples, prepared, params) -> {name: value} (per snapshot, streamed) and metric_directions().
METRICS: dict[str, str] = {"toy2d": "toy2d_suite", "text": "text_suite", "images": "images_suite"}


def metric_suite(suite: str):
    import importlib

    return importlib.import_module(f".metrics.{lookup(METRICS, suite, 'metric suite')}", __package__)


def lookup(table: dict, name: str, axis: str):
    """``table[name]`` with an error that lists the valid names."""
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown {axis} {name!r}; registered: {', '.join(sorted(table))}") from None
