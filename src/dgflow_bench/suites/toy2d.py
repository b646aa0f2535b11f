"""The 2-D suite (25Gaussians, Swissroll): MLP WGAN-GP models, DOT's published 2-D checkpoints, the
mode/quality/likelihood metrics of metrics/toy2d.py and the table + scatter figures of report/toy2d.py."""

from __future__ import annotations

from ..registry import DATASETS, MODELS, SUITES
from ..training.family import GanFamily
from ..report.cost import cost_figure_paths
from .base import DatasetEntry, Importer, Modality, Report, Suite

NAME = "toy2d"


def _load_train(train):
    import numpy as np
    import torch

    return torch.from_numpy(np.asarray(train, dtype=np.float32))


def _to_storage(x, storage: str = "default"):
    import numpy as np

    return x.detach().cpu().numpy().astype(np.float32)


MODALITY = Modality(data_info=lambda arrays: {"dim": int(arrays["train"].shape[1])}, load_train=_load_train,
                    to_model_input=lambda batch, info: batch, to_storage=_to_storage)


def _dataset(sampler_name: str):
    def write(params: dict, seed: int, out: str) -> dict:
        import numpy as np

        from ..data.toy2d import TOY2D_SAMPLERS
        from ..io import savez

        train_seq, heldout_seq = np.random.SeedSequence(seed).spawn(2)
        sampler = TOY2D_SAMPLERS[sampler_name]
        arrays = {"train": sampler(params["n_train"], np.random.default_rng(train_seq)),
                  "heldout": sampler(params["n_heldout"], np.random.default_rng(heldout_seq))}
        savez(out, **arrays)
        return {"shapes": {k: list(v.shape) for k, v in arrays.items()}}

    return write


def _mlp_pair(arch: dict, info: dict) -> tuple:
    from ..models.mlp import build_critic, build_generator

    g, c, dim = arch["generator"], arch["critic"], info.get("dim", 2)
    return build_generator(2, g["hidden"], g["depth"], dim), build_critic(dim, c["hidden"], c["depth"])


def _import_dot_2d(dataset: str, model: str, params: dict, download_dir):
    from ..io import sha256_file
    from ..models.chainer_npz import load_chainer_mlp
    from ..models.checkpoint_downloads import fetch_dot_2d
    from .base import Imported

    paths = fetch_dot_2d(dataset, local_dir=params.get("local_dir"), url=params["url"], cache_dir=download_dir,
                         sha256=params.get("sha256"))
    files = {role: {"file": str(p), "sha256": sha256_file(p), "sha256_checked": True} for role, p in paths.items()}
    return Imported(load_chainer_mlp(paths["generator"], "generator"), load_chainer_mlp(paths["critic"], "critic"),
                    MODELS[model].latent({}), files)


def _dot_2d_files(dataset: str, model: str, params: dict) -> tuple[dict, dict]:
    from ..models.checkpoint_downloads import DOT_2D_SHA256, dot_2d_filenames

    return dot_2d_filenames(dataset), {**DOT_2D_SHA256, **(params.get("sha256") or {})}


def _metrics():
    from ..metrics import toy2d_suite

    return toy2d_suite


def _outputs(runs: list[tuple[str, str, str]]) -> dict[str, list[str]]:
    datasets = sorted({d for d, _, _ in runs})
    tables = {ext: [f"results/tables/toy2d.{ext}"] for ext in ("csv", "md", "tex")}
    return {**tables, "scatter": [f"results/figures/toy2d_{d}.png" for d in datasets],
            "curves": [f"results/figures/toy2d_{d}_steps.png" for d in datasets],
            "cost": cost_figure_paths(NAME, runs)}


def _build(metric_files: list[str], params: dict, outputs: dict[str, list[str]]) -> None:
    from ..report.toy2d import build

    build(metric_files, params, outputs["csv"][0][: -len(".csv")], outputs["scatter"], outputs["curves"],
          outputs["cost"])


SUITES.register(NAME, Suite(
    name=NAME, modality=MODALITY, metrics=_metrics, evaluate_keys=("kde_bandwidth", "mode_min_share"),
    report=Report(_outputs, _build, captions={"csv": "toy2d_table.rst", "scatter": "toy2d_scatter.rst",
                                              "curves": "toy2d_steps.rst", "cost": "cost.rst"}),
    importers={"dot-pretrained": Importer(_import_dot_2d, _dot_2d_files)}, import_keys=lambda key: not key.startswith("image_"),
))
for _name in ("25gaussians", "swissroll"):
    DATASETS.register(_name, DatasetEntry(NAME, _dataset(_name), {"$ref": "#/definitions/toy2d_dataset"}))
MODELS.register("wgan-gp", GanFamily(NAME, {"$ref": "#/definitions/mlp_gan"}, "uniform", 2, loss="wgan-gp",
                                     networks=_mlp_pair))
