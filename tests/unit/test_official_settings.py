"""The paper presets are the authors' settings, row by row: every unsuffixed cell of presets/images-paper.yaml
resolves to exactly the official config's values (settings/official.yaml), our variants say how they differ,
and the image tables carry official / variant per cell."""

from __future__ import annotations

import copy

import pytest
import yaml

from conftest import REPO

from dgflow_bench.config import (ConfigError, corrector_base, evaluate_params, raw_logit_from, refine_params,
                                 run_methods, runs, validate)
from dgflow_bench.preflight import setting_lines
from dgflow_bench.report.images_tables import method_columns, method_table, settings_rows
from dgflow_bench.settings.official import DGFLOW_CONFIG_OF, compare, compare_text, load

PAPER = yaml.safe_load((REPO / "presets" / "images-paper.yaml").read_text())
TEXT_PAPER = yaml.safe_load((REPO / "presets" / "text-paper.yaml").read_text())
OFFICIAL_ROWS = ("base", "dot", "dgflow-kl", "dgflow-js", "dgflow-logd")
CORRECTED = ("mmdgan", "ocfgan-gp", "vae")
DCGANS = ("wgan-gp-dcgan", "sn-dcgan-ns", "sn-dcgan-hinge")


def test_every_official_entry_cites_its_file_and_has_the_fields():
    table = load()
    assert len(table["dgflow"]) == 14
    for name, entry in table["dgflow"].items():
        assert entry["source"] == f"clear-nus/DGflow configs/{name}.yml" or entry["source"].startswith(
            f"clear-nus/DGflow configs/{name}."), name
        for field in ("dataset", "image_size", "generator", "discriminator", "corrector", "f", "eta", "gamma",
                      "steps", "save_interval", "n_images", "batch_size"):
            assert field in entry, (name, field)
    assert table["dot"]["source"].startswith("AkinoriTanaka-phys/DOT")
    assert all(name in table["dgflow"] for name in DGFLOW_CONFIG_OF.values())


def test_the_paper_preset_reproduces_the_official_configs_cell_by_cell():
    config = validate(copy.deepcopy(PAPER))
    cells = [(run, method) for run in runs(config) for method in config["methods"]]
    # CIFAR10: 8 models; STL10 48 px: 3 DCGANs; STL10 32 px: MMDGAN, OCFGAN-GP, VAE and (ours) Glow
    assert len(cells) == 15 * 8
    # every official config has its rows; Glow on STL10 32 px is ours (the release has no such config)
    assert {(d, m) for (d, m, _), _ in cells} == set(DGFLOW_CONFIG_OF) | {("stl10-32", "glow")}
    glow_reason = load()["dgflow"]["cifar10-glow"]["variant_reason"]
    for (dataset, model, source), method in cells:
        result = compare(config, dataset, model, source, method)
        if (dataset, model) == ("stl10-32", "glow"):
            assert result == {"setting": "variant", "official": None,
                              "differs": ["no official config for glow on stl10-32"]}, method
            continue
        if config["methods"][method]["kind"] == "dot" and model not in DCGANS:  # DOT's loaders: DCGANs only
            assert result["setting"] == "variant" and result["differs"][0].startswith(
                "DOT's release cannot run this model"), (model, result["differs"])
            continue
        if model == "glow" and method != "ddls":  # the release cannot run Glow: variants by construction
            assert result["setting"] == "variant" and result["differs"][0] == glow_reason, method
            continue
        # MMDGAN, OCFGAN-GP and the VAE follow d_phi + d_lambda in every row: -ft is the same official setting
        if method in OFFICIAL_ROWS or (method == "dgflow-kl-ft" and model in CORRECTED):
            assert result == {"setting": "official", "official": DGFLOW_CONFIG_OF[(dataset, model)],
                              "differs": []}, (dataset, model, method, result["differs"])
        else:  # the suffixed rows and DDLS (no official code) are variants that say why
            assert result["setting"] == "variant" and result["differs"], (dataset, model, method)
    sn_resnet = compare(config, "cifar10", "sn-resnet-gan", "trained", "dgflow-kl-ft")
    # the -ft variant adds a corrector to the same d_phi
    assert sn_resnet["differs"] == ["discriminator: 'finetuned' vs 'raw'", "corrector: 't_sndcgan' vs None"]


@pytest.mark.parametrize("path, value, expected", [
    (("methods", "dgflow-kl", "eta"), 0.05, "eta: 0.05 vs 0.1"),
    (("refine", "generator_bn"), "eval", "generator_bn: 'eval' vs 'batch'"),
    (("models", "sn-dcgan-ns", "train", "iterations"), 100000, "model iterations: 100000 vs 150001"),
    (("models", "sn-dcgan-ns", "arch", "z_prior"), "normal", "z_prior (arch): 'normal' vs 'uniform'"),
    (("methods", "dgflow-kl", "latent_prior"), None, "latent_prior: 'uniform' vs 'normal'"),
    # the release's network mode (official.yaml dgflow_common.refinement; its 5,000 passes belong to the mode)
    (("methods", "dgflow-kl", "spectral_norm"), "frozen", "spectral_norm: 'frozen' vs 'dgflow-release'"),
    (("evaluate", "image_protocol"), "clean", "image_protocol: 'clean' vs 'dgflow-legacy'"),
])
def test_one_changed_field_makes_the_cell_a_variant_naming_it(path, value, expected):
    config = copy.deepcopy(PAPER)
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    result = compare(validate(config), "cifar10", "sn-dcgan-ns", "trained", "dgflow-kl")
    assert result["setting"] == "variant" and expected in result["differs"], result["differs"]


def test_sn_resnet_gan_follows_the_non_saturating_sn_dcgan_discriminator():
    config = copy.deepcopy(PAPER)
    del config["models"]["sn-resnet-gan"]["logit_from"]
    result = compare(validate(config), "cifar10", "sn-resnet-gan", "trained", "dgflow-kl")
    assert result["differs"] == ["d_phi: 'sn-resnet-gan (cifar10)' vs 'sn-dcgan-ns (cifar10)'"]


def test_dot_rows_follow_the_dot_release():
    config = validate(copy.deepcopy(PAPER))
    tangent = compare(config, "cifar10", "sn-resnet-gan", "trained", "dot-tangent")["differs"]
    assert "radial: 'exact' vs 'dot-release'" in tangent and "k_eff_scope: 'batch' vs 'run'" in tangent
    dcgan = compare(config, "cifar10", "wgan-gp-dcgan", "trained", "dot-tangent")["differs"]
    assert "latent_prior: 'normal' vs 'uniform'" in dcgan


def test_image_cells_carry_their_setting_into_the_table():
    config = validate(copy.deepcopy(PAPER))
    results = []
    for method in ("base", "dgflow-kl", "dgflow-kl-ft"):
        labels = evaluate_params(config, "cifar10", "sn-dcgan-ns", "trained", method)["labels"]
        assert labels["setting"]["setting"] == ("variant" if method.endswith("-ft") else "official")
        results.append({**labels, "final_step": 0, "per_step": [{"step": 0, "fid50k_cifar10-trainval": 20.0}]})
    methods = {m: {k: v for k, v in config["methods"][m].items() if k in ("kind", "f")}
               for m in ("base", "dgflow-kl", "dgflow-kl-ft")}
    table = method_table(results, method_columns(methods), "fid", [])
    shown = table.shown.iloc[0]
    assert shown["DGflow-KL (dgflow-kl-ft)"].endswith("‡") and not shown["DGflow-KL (dgflow-kl)"].endswith("‡")
    assert table.frame.iloc[0]["DGflow-KL (dgflow-kl-ft) setting"] == "variant"
    assert table.frame.iloc[0]["Base setting"] == "official"
    account = settings_rows(results, method_columns(methods))  # the fields that differ: their own table
    assert ["discriminator", "'finetuned'", "'raw'"] in account[["field", "ours", "theirs"]].values.tolist()


def test_each_discriminator_names_the_training_run_it_comes_from():
    # DOT's files of one training run differ only in _G_ / _D_: d was trained with that config's generator
    table = load()["dgflow"]
    for name, entry in table.items():
        run = entry["discriminator"]["trained_with"]
        assert table[run]["generator"]["checkpoint"] == entry["discriminator"]["checkpoint"].replace("_D_", "_G_")
        assert table[run]["dataset"] == entry["dataset"], name
    borrowed = {name for name, entry in table.items() if entry["discriminator"]["trained_with"] != name}
    assert "cifar10-snresnet" in borrowed and not borrowed & {"cifar10-wgan", "cifar10-sngan-ns", "stl10-sngan-hi"}


def test_text_base_row_is_the_author_port_and_refinement_rows_are_ours():
    text = load()["text"]
    assert text["author_port"]["source"].startswith("abdulfatir/wgan-gp-billion-words")
    assert text["wgan_gp_language"]["source"].startswith("igul222/improved_wgan_training gan_language.py")
    config = validate(copy.deepcopy(TEXT_PAPER))
    cell = ("billion-words", "wgan-gp-charcnn", "trained")
    assert compare_text(config, *cell, "base")["setting"] == "official"
    for method in config["methods"]:
        if method != "base":
            result = compare_text(config, *cell, method)
            assert result["setting"] == "variant" and "no official" in result["differs"][0], method
    config["models"]["wgan-gp-charcnn"]["train"]["critic_steps"] = 10  # the original TF code's value
    assert compare_text(config, *cell, "base")["differs"] == ["critic_steps (train): 10 vs 5"]


def test_a_dry_run_lists_official_and_variant_rows_apart():
    lines = setting_lines(validate(copy.deepcopy(PAPER)))
    official = lines.index("  official rows (64, reproduce the authors' settings):")
    variant = next(i for i, line in enumerate(lines) if line.startswith("  variant rows (56,"))
    assert official < variant
    assert "    cifar10 / sn-resnet-gan / trained: base, dgflow-kl, dgflow-js, dgflow-logd" in lines[official:variant]
    assert "    cifar10 / sn-resnet-gan / trained: dot, ddls, dgflow-kl-ft, dot-tangent" in lines[variant:]
    assert setting_lines(validate(yaml.safe_load((REPO / "config.yaml").read_text()))) == []  # 2-D: no official


def test_corrected_models_follow_d_phi_plus_the_corrector_like_the_release():
    config = validate(copy.deepcopy(PAPER))
    assert compare(config, "cifar10", "vae", "trained", "dgflow-kl")["setting"] == "official"
    config["models"]["vae"]["discriminator"] = "raw"  # d_phi alone: the release adds its corrector
    assert compare(validate(config), "cifar10", "vae", "trained", "dgflow-kl")["differs"] == [
        "discriminator: 'raw' vs 'finetuned'", "corrector: None vs 't_sndcgan'"]


def test_overrides_give_glow_and_stl32_their_release_settings_and_nobody_else():
    config = validate(copy.deepcopy(PAPER))
    reason = load()["dgflow"]["cifar10-glow"]["variant_reason"]
    for method in ("base", "dgflow-kl", "dgflow-js", "dgflow-logd"):
        result = compare(config, "cifar10", "glow", "trained", method)
        # the reason alone: every compared field is y0ast's train.py default
        assert result == {"setting": "variant", "official": "cifar10-glow", "differs": [reason]}, method
    # d_phi + d_lambda is ours for Glow: its config has no corrector
    assert {"discriminator: 'finetuned' vs 'raw'", "corrector: 't_sndcgan' vs None"} <= set(
        compare(config, "cifar10", "glow", "trained", "dgflow-kl-ft")["differs"])
    glow = refine_params(config, "dgflow-kl", "cifar10", "glow")
    assert (glow["refine"]["n_samples"], glow["refine"]["batch_size"], glow["method"]["eta"]) == (10000, 50, 0.05)
    stl32 = refine_params(config, "dgflow-js", "stl10-32", "vae")["method"]
    assert (stl32["eta"], stl32["steps"], stl32["gamma"]) == (0.05, 15, 0.01)
    # the same model on CIFAR10, and the other models, keep the top-level blocks
    for dataset, model in (("cifar10", "vae"), ("stl10-48", "sn-dcgan-ns"), ("cifar10", "sn-dcgan-ns")):
        params = refine_params(config, "dgflow-js", dataset, model)
        assert (params["method"]["eta"], params["method"]["steps"]) == (0.1, 25)
        assert params["refine"] == config["refine"]
    # without the override the STL10 32 px cells are variants naming the fields
    config = copy.deepcopy(PAPER)
    config["overrides"] = config["overrides"][1:]
    assert compare(validate(config), "stl10-32", "mmdgan", "trained", "dgflow-kl")["differs"] == [
        "eta: 0.1 vs 0.05", "steps: 25 vs 15"]


def test_rows_leave_a_run_with_the_rows_it_names_in_config_order():
    config = copy.deepcopy(PAPER)
    config["overrides"].append({"datasets": ["stl10-48"], "rows": ["dgflow-kl", "base"]})
    config["overrides"].append({"models": ["glow"], "rows": []})
    config = validate(config)
    assert run_methods(config, "stl10-48", "sn-dcgan-ns") == ["base", "dgflow-kl"]
    assert run_methods(config, "cifar10", "glow") == []
    assert run_methods(config, "cifar10", "sn-dcgan-ns") == list(config["methods"])
    lines = setting_lines(config)
    assert "    stl10-48 / sn-dcgan-ns / trained: base, dgflow-kl" in lines
    assert not any("cifar10 / glow" in line for line in lines)


def test_stl32_rows_borrow_the_48_px_discriminator():
    config = validate(copy.deepcopy(PAPER))
    assert corrector_base(config, "vae", "stl10-32") == {"dataset": "stl10-48", "model": "sn-dcgan-ns",
                                                         "source": "trained"}
    assert corrector_base(config, "vae", "cifar10")["dataset"] == "cifar10"
    assert raw_logit_from(config, "glow", "cifar10")["dataset"] == "cifar10"
    config = copy.deepcopy(PAPER)
    config["models"]["mmdgan"]["d_phi_dataset"] = {}  # d_phi from STL10 32 px: not the release's, and not trained
    with pytest.raises(ConfigError, match="sn-dcgan-ns trained on stl10-32.*add 'stl10-32' to models.sn-dcgan-ns"):
        validate(config)
    config["models"]["sn-dcgan-ns"]["datasets"].append("stl10-32")
    assert "d_phi: 'sn-dcgan-ns (stl10-32)' vs 'sn-dcgan-ns (stl10-48)'" in compare(
        validate(config), "stl10-32", "mmdgan", "trained", "dgflow-kl")["differs"]


@pytest.mark.parametrize("entry, message", [
    ({"datasets": ["mnist"], "refine": {"n_samples": 10}}, r"overrides\[0\].datasets names 'mnist'"),
    ({"models": ["glow"], "methods": {"nope": {"eta": 0.1}}}, r"overrides\[0\].methods names 'nope'"),
    ({"models": ["glow"], "methods": {"dgflow-kl": {"eta": -1}}}, r"overrides\[0\], merged into methods.dgflow-kl"),
    ({"models": ["glow"], "methods": {"dgflow-kl": {"kind": "dot"}}}, r"overrides\[0\].methods.dgflow-kl"),
    ({"models": ["glow"], "refine": {"n_sample": 10}}, r"overrides\[0\], merged into refine"),
    ({"models": ["glow"], "rows": ["base", "nope"]}, r"overrides\[0\].rows names 'nope'"),
])
def test_a_bad_override_is_refused_naming_it(entry, message):
    config = copy.deepcopy(PAPER)
    config["overrides"] = [entry]
    with pytest.raises(ConfigError, match=message):
        validate(config)
