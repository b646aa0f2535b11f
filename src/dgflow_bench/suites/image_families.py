"""The paper's image models that are not GANs with a scalar critic of their own: MMDGAN, OCFGAN-GP, the VAE
and Glow. They belong to the image suite (same data, metrics and tables); each is a model family
(training/*_family.py) and a schema block (schemas/definitions/image_families.yaml). Their discriminators come
from another model: d_phi + d_lambda (density_ratio: corrector) or a borrowed raw critic (logit_from).

Source `dgflow-release` (models/release_import.py): the release's v1.0 generators of MMDGAN, OCFGAN-GP and
the VAE. Like the trained ones, the imported model holds the generator alone (critic None: none of these
has a logit of its own); the import also fetches and checks the release's density-ratio corrector
(``*_DRC.pth``) and records it in the model file's meta under files.corrector: the finetune stage takes it
as d_lambda (density_ratio.use_published), beside the d_phi it was trained against."""

from __future__ import annotations

from ..registry import MODELS, SUITES
from ..training.flow_family import GlowFamily
from ..training.kernel_family import KernelGanFamily
from ..training.vae_family import VaeFamily
from .base import Importer
from .images import NAME

MODELS.register("glow", GlowFamily(NAME, {"$ref": "#/definitions/glow_model"}, "normal", 3072))
MODELS.register("vae", VaeFamily(NAME, {"$ref": "#/definitions/vae_model"}, "normal", 64))
MODELS.register("mmdgan", KernelGanFamily(NAME, {"$ref": "#/definitions/mmdgan_model"}, "normal", 32, objective="mmd"))
MODELS.register("ocfgan-gp", KernelGanFamily(NAME, {"$ref": "#/definitions/ocfgan_model"}, "normal", 32,
                                             objective="ecfd"))


def _import_release(dataset: str, model: str, params: dict, download_dir):
    from ..models.release_import import fetch_release_files, load_release_corrector, load_release_generator
    from .base import Imported

    fetched = fetch_release_files(dataset, model, local_dir=params.get("local_dir"), url=params.get("release_url"),
                                  sha256=params.get("release_sha256"), cache_dir=download_dir)
    generator = load_release_generator(fetched["generator"]["path"], model)
    # read now so that a foreign or damaged corrector fails here, not in a later stage that relies on it
    load_release_corrector(fetched["corrector"]["path"], dataset, model)
    # dgflow.py samples torch.randn(n, z_dim) for every generator
    latent = {"prior": "normal", "dim": generator.spec["z_dim"]}
    files = {role: {"file": str(rec["path"]), "sha256": rec["sha256"], "sha256_checked": rec["sha256_checked"]}
             for role, rec in fetched.items()}
    return Imported(generator, None, latent, files)


def _release_corrector(path: str, dataset: str, model: str):
    from ..models.release_import import load_release_corrector

    return load_release_corrector(path, dataset, model)


def _release_files(dataset: str, model: str, params: dict) -> tuple[dict, dict]:
    from ..errors import CheckpointError
    from ..models.release_import import release_filenames

    try:
        names = release_filenames(dataset, model)
    except CheckpointError as exc:
        raise ValueError(str(exc)) from exc  # the plan-time check reports ValueErrors
    return names, {n: h.lower() for n, h in (params.get("release_sha256") or {}).items()}


# The images suite is registered by images.py, which this module follows; its importers dict takes this
# source's entry (the Suite is frozen, its dict is not), so the release's code stays with its models here.
SUITES[NAME].importers["dgflow-release"] = Importer(_import_release, _release_files, _release_corrector)
