"""The authors' settings (official.yaml beside this module: facts read from clear-nus/DGflow configs/*.yml and
AkinoriTanaka-phys/DOT, each entry citing its file) and how a configured table cell compares with them.

``compare(config, dataset, model, source, method)`` lists every field where the cell's resolved settings
differ from the official ones: an empty list means the cell reproduces the authors' setting ('official'),
anything else makes it a 'variant' and says which fields differ. Cells with no official counterpart (a
dataset or model the release does not cover, DDLS, whose release is not part of DGflow's) are variants by
construction, with that as the reason.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Optional

import yaml

from ..refine import params as _methods  # noqa: F401  (registers the built-in method kinds)
from ..resolve import corrector_base, raw_logit_from, run_settings
from ..refine.params import resolve_discriminator
from ..registry import METHODS

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
DGFLOW_SN_WARMUP = 5000  # dgflow.py stabilize_sn(iters=5000) on D before refining (official.yaml)


@functools.lru_cache(maxsize=1)
def load() -> dict:
    return yaml.safe_load(OFFICIAL_FILE.read_text())


def official_entry(dataset: str, model: str) -> Optional[tuple[str, dict]]:
    name = DGFLOW_CONFIG_OF.get((dataset, model))
    return None if name is None else (name, load()["dgflow"][name])


def _d_model(entry: dict) -> str:
    """Our model (and dataset) whose critic is the official config's d: the model of the config that d was
    trained with (official.yaml: discriminator.trained_with; for SN-ResNet-GAN, MMDGAN, ... another model's,
    and for the STL10 32 px rows the 48 px discriminator)."""
    run = entry["discriminator"]["trained_with"]
    owners = [(d, m) for (d, m), name in DGFLOW_CONFIG_OF.items() if name == run]
    if len(owners) != 1:
        raise ValueError(f"official.yaml: a d was trained with {run!r}, which maps to {owners or 'none'} of our "
                         "models (settings/official.py DGFLOW_CONFIG_OF)")
    return _critic_of(*owners[0])


def _critic_of(dataset: str, model: str) -> str:
    return f"{model} ({dataset})"


def _our_d(config: dict, model: str, dataset: str, discriminator: str) -> dict:
    """How a row's d is made: raw or fine-tuned, whose critic (d_phi), and the corrector added to it."""
    if discriminator == "raw":
        borrowed = raw_logit_from(config, model, dataset)
        d_phi = _critic_of(dataset, model) if borrowed is None else _critic_of(borrowed["dataset"], borrowed["model"])
        return {"discriminator": "raw", "d_phi": d_phi, "corrector": None}
    base = corrector_base(config, model, dataset)
    if base is not None:  # d_lambda: an SN-DCGAN discriminator, the release's t_sndcgan
        return {"discriminator": "finetuned", "d_phi": _critic_of(base["dataset"], base["model"]),
                "corrector": "t_sndcgan"}
    return {"discriminator": "finetuned", "d_phi": _critic_of(dataset, model), "corrector": None}


def _model_fields(config: dict, model: str, source: str, entry: dict) -> tuple[dict, dict]:
    """(ours, official) for how the model was made: its length, and for a pipeline-trained DCGAN the recipe
    of DOT's train_GAN.py that made the release's checkpoints (official.yaml: dot.images.checkpoints)."""
    spec = config["models"][model]
    # the release's .pth generators carry no iteration count: nothing to compare then
    official = {"model iterations": entry["generator"]["iterations"]} if entry["generator"]["iterations"] else {}
    if source != "trained":
        if not official:
            return {}, {}
        return {"model iterations": config["sources"].get(source, {}).get("image_iteration")}, official
    ours = {"model iterations": spec["train"]["iterations"]} if official else {}
    if entry["generator"]["kind"] == "c_dcgan":
        official.update({"critic_steps": 5, "batch_size (train)": 64, "lr (train)": 2.0e-4,
                         "betas (train)": [0.0, 0.9], "z_prior (train)": entry.get("generator_training_prior")})
        train, arch = spec["train"], spec.get("arch", {})
        ours.update({"critic_steps": train["critic_steps"], "batch_size (train)": train["batch_size"],
                     "lr (train)": train["lr"], "betas (train)": list(train["betas"]),
                     "z_prior (train)": arch.get("z_prior")})
    return ours, official


def compare(config: dict, dataset: str, model: str, source: str, method: str) -> dict:
    """{'setting': 'official' | 'variant', 'official': <config name or None>, 'differs': [field: ours vs
    theirs, ...]} for one cell. The method's f is the table column and is not compared (the release's
    configs set KL; the paper's JS and logD columns change f alone)."""
    settings = run_settings(config, dataset, model)  # with the overrides of this run
    spec, refine = settings["methods"][method], settings["refine"]
    params = METHODS[spec["kind"]].from_config(spec)  # the mode and prior it runs with, as the refine stage
    found = official_entry(dataset, model)
    kind = spec["kind"]
    if found is None:
        return {"setting": "variant", "official": None, "differs": [f"no official config for {model} on {dataset}"]}
    name, entry = found
    arch = config["models"][model].get("arch", {})
    model_prior = arch.get("z_prior", "normal")
    ours, expected = _model_fields(config, model, source, entry)
    expected["n_samples"], ours["n_samples"] = entry["n_images"], refine["n_samples"]
    expected["z_dim"], ours["z_dim"] = entry["z_dim"], arch.get("z_dim")
    if kind in ("base", "dgflow"):
        expected.update({"batch_size": entry["batch_size"], "generator_bn": "batch",
                         "latent_prior": entry["latent_prior"]})
        ours.update({"batch_size": refine["batch_size"], "generator_bn": params.bn_mode(refine["generator_bn"]),
                     "latent_prior": params.prior(model_prior)})
    if kind == "dgflow":
        expected.update({"space": "latent", "eta": entry["eta"], "gamma": entry["gamma"], "steps": entry["steps"],
                         "snapshot_every": entry["save_interval"],
                         # the release adds its corrector to d when the config names one (d = D + C)
                         "discriminator": "finetuned" if entry["corrector"] else "raw",
                         "d_phi": _d_model(entry),
                         "corrector": (entry["corrector"] or {}).get("kind"),
                         "sn_power_iterations": DGFLOW_SN_WARMUP})
        ours.update({k: spec[k] for k in ("space", "eta", "gamma", "steps", "snapshot_every")})
        ours.update(_our_d(config, model, dataset, resolve_discriminator(spec, config["models"][model])))
        ours["sn_power_iterations"] = refine["sn_power_iterations"]
    elif kind == "dot":
        # DOT's execute_dot.py defaults; its DCGANs draw U[-1, 1] latents, its normal-prior generators use the
        # 11.31 radial rule (official.yaml: dot.images). Its batch size (100) is not compared: with the generator
        # in eval mode and a per-sample objective, how latents are batched changes nothing.
        dot, dcgan = load()["dot"]["images"], entry["generator"]["kind"] == "c_dcgan"
        expected.update({"space": "latent", "optimizer": "sgd", "lr": dot["lr"], "steps": dot["steps"],
                         "snapshot_every": dot["showing_period"], "k_eff": "auto", "k_eff_pairs": 100,
                         "k_eff_repeats": 1, "k_eff_scope": "run", "generator_bn": "eval",
                         "latent_prior": "uniform" if dcgan else "normal"})
        ours.update({k: spec[k] for k in ("space", "optimizer", "lr", "steps", "snapshot_every", "k_eff",
                                          "k_eff_pairs", "k_eff_repeats", "k_eff_scope")})
        ours.update({"latent_prior": params.prior(model_prior), "generator_bn": params.bn_mode(refine["generator_bn"])})
        if ours["latent_prior"] == "normal":  # the radial rule applies to a normal prior only
            expected["radial"], ours["radial"] = "dot-release", spec["radial"]
    elif kind != "base":
        return {"setting": "variant", "official": None,
                "differs": [f"no official {kind} settings (not part of the DGflow or DOT releases)"]}
    differs = [f"{field}: {ours[field]!r} vs {expected[field]!r}" for field in expected
               if ours.get(field) != expected[field]]
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
