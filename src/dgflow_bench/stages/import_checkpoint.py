"""`dgflow-bench import-checkpoint`: turn published weights into the pipeline's model file.

One importer per suite of the model (2-D MLP npz files or image DCGAN npz files); each returns the nets, the
latent prior they were made for and the provenance of the files it read."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple

from torch import nn

from ..io import sha256_file, write_resolved_config
from ..models.chainer_npz import CheckpointError
from ..models.store import save_model_file
from ..registry import MODELS, lookup


class Imported(NamedTuple):
    generator: nn.Module
    critic: nn.Module
    latent: dict
    files: dict  # role -> {'file', 'sha256', 'sha256_checked'}


def _import_dot_2d(dataset: str, model: str, params: dict, download_dir: Path) -> Imported:
    from ..models.chainer_npz import load_chainer_mlp
    from ..models.published import fetch_dot_2d

    paths = fetch_dot_2d(dataset, local_dir=params.get("local_dir"), url=params["url"], cache_dir=download_dir,
                         sha256=params.get("sha256"))
    files = {role: {"file": str(p), "sha256": sha256_file(p), "sha256_checked": True} for role, p in paths.items()}
    return Imported(load_chainer_mlp(paths["generator"], "generator"), load_chainer_mlp(paths["critic"], "critic"),
                    lookup(MODELS, model, "model").latent({}), files)


def _import_dot_dcgan(dataset: str, model: str, params: dict, download_dir: Path) -> Imported:
    from ..models.chainer_dcgan import load_chainer_dcgan_discriminator, load_chainer_dcgan_generator
    from ..models.published import DOT_IMAGE_DATA, fetch_dot_images

    fetched = fetch_dot_images(dataset, model, local_dir=params.get("local_dir"), pattern=params["image_files"],
                               iteration=params["image_iteration"], url=params.get("image_url"),
                               sha256=params.get("image_sha256") or {}, cache_dir=download_dir)
    generator = load_chainer_dcgan_generator(fetched["generator"]["path"])
    critic = load_chainer_dcgan_discriminator(fetched["critic"]["path"])
    # the files' shapes and key names decide the nets; check they are the model and resolution asked for
    px = DOT_IMAGE_DATA[dataset][1]
    if generator.image_size != px:
        raise CheckpointError(f"{fetched['generator']['path']} makes {generator.image_size} px images, but "
                              f"{dataset} is {px} px: the file belongs to another dataset")
    wants_sn = lookup(MODELS, model, "model").loss != "wgan-gp"
    if critic.spec["spectral_norm"] != wants_sn:
        found = "an SN-DCGAN discriminator" if critic.spec["spectral_norm"] else "a WGAN-GP critic (no SN)"
        raise CheckpointError(f"{fetched['critic']['path']} holds {found}, which is not {model}'s; check "
                              "sources.dot-pretrained.image_files")
    # DGflow's dgflow.py samples N(0, I) for these generators; DOT's own make_hidden samples U[-1, 1]
    latent = {"prior": params["image_latent_prior"], "dim": generator.z_dim}
    files = {role: {"file": str(rec["path"]), "sha256": rec["sha256"], "sha256_checked": rec["sha256_checked"]}
             for role, rec in fetched.items()}
    return Imported(generator, critic, latent, files)


# the model's suite -> how its published weights are imported
IMPORTERS: dict[str, Callable[[str, str, dict, Path], Imported]] = {
    "toy2d": _import_dot_2d,
    "images": _import_dot_dcgan,
}


def run(dataset: str, model: str, source: str, params: dict, out: str) -> None:
    if source != "dot-pretrained":
        raise ValueError(f"no importer for source {source!r}; importable sources: ['dot-pretrained']")
    suite = lookup(MODELS, model, "model").suite
    if suite not in IMPORTERS:
        raise ValueError(f"source {source!r} has no checkpoints for {suite} models such as {model!r}; "
                         f"it has {sorted(IMPORTERS)} models. Use source 'trained' for {model}.")
    imported = IMPORTERS[suite](dataset, model, params, Path(out).parent / "download")
    save_model_file(out, generator=imported.generator, critic=imported.critic, latent=imported.latent,
                    meta={"source": source, "model": model, "files": imported.files})
    # the hashes seen are recorded here even where none was published to check them against
    write_resolved_config(out, "import-checkpoint", params, dataset=dataset, model=model, files=imported.files)
