"""Files the pipeline writes can be trusted or are named when they cannot: sealed sidecars, damaged-file
detection, valid JSON only, byte-identical checkpoints, provenance hashes that follow every upstream knob, and
the config checks that run before any job (YAML 1.1 numbers, non-finite values, relative paths, external
inputs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import REPO

from dgflow_bench import provenance
from dgflow_bench.config import ConfigError, validate
from dgflow_bench.io import (CorruptFileError, config_path_for, read_json, savez, seal, torch_save, verify_file,
                             write_json, write_resolved_config)
from dgflow_bench.layout import DATA, DISC, METRICS, MODEL, SAMPLES, TRAINED_MODEL, sidecar
from dgflow_bench.stage_table import STAGES, intermediates
from dgflow_bench.preflight import damaged_intermediates, external_input_errors, resolve_paths


def default_config() -> dict:
    return validate(yaml.safe_load((REPO / "config.yaml").read_text()))


def sealed(path: Path, write) -> Path:
    write(path)
    write_resolved_config(path, "test", {"x": 1})
    seal(path, "abc123")
    return path


# ---- sealed sidecars ----

def test_seal_records_checksum_size_and_provenance(tmp_path):
    out = sealed(tmp_path / "a.npz", lambda p: savez(p, x=np.arange(10)))
    record = read_json(config_path_for(out))
    assert record["output"]["bytes"] == out.stat().st_size
    assert record["provenance"] == "abc123" and record["params"] == {"x": 1}
    verify_file(out)  # intact: no error


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_verify_names_a_damaged_file(tmp_path, damage):
    out = sealed(tmp_path / "samples.npz", lambda p: savez(p, x=np.arange(1000)))
    data = out.read_bytes()
    if damage == "truncate":
        out.write_bytes(data[: len(data) // 2])
    elif damage == "flip":  # same size, other bytes: only the checksum tells
        out.write_bytes(data[:-20] + bytes(20))
    else:
        out.unlink()
    with pytest.raises((CorruptFileError, FileNotFoundError)) as info:
        verify_file(out)
    assert str(out) in str(info.value)
    if damage != "delete":
        assert "delete it and rerun" in str(info.value)


def test_truncated_json_names_the_file(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"a": 1.0, "b": [1, 2, 3]})
    path.write_text(path.read_text()[:10])
    with pytest.raises(CorruptFileError, match=str(path)):
        read_json(path)


def test_json_is_always_valid(tmp_path):
    path = tmp_path / "x.json"
    write_json(path, {"nan": float("nan"), "inf": [float("inf"), 1.5], "np": np.float64("-inf")})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"nan": None, "inf": [None, 1.5], "np": None}


def test_torch_save_is_byte_identical(tmp_path):
    obj = {"w": torch.arange(6.0).reshape(2, 3), "meta": {"step": 3}}
    torch_save(obj, tmp_path / "a.pt")
    torch_save(obj, tmp_path / "b.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


# ---- config checks ----

def test_yaml11_exponent_strings_are_numbers():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["methods"]["dgflow-kl"]["eta"] = yaml.safe_load("eta: 1e-2")["eta"]
    assert config["methods"]["dgflow-kl"]["eta"] == "1e-2"  # PyYAML's YAML 1.1 reading
    assert validate(config)["methods"]["dgflow-kl"]["eta"] == 0.01


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_numbers_are_refused(value):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["methods"]["dgflow-kl"]["eta"] = value
    with pytest.raises(ConfigError, match="methods.dgflow-kl.eta"):
        validate(config)


def test_row_names_cannot_collide_with_records():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["methods"]["base.config"] = {"kind": "base"}  # its metrics would be base.config.json: base's record
    with pytest.raises(ConfigError, match="base.config"):
        validate(config)


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    config = {"datasets": {"cifar10": {"root": "data/cifar"}}, "sources": {"dot-pretrained": {"local_dir": "/abs"}},
              "evaluate": {"inception_weights": "~/w.pth"}}
    resolved = resolve_paths(config, tmp_path / "cfg")
    assert resolved["datasets"]["cifar10"]["root"] == str(tmp_path / "cfg" / "data" / "cifar")
    assert resolved["sources"]["dot-pretrained"]["local_dir"] == "/abs"
    assert resolved["evaluate"]["inception_weights"] == str(Path("~/w.pth").expanduser())


def test_external_inputs_are_checked_with_their_keys(tmp_path, dot_format_source):
    config = default_config()
    config["models"]["wgan-gp"]["sources"] = ["trained", "dot-pretrained"]
    config["sources"]["dot-pretrained"].update(local_dir=str(tmp_path / "nowhere"))
    [error] = external_input_errors(config, tmp_path)
    assert "sources.dot-pretrained.local_dir" in error and "no such folder" in error
    config["sources"]["dot-pretrained"].update(dot_format_source)
    assert external_input_errors(config, tmp_path) == []
    # a file that is there but not the one whose hash the config gives
    folder = Path(dot_format_source["local_dir"])
    bad = dict(dot_format_source, sha256={**dot_format_source["sha256"], "G_swissroll_WGAN-GP.npz": "0" * 64})
    config["sources"]["dot-pretrained"].update(bad)
    [error] = external_input_errors(config, tmp_path)
    assert str(folder / "G_swissroll_WGAN-GP.npz") in error and "SHA-256" in error
    # once the model file is built, the folder is no longer needed
    built = tmp_path / MODEL.format(dataset="swissroll", model="wgan-gp", source="dot-pretrained")
    built.parent.mkdir(parents=True)
    built.write_bytes(b"x")
    assert external_input_errors(config, tmp_path) == []


# ---- layout and damage ----

def test_layout_patterns_are_the_rules_outputs():
    # the rules are generated from the stage table (workflow/rules/stages.smk), each with its stage's output
    outputs = {stage.output for stage in STAGES.values()}
    for pattern in (DATA, MODEL, TRAINED_MODEL, DISC, SAMPLES, METRICS):
        assert pattern in outputs, pattern
    assert "for stage in table.STAGES.values()" in (REPO / "workflow" / "rules" / "stages.smk").read_text()
    assert sidecar(MODEL).endswith("/model.config.json")


def test_intermediates_know_what_is_made_from_them():
    config = default_config()
    users = intermediates(config)
    names = {"dataset": "25gaussians", "model": "wgan-gp", "source": "trained"}
    model = MODEL.format(**names)
    assert model in users[DATA.format(dataset="25gaussians")]
    assert SAMPLES.format(**names, method="ddls") in users[model]
    assert users[SAMPLES.format(**names, method="ddls")] == {METRICS.format(**names, method="ddls")}
    # the report's tables and figures are the metrics files' users (and no intermediates themselves)
    assert "results/tables/toy2d.csv" in users[METRICS.format(**names, method="ddls")]
    assert not any(path.startswith(("results/tables/", "results/figures/")) for path in users)


def test_a_metrics_file_deleted_with_its_record_is_found_by_its_table(tmp_path):
    config = default_config()
    metrics = METRICS.format(dataset="25gaussians", model="wgan-gp", source="trained", method="base")
    assert metrics not in damaged_intermediates(config, tmp_path)  # nothing made yet
    (tmp_path / "results/tables").mkdir(parents=True)
    (tmp_path / "results/tables/toy2d.csv").write_text("method\n")
    assert damaged_intermediates(config, tmp_path)[metrics] == \
        "missing, but results/tables/toy2d.csv was made from it"


def test_damaged_intermediates(tmp_path):
    config = default_config()
    names = {"dataset": "25gaussians", "model": "wgan-gp", "source": "trained"}
    samples, metrics = SAMPLES.format(**names, method="base"), METRICS.format(**names, method="base")
    assert damaged_intermediates(config, tmp_path) == {}  # nothing made yet: nothing damaged
    sealed(tmp_path / samples, lambda p: savez(p, x=np.arange(100)))
    (tmp_path / metrics).parent.mkdir(parents=True)
    (tmp_path / metrics).write_text("{}")
    found = damaged_intermediates(config, tmp_path)
    assert samples not in found  # intact; its own inputs (never made here) count as deleted
    assert found[MODEL.format(**names)].startswith("missing, but " + samples)
    raw = (tmp_path / samples).read_bytes()
    (tmp_path / samples).write_bytes(raw[:-7])
    assert "truncated" in damaged_intermediates(config, tmp_path)[samples]
    (tmp_path / samples).unlink()
    assert damaged_intermediates(config, tmp_path)[samples].startswith("missing")
    (tmp_path / sidecar(samples)).unlink()  # deleted with its record: what was made from it still tells
    assert metrics in damaged_intermediates(config, tmp_path)[samples]


# ---- provenance ----

def test_provenance_follows_every_upstream_knob():
    config = default_config()
    run = ("25gaussians", "wgan-gp", "trained")

    def ids(cfg):
        return {"data": provenance.data(cfg, run[0]), "model": provenance.model(cfg, *run),
                "refine": provenance.refinement(cfg, *run, "dgflow-kl"),
                "refine-other": provenance.refinement(cfg, *run, "ddls"),
                "metrics": provenance.metrics(cfg, *run, "dgflow-kl"), "report": provenance.report(cfg, "toy2d")}

    before = ids(config)
    eta = dict(config, methods={**config["methods"], "dgflow-kl": {**config["methods"]["dgflow-kl"], "eta": 0.5}})
    after = ids(eta)
    assert [k for k in before if before[k] != after[k]] == ["refine", "metrics", "report"]
    lr = validate(yaml.safe_load((REPO / "config.yaml").read_text()))
    lr["models"]["wgan-gp"]["train"]["lr"] = 5e-4
    after = ids(lr)
    assert [k for k in before if before[k] != after[k]] == ["model", "refine", "refine-other", "metrics", "report"]


def test_truncated_snapshots_file_is_named(tmp_path):
    from dgflow_bench.snapshots import open_snapshots, write_snapshots

    out = tmp_path / "s.npz"
    with write_snapshots(out) as writer:
        writer.add_batch({0: np.zeros((4, 2), np.float32)})
        writer.finish(latents=np.zeros((4, 2), np.float32))
    out.write_bytes(out.read_bytes()[:100])
    with pytest.raises(CorruptFileError, match=str(out)):
        with open_snapshots(out):
            pass
