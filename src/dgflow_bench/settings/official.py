"""The authors' settings (official.yaml beside this module: facts read from clear-nus/DGflow configs/*.yml and
AkinoriTanaka-phys/DOT, each entry citing its file) and how a configured table cell compares with them.

``compare(config, dataset, model, source, method)`` lists every field where the cell's resolved settings
differ from the official ones: an empty list means the cell reproduces the authors' setting ('official'),
anything else makes it a 'variant' and says which fields differ. Every expected value is read from official.yaml
(dgflow.<config>, dgflow_common.refinement, dot.images, recipes); the fields cover the refinement, the model
behind the row and the d_phi behind its discriminator (recipe and length where known) and the evaluation
protocol. Cells with no official counterpart (a dataset or model the release does not cover, DDLS, whose release
is not part of DGflow's) are variants by construction, with that as the reason; so are cells the release could
not have run (Glow: no loader in util.py; DOT on a model DOT's loaders cannot build), which still list every
field that differs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import yaml

from ..refine.method_params import resolve_discriminator
from ..refine.methods import register_builtin
from ..registry import METHODS
from ..resolve import run_settings
from .official_fields import critic_of, d_phi_recipe_fields, our_d, recipe_fields

OFFICIAL_FILE = Path(__file__).with_name("official.yaml")

# Our (dataset, model) -> the official DGflow config that cell reproduces: our reading of the release's names
# (c_dcgan + c_wgan = the WGAN-GP DCGAN, c_dcgan + c_sndcgan = SN-DCGAN, c_resnet = SN-ResNet-GAN, t_cnn = MMDGAN or
# OCFGAN-GP by the checkpoint's name, t_cnn_vae = the VAE, t_glow = Glow).
DGFLOW_CONFIG_OF = {
    ("cifar10", "wgan-gp-dcgan"): "cifar10-wgan",
    ("cifar10", "sn-dcgan-ns"): "cifar10-sngan-ns",
    ("cifar10", "sn-dcgan-hinge"): "cifar10-sngan-hi",
    ("cifar10", "sn-resnet-gan"): "cifar10-snresnet",
    ("cifar10", "mmdgan"): "cifar10-mmdgan",
    ("cifar10", "ocfgan-gp"): "cifar10-ocfgan",
    ("cifar10", "vae"): "cifar10-vae",
    ("cifar10", "glow"): "cifar10-glow",
    ("stl10-48", "wgan-gp-dcgan"): "stl10-wgan",
    ("stl10-48", "sn-dcgan-ns"): "stl10-sngan-ns",
    ("stl10-48", "sn-dcgan-hinge"): "stl10-sngan-hi",
    ("stl10-32", "mmdgan"): "stl10-mmdgan",
    ("stl10-32", "ocfgan-gp"): "stl10-ocfgan",
    ("stl10-32", "vae"): "stl10-vae",
}
@functools.lru_cache(maxsize=1)
def load() -> dict:
    return yaml.safe_load(OFFICIAL_FILE.read_text())


def official_entry(dataset: str, model: str) -> Optional[tuple[str, dict]]:
    name = DGFLOW_CONFIG_OF.get((dataset, model))
    return None if name is None else (name, load()["dgflow"][name])


def _d_run(entry: dict) -> tuple[str, dict]:
    """(our model name with its dataset, official entry) of the training run the official config's d comes
    from (official.yaml: discriminator.trained_with; for SN-ResNet-GAN, MMDGAN, ... another model's, and for
    the STL10 32 px rows the 48 px discriminator)."""
    run = entry["discriminator"]["trained_with"]
    owners = [(d, m) for (d, m), name in DGFLOW_CONFIG_OF.items() if name == run]
    if len(owners) != 1:
        raise ValueError(f"official.yaml: a d was trained with {run!r}, which maps to {owners or 'none'} of our "
                         "models (settings/official.py DGFLOW_CONFIG_OF)")
    return critic_of(*owners[0]), load()["dgflow"][run]


def _differs(ours: dict, theirs: dict) -> list[str]:
    return [f"{field}: {ours.get(field)!r} vs {theirs[field]!r}" for field in theirs if ours.get(field) != theirs[field]]


def compare(config: dict, dataset: str, model: str, source: str, method: str) -> dict:
    """{'setting': 'official' | 'variant', 'official': <config name or None>, 'differs': [field: ours vs
    theirs, ...]} for one cell. Every expected value comes from official.yaml. The method's f is the table
    column and is not compared (the release's configs set KL; the paper's JS and logD columns change f alone).
    A cell the release could not have run (Glow; DOT on a model DOT cannot load) lists that reason first and
    then still every field that differs."""
    found = compared_fields(config, dataset, model, source, method)
    if isinstance(found, str):
        return {"setting": "variant", "official": None, "differs": [found]}
    return _result(*found)


def compared_fields(config: dict, dataset: str, model: str, source: str, method: str):
    """(official config name, reasons, ours, theirs) of one cell: ``theirs`` maps each compared field to the
    authors' value, ``ours`` to the cell's, ``reasons`` says why the cell cannot be official whatever its
    fields; or, for a cell with no official counterpart, the sentence that says so."""
    settings = run_settings(config, dataset, model)  # with the overrides of this run
    spec, refine = settings["methods"][method], settings["refine"]
    register_builtin()
    params = METHODS[spec["kind"]].from_config(spec)  # the mode and prior it runs with, as the refine stage
    found = official_entry(dataset, model)
    if found is None:
        return f"no official config for {model} on {dataset}"
    name, entry = found
    arch = config["models"][model].get("arch", {})
    cell = Cell(config, dataset, model, source, refine, entry, load(), arch.get("z_prior", "normal"))
    compared = params.compared_with(spec, cell)  # the method's own fields (refine/methods/<kind>.py)
    if compared is None:
        return f"no official {spec['kind']} settings (not part of the DGflow or DOT releases)"
    ours, theirs = recipe_fields(config, model, source, entry, cell.table["recipes"])
    if entry["z_dim"] is not None:
        theirs["z_dim"], ours["z_dim"] = entry["z_dim"], arch.get("z_dim")
    ours["image_protocol"] = config["evaluate"]["image_protocol"]
    ours["n_samples"] = refine["n_samples"]
    reasons, method_ours, method_theirs = compared
    ours.update(method_ours)
    theirs.update(method_theirs)
    return name, reasons, ours, theirs


@dataclass(frozen=True)
class Cell:
    """One table cell as a method's ``compared_with`` sees it: the official config's entry (official.yaml
    dgflow.<config>), the whole official table, the run's refine settings and the model's prior, with the
    comparisons every method shares (the method modules cannot import this layer, so they are handed these)."""

    config: dict
    dataset: str
    model: str
    source: str
    refine: dict
    entry: dict
    table: dict
    model_prior: str

    @property
    def critic(self) -> str:
        return critic_of(self.dataset, self.model)

    def our_d(self, spec: dict) -> tuple[dict, Optional[dict]]:
        """How the row's d is made and whose d_phi it borrows (official_fields.our_d)."""
        discriminator = resolve_discriminator(spec, self.config["models"][self.model])
        return our_d(self.config, self.model, self.dataset, self.source, discriminator)

    def d_run(self) -> tuple[str, dict]:
        return _d_run(self.entry)

    def d_phi_recipe(self, borrowed: Optional[dict], d_entry: dict) -> tuple[dict, dict]:
        return d_phi_recipe_fields(self.config, borrowed, d_entry, self.table["recipes"], self.model)

    def dgflow_release(self, params) -> tuple[list[str], dict, dict]:
        """(reasons, ours, theirs) of how the DGflow release samples (official.yaml dgflow_common.refinement):
        the fields the base row and DGflow share."""
        release = self.table["dgflow_common"]["refinement"]
        reasons = [] if self.entry.get("runnable", True) else [self.entry["variant_reason"]]  # cifar10-glow
        theirs = {"n_samples": self.entry["n_images"], "image_protocol": release["image_protocol"],
                  "batch_size": self.entry["batch_size"], "generator_bn": release["generator_bn"],
                  "latent_prior": release["latent_prior"]}
        ours = {"batch_size": self.refine["batch_size"], "generator_bn": params.bn_mode(self.refine["generator_bn"]),
                "latent_prior": params.prior(self.model_prior)}
        return reasons, ours, theirs


def _result(name: str, reasons: list[str], ours: dict, theirs: dict) -> dict:
    differs = reasons + _differs(ours, theirs)
    return {"setting": "official" if not differs else "variant", "official": name, "differs": differs}


# our config key -> the author port's field (official.yaml: text.author_port)
_TEXT_MODEL_KEYS = {"train": ("iterations", "critic_steps", "batch_size", "lr", "betas", "gp_weight"),
                    "arch": ("z_dim", "dim", "n_blocks")}


def compare_text(config: dict, dataset: str, model: str, source: str, method: str) -> dict:
    """The text suite's cells. The DGflow release has no text config, so no refinement row can reproduce an
    official setting: every method but `base` is a variant by construction. The base row is official when
    model, data and JS reference match the DGflow author's WGAN-GP port (official.yaml: text.author_port)."""
    port = load()["text"]["author_port"]
    spec, data = config["models"][model], config["datasets"][dataset]
    ours, expected = {}, {}
    for part, keys in _TEXT_MODEL_KEYS.items():
        for key in keys:
            field = f"{key} (train)" if part == "train" else key
            ours[field], expected[field] = spec[part][key], port[key]
    ours["betas (train)"] = list(ours["betas (train)"])
    for key in ("max_lines", "vocab_size"):
        ours[key], expected[key] = data[key], port[key]
    ours["js_reference"], expected["js_reference"] = config["evaluate"]["js_reference"], port["js_reference"]
    differs = [f"{field}: {ours[field]!r} vs {expected[field]!r}" for field in expected
               if ours[field] != expected[field]]
    kind = config["methods"][method]["kind"]
    if kind != "base":
        differs.insert(0, f"no official {kind} settings for text (the DGflow release has no text code): ours")
    return {"setting": "official" if not differs else "variant", "official": "wgan-gp-billion-words (author port)",
            "differs": differs}
