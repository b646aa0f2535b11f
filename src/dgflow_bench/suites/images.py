"""The image suite (CIFAR10, STL10 at 48 and 32 px): DCGAN / SN-DCGAN / WGAN-GP / SN-ResNet-GAN models,
DOT's published DCGAN checkpoints, FID and Inception Score (metrics/images_suite.py) and the paper-layout
tables and figures of report/images.py."""

from __future__ import annotations

from ..data.image_rows import IMAGE_DATASETS, ImageDataset
from ..registry import DATASETS, MODELS, SUITES
from ..training.family import GanFamily
from ..report.cost import cost_figure_paths
from .base import DatasetEntry, Importer, Modality, Report, Suite

NAME = "images"


def _data_info(arrays: dict) -> dict:
    train = arrays["train"]
    return {"channels": int(train.shape[1]), "image_size": int(train.shape[-1])}


def _load_train(train):
    import numpy as np
    import torch

    # the training array stays uint8 in memory (a quarter of float32); each minibatch becomes float
    return torch.from_numpy(np.ascontiguousarray(train, dtype=np.uint8))


def _to_storage(x, storage: str = "uint8"):
    """Samples in [-1, 1] -> the form the metric protocol scores (metrics/protocols.py): 'uint8' (the 'clean'
    protocol: round((x + 1) * 127.5), half to even, clamped to [0, 255], what a PNG holds) or 'float32' (the
    'dgflow-legacy' protocol: (x + 1) * 127.5 clamped and never rounded, as the paper fed Inception)."""
    import torch

    pixels = (x.detach().float() + 1.0) * 127.5
    if storage == "float32":
        return pixels.clamp_(0, 255).cpu().numpy()
    if storage in ("uint8", "default"):
        return torch.round(pixels).clamp_(0, 255).to(torch.uint8).cpu().numpy()
    raise ValueError(f"image snapshots are stored as 'uint8' or 'float32', not {storage!r}")


MODALITY = Modality(data_info=_data_info, load_train=_load_train,
                    to_model_input=lambda batch, info: batch.float() / 127.5 - 1.0, to_storage=_to_storage)


def _dataset(name: str, row: ImageDataset):
    def write(params: dict, seed: int, out: str) -> dict:
        from pathlib import Path

        from ..data import images

        # a local root is used as is (never downloads); null downloads params['url'] next to the data once
        folder = images.ensure_archive(params.get("root"), row.archive, Path(out).parent / "download",
                                       row.archive.md5, config_key=f"datasets.{name}.root", url=params.get("url"))
        kwargs = {"splits": params.get("splits"), "seed": seed}
        if row.heldout_split is None:  # a seeded held-out subset
            kwargs.update(heldout_size=params["heldout_size"], heldout_in_train=params["heldout_in_train"])
        return images.prepare_image_dataset(name, folder, out, row=row, **kwargs)

    return write


def _root_check(row: ImageDataset):
    def check(spec: dict, key: str) -> None:
        from ..data.images import ensure_archive

        ensure_archive(spec["root"], row.archive, spec["root"], config_key=key)

    return check


def row_schema(row: ImageDataset, description: str = "") -> dict:
    """The ``datasets.<name>`` block of a row registered without a schema of its own: root, url, splits (and
    the seeded held-out subset's size and rule, for a row without a held-out split)."""
    allowed = list(row.archive.split_files) if row.heldout_split else list(row.default_splits)
    properties = {
        "root": {"description": f"folder holding the extracted {row.archive.folder}/ (or that folder); null: "
                                "download url", "type": ["string", "null"], "default": None},
        "url": {"type": "string", "default": row.archive.url},
        "splits": {"description": "archive splits in 'train'", "type": "array", "minItems": 1, "uniqueItems": True,
                   "items": {"enum": allowed}, "default": list(row.default_splits)},
    }
    if row.heldout_split is None:
        properties["heldout_size"] = {"description": "seeded subset kept as 'heldout'", "type": "integer",
                                      "minimum": 1, "default": 10_000}
        properties["heldout_in_train"] = {"description": "keep the held-out images in 'train'", "type": "boolean",
                                          "default": True}
    return {"type": "object", "additionalProperties": False, "properties": properties,
            **({"description": description} if description else {})}


def register_image_dataset(name: str, row: ImageDataset, schema: dict | None = None) -> DatasetEntry:
    """The one call that adds an image dataset: its row (data/image_rows.ImageDataset) registered with
    registry.DATASETS with its data-stage writer, plan-time root check and config block (``schema``, default
    built from the row)."""
    return DATASETS.register(name, DatasetEntry(NAME, _dataset(name, row), schema or row_schema(row),
                                                check_root=_root_check(row), row=row))


def _image_size(info: dict, family: str) -> int:
    size = int(info["image_size"])
    if size % 8:
        raise ValueError(f"{family} nets need an image size divisible by 8, the data has {size} px")
    return size


def _dcgan_pair(critic: str):
    """chainer-gan-lib's DCGAN generator with an SN-DCGAN discriminator ('sn') or the WGAN-GP critic ('wgan');
    the bottom width follows the data's image size (32 px -> 4, 48 px -> 6)."""

    def build(arch: dict, info: dict) -> tuple:
        from ..models.dcgan import DCGANGenerator, SNDCGANDiscriminator, build_wgan_gp_critic

        bw = _image_size(info, "DCGAN") // 8
        generator = DCGANGenerator(z_dim=arch["z_dim"], bottom_width=bw, ch=arch["g_ch"])
        if critic == "sn":
            return generator, SNDCGANDiscriminator(bottom_width=bw, ch=arch["d_ch"], spectral_norm=True)
        return generator, build_wgan_gp_critic(bottom_width=bw, ch=arch["d_ch"])

    return build


def _resnet_pair(arch: dict, info: dict) -> tuple:
    """Miyato et al.'s SN-ResNet-GAN (models/resnet.py); the generator's bottom width follows the data's
    image size, the discriminator ends in global sum pooling and fits any size."""
    from ..models.resnet import ResNetGenerator, SNResNetDiscriminator

    generator = ResNetGenerator(z_dim=arch["z_dim"], bottom_width=_image_size(info, "SN-ResNet-GAN") // 8,
                                ch=arch["g_ch"])
    critic = SNResNetDiscriminator(ch=arch["d_ch"], down_blocks=arch["d_down_blocks"],
                                   plain_blocks=arch["d_plain_blocks"], spectral_norm=True)
    return generator, critic


def _import_dot_dcgan(dataset: str, model: str, params: dict, download_dir):
    from ..models.chainer_dcgan import load_chainer_dcgan_discriminator, load_chainer_dcgan_generator
    from ..models.chainer_npz import CheckpointError
    from ..models.checkpoint_downloads import DOT_IMAGE_DATA, fetch_dot_images
    from .base import Imported

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
    wants_sn = MODELS[model].loss != "wgan-gp"
    if critic.spec["spectral_norm"] != wants_sn:
        found = "an SN-DCGAN discriminator" if critic.spec["spectral_norm"] else "a WGAN-GP critic (no SN)"
        raise CheckpointError(f"{fetched['critic']['path']} holds {found}, which is not {model}'s; check "
                              "sources.dot-pretrained.image_files")
    # DGflow's dgflow.py samples N(0, I) for these generators; DOT's own make_hidden samples U[-1, 1]
    latent = {"prior": params["image_latent_prior"], "dim": generator.z_dim}
    files = {role: {"file": str(rec["path"]), "sha256": rec["sha256"], "sha256_checked": rec["sha256_checked"]}
             for role, rec in fetched.items()}
    return Imported(generator, critic, latent, files)


def _dot_dcgan_files(dataset: str, model: str, params: dict) -> tuple[dict, dict]:
    from ..models.checkpoint_downloads import dot_image_filenames

    names = dot_image_filenames(dataset, model, params["image_files"], params["image_iteration"])
    return names, {n: h.lower() for n, h in (params.get("image_sha256") or {}).items()}


def _sample_storage(evaluate: dict) -> str:
    """'dgflow-legacy' scores float images that were never rounded; 'clean' scores uint8."""
    return "float32" if evaluate["image_protocol"] == "dgflow-legacy" else "uint8"


GRID_SAMPLES = 64  # 8 x 8 images from the same fixed latents at every checkpoint


def image_grid_writer(generator, latent: dict, path):
    """A callback saving an 8 x 8 grid of the generator's samples as PNG (atomically, replaced at every
    checkpoint). Fixed latents of their own seed, eval mode, no_grad: training's RNG streams and BatchNorm
    statistics are untouched, so a resumed run stays bit-identical."""
    import matplotlib.pyplot as plt
    import torch

    from ..io import atomic_path
    from ..runtime import latent_sampler

    sample = latent_sampler(latent["prior"], latent["dim"], torch.device("cpu"))
    z = sample(GRID_SAMPLES, torch.Generator().manual_seed(0))

    def write(step: int) -> None:
        was_training = generator.training
        generator.eval()
        with torch.no_grad():
            x = generator(z.to(next(generator.parameters()).device)).cpu()
        generator.train(was_training)
        pixels = _to_storage(x, "uint8")  # (64, 3, H, W), as refined samples are stored
        n, c, h, w = pixels.shape
        side = int(n ** 0.5)
        grid = pixels[:side * side].reshape(side, side, c, h, w).transpose(0, 3, 1, 4, 2)
        grid = grid.reshape(side * h, side * w, c)
        with atomic_path(path) as tmp:
            plt.imsave(tmp, grid, format="png")

    return write


def _official(config: dict, dataset: str, model: str, source: str, method: str) -> dict:
    from ..settings.official import compare

    return compare(config, dataset, model, source, method)


def _metrics():
    from ..metrics import images_suite

    return images_suite


def _outputs(runs: list[tuple[str, str, str]]) -> dict[str, list[str]]:
    """The names report/images.py writes (its figure_paths): grids per sorted run, curves per dataset."""
    tables = {f"{kind}_{ext}": [f"results/tables/images_{kind}.{ext}"] for kind in ("fid", "is", "cost")
              for ext in ("csv", "md", "tex")}
    # every cell's official / variant account (report/images_tables.SETTINGS_TABLE), linked from the captions
    tables.update({f"settings_{ext}": [f"results/tables/images_settings.{ext}"] for ext in ("csv", "md")})
    return {**tables, "grids": [f"results/figures/images_{d}_{m}_{s}_samples.png" for d, m, s in sorted(runs)],
            "curves": [f"results/figures/images_{d}_fid_steps.png" for d in sorted({d for d, _, _ in runs})],
            "cost": cost_figure_paths(NAME, runs)}


def _build(metric_files: list[str], params: dict, outputs: dict[str, list[str]]) -> None:
    from pathlib import Path

    from ..report.images import build

    # tables: <prefix>_fid.* and <prefix>_is.*; figures: the names of _outputs, in one folder
    build(metric_files, params, outputs["fid_csv"][0][: -len("_fid.csv")], str(Path(outputs["curves"][0]).parent))


SUITES.register(NAME, Suite(
    name=NAME, modality=MODALITY, metrics=_metrics,
    evaluate_keys=("inception_weights", "fid_reference", "is_splits", "feature_batch_size", "image_protocol",
                   "pytorch_fid_crosscheck"),
    report=Report(_outputs, _build, captions={"fid_csv": "images_table.rst", "is_csv": "images_is_table.rst",
                                              "grids": "images_samples.rst", "curves": "images_fid_steps.rst",
                                              "cost": "cost.rst", "cost_csv": "images_cost_table.rst"}),
    importers={"dot-pretrained": Importer(_import_dot_dcgan, _dot_dcgan_files)}, import_keys=lambda key: key == "local_dir" or
    key.startswith(("image_", "release_")), sample_storage=_sample_storage, preview=image_grid_writer,
    official=_official,
))
# the built-in rows' config blocks: definitions of the config schema (their descriptions make the reference)
_BLOCKS = {"cifar10": {"$ref": "#/definitions/cifar10_dataset"}, "stl10-48": {"$ref": "#/definitions/stl10_dataset"},
           "stl10-32": {"$ref": "#/definitions/stl10_dataset",
                        "description": "STL10's 100k unlabeled images, bilinear resize to 32 px"}}
for _name, _row in IMAGE_DATASETS.items():
    register_image_dataset(_name, _row, _BLOCKS[_name])
for _name, _critic, _loss, _description in (
    ("sn-dcgan-hinge", "sn", "hinge", "DCGAN G + SN-DCGAN D, hinge loss"),
    ("sn-dcgan-ns", "sn", "ns", "DCGAN G + SN-DCGAN D, non-saturating loss"),
    ("wgan-gp-dcgan", "wgan", "wgan-gp", "DCGAN G + WGAN-GP critic (no SN)"),
):
    _ref = "dcgan_gan" if _critic == "sn" else "dcgan_wgan_gan"
    MODELS.register(_name, GanFamily(NAME, {"$ref": f"#/definitions/{_ref}", "description": _description},
                                     "normal", 128, loss=_loss, networks=_dcgan_pair(_critic)))
MODELS.register("sn-resnet-gan", GanFamily(
    NAME, {"$ref": "#/definitions/resnet_gan", "description": "SN-ResNet-GAN (Miyato et al. 2018), hinge loss"},
    "normal", 128, loss="hinge", networks=_resnet_pair))
