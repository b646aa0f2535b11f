"""The config schema: defaults fill in, unknown keys and wrong types are named, presets validate, and the
per-job parameter builders isolate what each job depends on."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dgflow_bench.config import ConfigError, derive_seed, refine_params, runs, validate

from conftest import REPO

MINIMAL = {"datasets": {"swissroll": {}}, "models": {"wgan-gp": {"datasets": ["swissroll"]}},
           "methods": {"flow": {"kind": "dgflow"}}}


@pytest.mark.parametrize("path", [REPO / "config.yaml", *sorted((REPO / "presets").glob("*.yaml"))],
                         ids=lambda p: Path(p).name)
def test_shipped_configs_validate(path):
    config = validate(yaml.safe_load(Path(path).read_text()))
    assert list(runs(config))


def test_defaults_fill_in_from_the_schema():
    config = validate(MINIMAL)
    flow = config["methods"]["flow"]
    # the discriminator the model's block names by default (the GANs: their own logit, as the official configs)
    assert flow == {"kind": "dgflow", "discriminator": "model", "generator_bn": None, "spectral_norm": None,
                    "latent_prior": None, "f": "KL", "space": "latent", "eta": 0.01, "gamma": 0.01, "steps": 25,
                    "snapshot_every": 5, "support": "clip"}
    assert config["models"]["wgan-gp"]["sources"] == ["trained"]
    assert config["refine"]["n_samples"] == 2000
    assert MINIMAL["methods"]["flow"] == {"kind": "dgflow"}, "validation must not mutate its input"


def test_a_definitions_default_is_filled_where_it_is_referenced():
    # d_phi_dataset's and logit_from's defaults are written once, in their definitions
    config = validate({"datasets": {"cifar10": {}}, "methods": {"flow": {"kind": "dgflow"}},
                       "models": {"sn-dcgan-ns": {"datasets": ["cifar10"]}, "glow": {"datasets": ["cifar10"]}}})
    assert config["models"]["sn-dcgan-ns"]["d_phi_dataset"] == {"stl10-32": "stl10-48"}
    assert config["models"]["sn-dcgan-ns"]["logit_from"] is None
    assert config["models"]["glow"]["d_phi_dataset"] == {"stl10-32": "stl10-48"}
    # a default written beside the $ref still wins (glow borrows SN-DCGAN's critic)
    assert config["models"]["glow"]["logit_from"] == {"model": "sn-dcgan-ns", "source": "trained"}
    # a dataset the config does not list gets no block (the definitions carry no default)
    assert set(config["datasets"]) == {"cifar10"}


def test_no_default_is_copied_beside_a_ref():
    from dgflow_bench.config import load_schema

    definitions = load_schema()["definitions"]

    def copies(node, where=""):
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            target = definitions.get(ref.rsplit("/", 1)[-1]) if ref.startswith("#/definitions/") else None
            if target is not None and "default" in node and node["default"] == target.get("default", object()):
                yield where
            for key, value in node.items():
                yield from copies(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from copies(value, f"{where}[{i}]")

    assert list(copies(definitions)) == []


@pytest.mark.parametrize("patch, message", [
    ({"methods": {"flow": {"kind": "dgflow", "etaa": 1}}}, "methods.flow: Additional properties are not allowed ('etaa'"),
    ({"methods": {"flow": {"kind": "dgflow", "f": "TV"}}}, "methods.flow.f: 'TV' is not one of"),
    ({"methods": {"flow": {"kind": "dot", "gamma": 0.1}}}, "methods.flow: Additional properties are not allowed ('gamma'"),
    ({"refine": {"n_samples": "lots"}}, "refine.n_samples: 'lots' is not of type 'integer'"),
    ({"datasets": {"cifar": {}}}, "datasets: Additional properties are not allowed ('cifar'"),
    ({"colour": "red"}, "<top level>: Additional properties are not allowed ('colour'"),
])
def test_errors_name_the_key(patch, message):
    with pytest.raises(ConfigError) as info:
        validate({**MINIMAL, **patch})
    assert message in str(info.value)


def test_model_dataset_without_block_is_named():
    config = validate({**MINIMAL, "models": {"wgan-gp": {"datasets": ["25gaussians"]}}})
    with pytest.raises(ConfigError, match="models.wgan-gp.datasets names '25gaussians'"):
        list(runs(config))


def test_seeds_are_stable_and_distinct():
    assert derive_seed(0, "train", "swissroll") == derive_seed(0, "train", "swissroll")
    assert len({derive_seed(0, "train", d) for d in ("swissroll", "25gaussians")} | {derive_seed(1, "train", "swissroll")}) == 3


def test_refine_params_hold_only_their_method():
    config = validate({**MINIMAL, "methods": {"a": {"kind": "dgflow"}, "b": {"kind": "ddls"}}})
    params = refine_params(config, "a", "swissroll", "wgan-gp")
    # the method's block, its discriminator resolved for the model ('model' -> the GAN's own critic, raw)
    assert config["methods"]["a"]["discriminator"] == "model"
    assert params["method"] == {**config["methods"]["a"], "discriminator": "raw"}
    assert set(params) == {"name", "method", "refine"}
    assert "storage" not in params  # the image protocol never reruns 2-D refinements


def test_image_protocol_picks_the_snapshot_storage():
    methods = {"a": {"kind": "dgflow"}}
    clean = validate({**MINIMAL, "methods": methods})
    legacy = validate({**MINIMAL, "methods": methods, "evaluate": {"image_protocol": "dgflow-legacy"}})
    assert refine_params(clean, "a", "cifar10", "wgan-gp")["storage"] == "uint8"
    assert refine_params(legacy, "a", "cifar10", "wgan-gp")["storage"] == "float32"


def test_import_params_hold_only_what_the_importer_reads():
    from dgflow_bench.config import import_params

    config = validate({**MINIMAL, "methods": {"a": {"kind": "base"}},
                       "sources": {"dot-pretrained": {"local_dir": "/ckpt", "image_iteration": 7}}})
    two_d = import_params(config, "dot-pretrained", "wgan-gp")
    images = import_params(config, "dot-pretrained", "sn-dcgan-hinge")
    assert set(two_d) == {"local_dir", "url", "sha256"} and two_d["local_dir"] == "/ckpt"
    assert "local_dir" in images and images["image_iteration"] == 7 and "url" not in images
    assert all(key == "local_dir" or key.startswith("image_") for key in images)


def test_each_suite_reads_only_its_own_evaluate_keys():
    """Editing a text-metric key (js_orders) leaves every image and 2-D job's parameters, and so their
    provenance, unchanged; editing an image key reaches only the image jobs."""
    from dgflow_bench import provenance
    from dgflow_bench.config import evaluate_params, report_params

    preset = yaml.safe_load((REPO / "presets" / "images-tiny.yaml").read_text())
    preset["datasets"]["25gaussians"] = {}
    preset["models"]["wgan-gp"] = {"datasets": ["25gaussians"]}
    before = validate(preset)
    after = validate({**preset, "evaluate": {**preset.get("evaluate", {}), "js_orders": [3]}})
    image_run = next(r for r in runs(before) if r[0] != "25gaussians")
    for run in (image_run, ("25gaussians", "wgan-gp", "trained")):
        assert evaluate_params(before, *run, "base") == evaluate_params(after, *run, "base")
        assert provenance.metrics(before, *run, "base") == provenance.metrics(after, *run, "base")
    assert report_params(before, "images") == report_params(after, "images")
    assert set(evaluate_params(before, *image_run, "base")["metrics"]) == {
        "inception_weights", "fid_reference", "is_splits", "feature_batch_size", "image_protocol",
        "pytorch_fid_crosscheck"}
    flipped = validate({**preset, "evaluate": {**preset.get("evaluate", {}), "is_splits": 3}})
    assert evaluate_params(flipped, "25gaussians", "wgan-gp", "trained", "base") == \
        evaluate_params(before, "25gaussians", "wgan-gp", "trained", "base")
