"""The official-settings record against the authors' own files, and the comparison against every edit.

1. Each of the 14 official DGflow configs (clear-nus/DGflow configs/, copied unchanged to
   ../shared/reference/dgflow-configs/; $DGFLOW_BENCH_REFERENCE overrides the folder) is read and every key of
   it checked against its entry of settings/official.yaml. Skips, saying why, where the folder is absent.
2. Every official cell of presets/images-paper.yaml, edited in each field the comparison reads (one field at
   a time), turns `variant` and names that field; the edits of issue 23 §1.8 are spelled out as well. Pure
   config work: the preset is validated once and each edit works on a copy of it.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import pytest
import yaml

from conftest import REPO

from dgflow_bench import provenance
from dgflow_bench.config import finetune_params, run_methods, runs, uses_finetuned, validate
from dgflow_bench.settings.official import compare, compared_fields, load

REFERENCE = Path(os.environ.get("DGFLOW_BENCH_REFERENCE", REPO.parent / "shared" / "reference" / "dgflow-configs"))
PAPER = validate(yaml.safe_load((REPO / "presets" / "images-paper.yaml").read_text()))


def reference_configs() -> dict[str, dict]:
    if not REFERENCE.is_dir():
        pytest.skip(f"the official DGflow configs are not in {REFERENCE}; set DGFLOW_BENCH_REFERENCE to the folder "
                    "holding clear-nus/DGflow's configs/*.yml")
    files = sorted(REFERENCE.glob("*.y*ml"))
    return {path.name.rsplit(".", 1)[0]: yaml.safe_load(path.read_text()) for path in files}


def _checkpoint(path):
    return None if path is None else path.removeprefix("trained_models/")


def _iterations(path):
    found = re.search(r"_(\d+)\.npz$", path or "")
    return int(found.group(1)) if found else None


# each key of a release config -> how official.yaml records it (entry -> value)
RECORDED = {
    "dataset": lambda e: e["dataset"], "image_size": lambda e: e["image_size"],
    "eval_file_prefix": lambda e: e["eval_file_prefix"],
    "gen_type": lambda e: e["generator"]["kind"], "gen_path": lambda e: "trained_models/" + e["generator"]["checkpoint"],
    "glow_params": lambda e: e["generator"].get("params"),
    "disc_type": lambda e: e["discriminator"]["kind"],
    "disc_path": lambda e: "trained_models/" + e["discriminator"]["checkpoint"],
    "corr_type": lambda e: (e["corrector"] or {}).get("kind"),
    "corr_path": lambda e: None if e["corrector"] is None else "trained_models/" + e["corrector"]["checkpoint"],
    "f_div": lambda e: e["f"], "eta": lambda e: e["eta"], "gamma": lambda e: e["gamma"],
    "save_interval": lambda e: e["save_interval"], "keep_samples": lambda e: e["keep_samples"],
    "steps": lambda e: e["steps"], "bottom_width": lambda e: e["bottom_width"], "num_imgs": lambda e: e["n_images"],
    "batch_size": lambda e: e["batch_size"], "exp_root": lambda e: e["exp_root"], "z_dim": lambda e: e["z_dim"],
}


def test_every_official_config_file_matches_its_record():
    files, table = reference_configs(), load()["dgflow"]
    assert set(files) == set(table), "official.yaml must hold one entry per file of configs/ and no other"
    for name, values in files.items():
        entry = table[name]
        assert entry["source"] == f"clear-nus/DGflow configs/{name}." + ("yaml" if name == "cifar10-glow" else "yml")
        unknown = set(values) - set(RECORDED)
        assert not unknown, f"{name}: keys {sorted(unknown)} are not recorded in official.yaml"
        for key, recorded in RECORDED.items():
            assert recorded(entry) == values.get(key), (name, key, recorded(entry), values.get(key))
        # the iteration counts are the ones the file names state
        assert entry["generator"]["iterations"] == _iterations(values["gen_path"]), name
        assert entry["discriminator"]["iterations"] == _iterations(values["disc_path"]), name
        # the run d comes from: the config whose generator is d's twin (DOT's _G_ / _D_ naming)
        twin = [n for n, v in files.items() if v["gen_path"] == values["disc_path"].replace("_D_", "_G_")]
        assert [entry["discriminator"]["trained_with"]] == twin, name


def test_release_facts_the_comparison_reads_are_recorded_with_their_sources():
    table = load()
    release, dot = table["dgflow_common"]["refinement"], table["dot"]["images"]
    assert (release["spectral_norm"], release["thermalisation_passes"]) == ("dgflow-release", 5000)
    assert (dot["spectral_norm"], dot["thermalisation_passes"]) == ("dot-release", 100)
    assert dot["k_eff"]["sample"] == "fresh" and dot["n_images"] == 50000
    assert release["image_protocol"] == dot["image_protocol"] == "dgflow-legacy"
    assert table["dgflow"]["cifar10-snresnet"]["generator_training_prior"] == "normal"
    assert not any("resnet_32" in line or "source/" in line for line in table["unread"])
    for name, recipe in table["recipes"].items():
        assert recipe["source"] and recipe["confidence"] and recipe["provenance"], name
    assert "refs/pull/1/head" in table["recipes"]["dcgan-dot"]["source"]
    assert {e["recipe"] for e in table["dgflow"].values()} - {None} == set(table["recipes"])


# ---------- every compared field of every official cell ----------

OFFICIAL_CELLS = [(d, m, s, method) for d, m, s in runs(PAPER) for method in run_methods(PAPER, d, m)
                  if compare(PAPER, d, m, s, method)["setting"] == "official"]
REFINE_FIELDS = {"n_samples", "batch_size"}
METHOD_FIELDS = {"space", "eta", "gamma", "steps", "snapshot_every", "generator_bn", "latent_prior", "spectral_norm",
                 "optimizer", "lr", "k_eff", "k_eff_pairs", "k_eff_repeats", "k_eff_scope", "k_eff_sample", "radial"}
OTHER = {"batch": "eval", "eval": "batch", "latent": "data", "uniform": "normal", "normal": "uniform", "sgd": "adam",
         "run": "batch", "fresh": "batch", "auto": 2.0, "none": "linear", "dgflow-release": "frozen",
         "dot-release": "frozen", "dgflow-legacy": "clean"}


def other(field: str, value):
    """A valid value of ``field`` that differs from ``value``."""
    if field == "radial":
        return "exact"
    if field.startswith("betas") or field.endswith("betas (train)"):
        return [0.5, 0.999]
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value * 2 + (1 if isinstance(value, int) else 0)
    if isinstance(value, list):
        return [v * 2 for v in value]
    return OTHER[value]


def edit(config: dict, cell: tuple, field: str, ours: dict) -> None:
    """Change ``field`` of ``cell`` in ``config`` (validated, in place) to another valid value; ``ours``: the
    cell's compared values before the edit."""
    dataset, model, source, method = cell
    value, spec = ours[field], config["models"][model]
    d_phi = ours.get("d_phi", "").split(" ")[0]  # our model whose critic is d_phi
    if field in REFINE_FIELDS | METHOD_FIELDS:  # through an override entry, so it wins over the preset's own
        block = ({"refine": {field: other(field, value)}} if field in REFINE_FIELDS
                 else {"methods": {method: {field: other(field, value)}}})
        config["overrides"].append({"datasets": [dataset], "models": [model], **block})
    elif field == "image_protocol":
        config["evaluate"]["image_protocol"] = other(field, value)
    elif field == "discriminator":
        config["methods"][method]["discriminator"] = "finetuned" if value == "raw" else "raw"
    elif field == "d_phi":  # another SN-DCGAN's critic, trained on the same data set
        critic = "sn-dcgan-hinge" if d_phi != "sn-dcgan-hinge" else "sn-dcgan-ns"
        if ours["discriminator"] == "raw":
            spec["logit_from"] = {"model": critic, "source": "trained"}
        else:
            spec["density_ratio"]["base_model"] = critic
    elif field == "corrector":
        if value is None:  # add one: d = d_phi + d_lambda
            spec["density_ratio"] = {"kind": "corrector", "base_model": d_phi, "base_source": "trained"}
            config["methods"][method]["discriminator"] = "finetuned"
        else:  # an untrained corrector leaves d = d_phi
            spec["density_ratio"]["steps"] = 0
    else:  # the model behind the row or, prefixed 'd_phi ', the one behind its d
        owner, name = (d_phi, field[len("d_phi "):]) if field.startswith("d_phi ") else (model, field)
        if name in ("model iterations", "z_dim"):
            part, key = ("train", "iterations") if name == "model iterations" else ("arch", "z_dim")
        else:
            key, part = re.fullmatch(r"(\w+) \((train|arch)\)", name).groups()
        config["models"][owner].setdefault(part, {})[key] = other(key, value)


@pytest.mark.parametrize("cell", OFFICIAL_CELLS, ids=lambda c: "/".join((c[0], c[1], c[3])))
def test_each_compared_field_edited_turns_the_cell_variant_naming_it(cell):
    _, reasons, ours, theirs = compared_fields(PAPER, *cell)
    assert not reasons and len(theirs) >= 6, theirs  # a base row: z_dim, protocol, count, batch, BN, prior
    missed = []
    for field in theirs:
        config = copy.deepcopy(PAPER)
        edit(config, cell, field, ours)
        result = compare(config, *cell)
        if result["setting"] != "variant" or not any(d.startswith(f"{field}: ") for d in result["differs"]):
            missed.append((field, result["differs"]))
    assert not missed, missed


def test_the_official_cells_are_the_releases_runnable_ones():
    cells = {(d, m, method) for d, m, _, method in OFFICIAL_CELLS}
    # DOT only on the chainer-gan-lib DCGANs its loaders build; no Glow row (the release cannot load Glow)
    assert {(d, m) for d, m, method in cells if method == "dot"} == {
        (d, m) for d in ("cifar10", "stl10-48") for m in ("wgan-gp-dcgan", "sn-dcgan-ns", "sn-dcgan-hinge")}
    assert not any(m == "glow" for _, m, _ in cells)
    assert len(cells) == 64


@pytest.mark.parametrize("cell, change, named", [
    (("cifar10", "sn-dcgan-ns", "trained", "dgflow-kl"), ("evaluate", "image_protocol", "clean"),
     "image_protocol: 'clean' vs 'dgflow-legacy'"),
    (("cifar10", "mmdgan", "trained", "dgflow-kl"), ("models", "mmdgan", "train", "iterations", 10),
     "model iterations: 10 vs 125000"),
    (("stl10-32", "mmdgan", "trained", "dgflow-js"), ("models", "sn-dcgan-ns", "train", "iterations", 1000),
     "d_phi model iterations: 1000 vs 150001"),
    (("cifar10", "glow", "trained", "dgflow-kl"), ("models", "glow", "arch", "K", 2), "K (arch): 2 vs 32"),
    (("cifar10", "glow", "trained", "base"), ("models", "glow", "arch", "L", 2), "L (arch): 2 vs 3"),
    (("cifar10", "wgan-gp-dcgan", "trained", "dot"), ("methods", "dot", "spectral_norm", "frozen"),
     "spectral_norm: 'frozen' vs 'dot-release'"),
    (("cifar10", "sn-dcgan-ns", "trained", "dot"), ("methods", "dot", "k_eff_sample", "batch"),
     "k_eff_sample: 'batch' vs 'fresh'"),
])
def test_the_edits_of_issue_23_turn_their_cells_variant(cell, change, named):
    config = copy.deepcopy(PAPER)
    node = config
    for key in change[:-2]:
        node = node[key]
    node[change[-2]] = change[-1]
    result = compare(config, *cell)
    assert result["setting"] == "variant" and named in result["differs"], result["differs"]


def test_no_official_cell_reads_the_finetune_block():
    """Issue 23 §1.8 listed finetune.steps: 1 among the edits that leave a row official. It does, rightly: the
    official rows follow a raw discriminator or a corrector (models.<m>.density_ratio), never the logistic
    fine-tune, so the edit changes none of their inputs."""
    edited = copy.deepcopy(PAPER)
    edited["finetune"]["steps"] = 1
    for dataset, model, source, method in OFFICIAL_CELLS:
        assert compare(edited, dataset, model, source, method)["setting"] == "official"
        assert (provenance.refinement(edited, dataset, model, source, method)
                == provenance.refinement(PAPER, dataset, model, source, method)), (dataset, model, method)
        if uses_finetuned(PAPER, model, method):
            assert "steps" not in finetune_params(PAPER, dataset, model, source)  # a corrector's own block
