"""A model you bring: the declared model kind ``builder`` (registry.MODEL_KINDS) and its source ``builder``.

    models:
      my-gan:
        kind: builder
        builder: my_package.nets:build     # build() -> {"generator", "latent", "critic" (optional)}
        weights: weights/my-gan.pt         # torch.save({"generator": state_dict, "critic": state_dict})
        datasets: [cifar10]

declares the model ``my-gan`` of the suite of its datasets (2-D or images). It is imported, never trained:
the import-checkpoint stage calls the builder, loads the weights with ``weights_only=True`` and writes the
pipeline's model file (models/brought.py); from there it gets every row the suite's other models get. Its
``raw`` discriminator is its own critic or, with none, another configured model's (``logit_from``); its
``finetuned`` one the logistic fine-tune of its critic, or a corrector on another model's d_phi
(``density_ratio: {kind: corrector, base_model: ...}``).

The weights' SHA-256 and the hash of the builder's package code are filled into the block at plan time
(suites/brought_check.resolve), so they reach the import job's params: a new file reruns this model's
dependants, and only those. The plan-time check of the builder's output is suites/brought_check.py."""

from __future__ import annotations

from dataclasses import dataclass

from ..registry import DATASETS, MODEL_KINDS, SOURCES, SUITES, DeclaredKind
from ..training.family import ModelFamily
from .base import Importer, Source

KIND = SOURCE = "builder"
SUITE_NAMES = ("toy2d", "images")  # the sample shapes the contract defines: (n, 2) points, (n, 3, R, R) images
# what the import job reads: the block's builder and weights with the hashes resolve() filled in
IMPORT_KEYS = ("builder", "weights", "sha256", "code_sha256")

SOURCES.register(SOURCE, Source(False, "a model you bring: models.<name>.builder (your function) and "
                                       "models.<name>.weights (kind: builder)"))


@dataclass(frozen=True)
class BroughtFamily(ModelFamily):
    """A model built by the user's function; its latent prior and size come from the builder (the model file
    records them), so ``prior`` / ``default_latent_dim`` here are placeholders nothing trains with."""

    builder: str = ""

    def import_params(self, block: dict) -> dict:
        """The import job's params (config.import_params): the model's own block, not a sources.<name> one."""
        return {key: block.get(key) for key in IMPORT_KEYS}

    def record(self) -> dict:
        return {"builder": self.builder}


def _suite(block: dict) -> str:
    """The suite of the block's first registered dataset (config.runs names a dataset of another suite)."""
    for dataset in block.get("datasets") or []:
        if isinstance(dataset, str) and dataset in DATASETS:
            return DATASETS[dataset].suite
    return "images"


def _build(name: str, block: dict) -> BroughtFamily:
    suite = _suite(block)
    if suite in SUITE_NAMES and suite in SUITES:  # the source's importer, added when a config first declares one
        SUITES[suite].importers.setdefault(SOURCE, Importer(_load, _files))  # (a Suite is frozen, its dict is not)
    return BroughtFamily(suite, {"$ref": "#/definitions/brought_model"}, "normal", 1,
                         builder=str(block.get("builder", "")))


def _load(dataset: str, model: str, params: dict, download_dir):
    from ..io import sha256_file
    from ..models.brought import BroughtModelError, build_brought
    from .base import Imported

    found = sha256_file(params["weights"])
    if params.get("sha256") and found != params["sha256"].lower():
        raise BroughtModelError(f"models.{model}.weights: {params['weights']} changed since the plan was made "
                                f"(SHA-256 {found[:12]}..., planned {params['sha256'][:12]}...); rerun snakemake")
    nets = build_brought(params["builder"], params["weights"], model)
    files = {"weights": {"file": params["weights"], "sha256": found, "sha256_checked": bool(params.get("sha256"))},
             "builder": {"file": params["builder"], "sha256": params.get("code_sha256"), "sha256_checked": False}}
    return Imported(nets["generator"], nets["critic"], nets["latent"], files)


def _files(dataset: str, model: str, params: dict) -> tuple[dict, dict]:
    return {}, {}  # no sources.<name>.local_dir: the plan-time check is suites/brought_check.py


MODEL_KINDS.register(KIND, DeclaredKind(
    {"$ref": "#/definitions/brought_model"}, _build,
    "a model you bring: your builder function and a weights file, imported and refined like any other"))
