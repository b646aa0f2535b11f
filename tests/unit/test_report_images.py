"""The image suite's report: the paper's column layout, published values only beside comparable numbers,
protocol captions, sample grids from the same latents, FID-vs-step figures, and published-file validation."""

from __future__ import annotations

import json
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO

from dgflow_bench.catalog import SUITES
from dgflow_bench.cli import main as cli_main
from dgflow_bench.config import report_params, validate
from dgflow_bench.io import read_json, write_json
from dgflow_bench.report.images import build, figure_paths
from dgflow_bench.report.images_figures import display_uint8, grid_rows
from dgflow_bench.report.images_tables import IS_COLUMN_ORDER, IS_HEADERS, method_columns, method_table
from dgflow_bench.report.paper_values import PublishedValuesError, load_published, parse_metric_name
from dgflow_bench.snapshots import write_snapshots

METHODS = {"base": {"kind": "base"}, "dgflow-kl": {"kind": "dgflow", "f": "KL"}, "dot": {"kind": "dot"},
           "ddls": {"kind": "ddls"}}
LEGACY = ("fid50k_cifar10-trainval", "is50k_10splits")  # the names the published values were measured under
CLEAN_RANDOM = ("fid64_cifar10-train-ref100_clean_RANDOM-WEIGHTS", "is64_4splits_clean_RANDOM-WEIGHTS")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_run(root, dataset, model, method, names, *, source="trained", latents, final_step=2, dtype=np.uint8,
             fid=(30.0, 20.0), inception=(5.0, 6.0), shift=0):
    """A snapshot file (two shards, steps 0 and final_step) and its metric JSON, as refine + evaluate write."""
    rng = np.random.default_rng(zlib.crc32(f"{model}/{method}/{source}".encode()))
    n = len(latents)
    steps = [0] if final_step == 0 else [0, final_step]
    images = {s: rng.integers(0, 256, size=(n, 3, 8, 8)).astype(dtype) for s in steps}
    if dtype == np.float32:  # legacy snapshots: float [0, 255], not rounded
        images = {s: np.clip(im + 0.3, 0, 255).astype(np.float32) for s, im in images.items()}
    samples = root / f"{dataset}-{model}-{source}-{method}.npz"
    with write_snapshots(samples) as writer:
        for part in (slice(0, n // 2), slice(n // 2, n)):
            writer.add_batch({s: images[s][part] for s in steps})
        writer.finish(latents + shift)
    per_step = [{"step": s, names[0]: fid[i], names[1]: inception[i]} for i, s in enumerate(steps)]
    metrics = root / f"{dataset}-{model}-{source}-{method}.json"
    write_json(metrics, {"dataset": dataset, "model": model, "source": source, "method": method,
                         "discriminator": "", "suite": "images", "final_step": final_step, "per_step": per_step,
                         "samples_file": str(samples), "data_file": "unused"})
    return metrics, images


def make_suite(root, names, models=("sn-resnet-gan", "sn-dcgan-hinge"), dtype=np.uint8):
    latents = np.random.default_rng(0).normal(size=(12, 4)).astype(np.float32)
    files = []
    for model in models:
        for method, spec in METHODS.items():
            final = 0 if spec["kind"] == "base" else 2
            files.append(make_run(root, "cifar10", model, method, names, latents=latents, final_step=final,
                                  dtype=dtype)[0])
    return [str(f) for f in files]


def params(names=CLEAN_RANDOM, weights=None):
    return {"suite": "images", "n_samples": int(parse_metric_name(names[0]).n_samples),
            "method_order": list(METHODS), "methods": METHODS,
            "evaluate": {"inception_weights": weights, "fid_reference": "train"}}


def test_columns_follow_kind_and_f_in_the_papers_order():
    methods = {"ddls": {"kind": "ddls"}, "js": {"kind": "dgflow", "f": "JS"}, "base": {"kind": "base"},
               "kl-a": {"kind": "dgflow", "f": "KL"}, "dot": {"kind": "dot"}, "logd": {"kind": "dgflow", "f": "logD"},
               "kl-b": {"kind": "dgflow"}}  # f left out: the schema's default, KL
    columns = method_columns(methods)
    assert [c.label for c in columns] == ["Base", "DOT", "DGflow-KL (kl-a)", "DGflow-KL (kl-b)", "DGflow-JS",
                                          "DGflow-logD", "DDLS"]
    assert {c.method: c.paper for c in columns}["kl-b"] == "DGflow-KL"
    is_columns = method_columns({k: methods[k] for k in ("ddls", "js", "base", "kl-a", "dot")}, IS_COLUMN_ORDER,
                                IS_HEADERS)
    assert [c.label for c in is_columns] == ["Base", "DDLS", "DOT", "DGflow", "DGflow-JS"]


def test_report_params_carry_the_method_specs_for_images_only():
    config = validate(yaml.safe_load((REPO / "presets" / "images-tiny.yaml").read_text()))
    images = report_params(config, "images")
    assert images["methods"] == {"base": {"kind": "base"}, "dgflow-kl": {"kind": "dgflow", "f": "KL"},
                                 "dot": {"kind": "dot"}, "ddls": {"kind": "ddls"},
                                 "dgflow-kl-ft": {"kind": "dgflow", "f": "KL"}, "drs": {"kind": "drs"},
                                 "mh-gan": {"kind": "mh-gan"}}
    assert set(images["evaluate"]) == set(SUITES["images"].evaluate_keys)  # only the suite's own keys
    assert "inception_weights" not in report_params(config, "toy2d")["evaluate"]


def test_paper_values_only_where_dataset_model_column_and_protocol_match(tmp_path):
    files = make_suite(tmp_path, LEGACY)
    results = [read_json(f) for f in files]
    published = load_published()
    fid = method_table(results, method_columns(METHODS), "fid", published).frame.set_index("model")
    assert fid.loc["sn-resnet-gan", "DGflow-KL paper"] == 9.62
    assert fid.loc["sn-resnet-gan", "DGflow-KL"] == 20.0  # ours at the final step, beside it
    assert fid.loc["sn-resnet-gan", "Base paper"] == 21.7 and fid.loc["sn-resnet-gan", "DDLS paper"] == 15.42
    assert fid.loc["sn-resnet-gan", ["DOT paper"]].isna().all()  # unknown: empty
    assert fid.loc["sn-dcgan-hinge"].filter(like="paper").isna().all()  # another model: nothing
    is_table = method_table(results, method_columns(METHODS, IS_COLUMN_ORDER, IS_HEADERS), "is", published)
    row = is_table.frame.set_index("model").loc["sn-resnet-gan"]
    assert (row["Base paper"], row["DDLS paper"], row["DGflow paper"]) == (8.22, 9.09, 9.35)
    assert np.isnan(row["DOT paper"])
    assert list(is_table.frame.columns[4:6]) == ["Base", "Base paper"]
    assert any("Che et al." in s for s in is_table.sources) and any("Ansari" in s for s in is_table.sources)


@pytest.mark.parametrize("names, reason", [
    (("fid50k_cifar10-trainval_RANDOM-WEIGHTS", "is50k_10splits_RANDOM-WEIGHTS"), "RANDOM-WEIGHTS"),
    (("fid10k_cifar10-trainval", "is10k_10splits"), "10000 vs 50000 generated samples"),
    (("fid50k_cifar10-train_clean", "is50k_10splits_clean"), "protocol 'clean' vs 'dgflow-legacy'"),
    (("crosscheck-pytorch-fid_fid50k_cifar10-trainval", "is50k_5splits"), "computed by crosscheck-pytorch-fid"),
])
def test_no_paper_value_beside_numbers_measured_otherwise(tmp_path, names, reason):
    files = make_suite(tmp_path, names, models=("sn-resnet-gan",))
    results = [read_json(f) for f in files]
    for kind, columns in (("fid", method_columns(METHODS)),
                          ("is", method_columns(METHODS, IS_COLUMN_ORDER, IS_HEADERS))):
        table = method_table(results, columns, kind, load_published())
        assert table.frame.filter(like="paper").isna().all().all()
        assert table.notes and all("left out beside our" in note for note in table.notes)
    assert any(reason in note for note in table.notes + method_table(
        results, method_columns(METHODS), "fid", load_published()).notes)


def test_build_writes_tables_with_protocol_captions_and_figures(tmp_path):
    files = make_suite(tmp_path / "runs", CLEAN_RANDOM)
    build(files, params(), str(tmp_path / "tables" / "images"), str(tmp_path / "figures"))
    fid_md = (tmp_path / "tables" / "images_fid.md").read_text()
    assert "protocol 'clean'" in fid_md and "RANDOM-WEIGHTS feature net" in fid_md
    assert "| Base |" not in fid_md and "Base paper" in fid_md  # paper column beside each method
    assert re.search(r"published 9\.62 \[\d\] \(fid50k_cifar10-trainval\) left out beside our", fid_md)
    is_csv = pd.read_csv(tmp_path / "tables" / "images_is.csv")
    assert list(is_csv.columns) == ["dataset", "model", "source", "metric", "Base", "Base paper", "DDLS",
                                    "DDLS paper", "DOT", "DOT paper", "DGflow", "DGflow paper"]
    assert is_csv.filter(like="paper").isna().all().all()
    tex = (tmp_path / "tables" / "images_is.tex").read_text()
    caption = tex.split("\\caption{", 1)[1].split("}\n\\begin{tabular}", 1)[0]
    assert "protocol 'clean'" in caption and "\n\n" not in caption  # \caption{} holds one paragraph only
    paths = figure_paths(tmp_path / "figures", [("cifar10", m, "trained") for m in ("sn-dcgan-hinge",
                                                                                      "sn-resnet-gan")])
    assert len(paths["grids"]) == 2 and len(paths["curves"]) == 1
    for path in paths["grids"] + paths["curves"]:
        data = path.read_bytes()
        assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
        width, height = struct.unpack(">II", data[16:24])
        assert width > 50 and height > 50
    assert not list((tmp_path / "figures").glob(".*.tmp"))  # written atomically: no temporary left behind


def test_grid_rows_show_the_same_latents_base_first(tmp_path):
    latents = np.random.default_rng(1).normal(size=(10, 4)).astype(np.float32)
    runs, images = [], {}
    for method in ("dgflow-kl", "base", "dot"):  # out of order: the grid still starts with the base row
        final = 0 if method == "base" else 2
        path, images[method] = make_run(tmp_path, "cifar10", "m", method, CLEAN_RANDOM, latents=latents,
                                        final_step=final)
        runs.append(read_json(path))
    rows = grid_rows(runs, method_columns(METHODS), k=4)
    assert [label for label, _ in rows] == ["Base (step 0)", "DOT (step 2)", "DGflow-KL (step 2)"]
    np.testing.assert_array_equal(rows[0][1], images["base"][0][:4])
    np.testing.assert_array_equal(rows[1][1], images["dot"][2][:4])
    np.testing.assert_array_equal(rows[2][1], images["dgflow-kl"][2][:4])

    path, _ = make_run(tmp_path, "cifar10", "m", "ddls", CLEAN_RANDOM, latents=latents, shift=1.0)
    with pytest.raises(ValueError, match="same latents"):
        grid_rows(runs + [read_json(path)], method_columns(METHODS), k=4)


def test_float_legacy_snapshots_are_shown_rounded(tmp_path):
    latents = np.zeros((6, 4), dtype=np.float32)
    path, images = make_run(tmp_path, "cifar10", "m", "dgflow-kl", LEGACY, latents=latents, dtype=np.float32)
    rows = grid_rows([read_json(path)], method_columns(METHODS), k=3)
    assert rows[0][0].startswith("Base (step 0 of dgflow-kl)")  # no base run: step 0 is the base sample
    assert rows[1][1].dtype == np.uint8
    np.testing.assert_array_equal(rows[1][1], np.rint(images[2][:3]).astype(np.uint8))
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        display_uint8(np.full((1, 3, 2, 2), 300.0, dtype=np.float32))
    with pytest.raises(ValueError, match="uint8 or float"):
        display_uint8(np.zeros((1, 3, 2, 2), dtype=np.int16))


def test_cli_report_writes_every_images_output(tmp_path):
    files = make_suite(tmp_path / "runs", CLEAN_RANDOM, models=("sn-dcgan-hinge",))
    runs = [("cifar10", "sn-dcgan-hinge", "trained")]
    outputs = {name: [str((tmp_path if "/tables/" in p else tmp_path / "fig") / Path(p).name) for p in paths]
               for name, paths in SUITES["images"].report.outputs(runs).items()}
    argv = ["report", "--suite", "images", "--metrics", *files, "--params", json.dumps(params()),
            "--outputs", json.dumps(outputs)]
    assert cli_main(argv) == 0
    assert {p.name for p in tmp_path.glob("images_*")} == {f"images_{t}.{e}" for t in ("fid", "is", "cost")
                                                          for e in ("csv", "md", "tex")} | {
        "images_settings.csv", "images_settings.md"}
    assert {p.name for p in (tmp_path / "fig").iterdir()} == {"images_cifar10_sn-dcgan-hinge_trained_samples.png",
                                                             "images_cifar10_fid_steps.png",
                                                             "images_cifar10_sn-dcgan-hinge_cost.png"}
    # the suite declares exactly the files report/images.py writes
    assert [str(p) for p in figure_paths(tmp_path / "fig", runs)["grids"]] == outputs["grids"]


def _write(tmp_path, entries) -> str:
    path = tmp_path / "published.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "entries": entries}))
    return str(path)


def _entry(**changes):
    entry = {"dataset": "cifar10", "model": "sn-resnet-gan", "column": "DGflow-KL", "metric": "fid", "value": 9.62,
             "protocol": "dgflow-legacy", "n_samples": 50000, "metric_name": "fid50k_cifar10-trainval",
             "source": {"citation": "Ansari et al., ICLR 2021", "where": "results table"}}
    entry.update(changes)
    return {k: v for k, v in entry.items() if v is not None}


@pytest.mark.parametrize("changes, message", [
    ({"source": None}, r"entry 'x': missing \['source'\]"),
    ({"value": None}, r"entry 'x': missing \['value'\]"),
    ({"source": {"citation": "Ansari et al."}}, "entry 'x': source must be"),
    ({"table": "3"}, r"entry 'x': unknown keys \['table'\]"),
    ({"value": "9.62"}, "entry 'x': value must be a number"),
    ({"column": "DGflow"}, "entry 'x': column 'DGflow' is not one of"),
    ({"metric_name": "fid10k_cifar10-trainval"}, "entry 'x': metric_name"),
    ({"metric_name": "fid50k_cifar10-trainval_RANDOM-WEIGHTS"}, "entry 'x': metric_name"),
])
def test_published_file_validation_names_the_entry(tmp_path, changes, message):
    with pytest.raises(PublishedValuesError, match=message):
        load_published(_write(tmp_path, {"x": _entry(**changes)}))


def test_published_file_rejects_two_values_for_one_cell_and_ships_only_known_values(tmp_path):
    with pytest.raises(PublishedValuesError, match="entry 'b': same cell"):
        load_published(_write(tmp_path, {"a": _entry(), "b": _entry(value=1.0)}))
    shipped = {(v.column, v.metric): v.value for v in load_published()}
    assert shipped == {("DGflow-KL", "fid"): 9.62, ("DGflow-KL", "is"): 9.35, ("Base", "is"): 8.22,
                       ("DDLS", "is"): 9.09, ("Base", "fid"): 21.7, ("DDLS", "fid"): 15.42}
    assert all(v.protocol == "dgflow-legacy" and v.n_samples == 50000 and v.citation and v.where
               for v in load_published())


def test_cells_of_several_seeds_show_mean_and_std(tmp_path):
    files = make_suite(tmp_path, LEGACY, models=("sn-dcgan-hinge",))
    results = [read_json(f) for f in files]
    flow = next(r for r in results if r["method"] == "dgflow-kl")
    flow["n_seeds"] = 3
    flow["per_step_std"] = [{"step": s["step"], LEGACY[0]: 0.25, LEGACY[1]: 0.125} for s in flow["per_step"]]
    table = method_table(results, method_columns(METHODS), "fid", [])
    shown = table.shown.set_index("model").loc["sn-dcgan-hinge"]
    assert shown["DGflow-KL"] == "20.00 ± 0.25" and " ± " not in shown["DOT"]  # one-seed cells stay plain
    frame = table.frame.set_index("model").loc["sn-dcgan-hinge"]
    assert frame["DGflow-KL std"] == 0.25 and frame["DGflow-KL"] == 20.0 and np.isnan(frame["DOT std"])


def test_the_settings_account_is_its_own_table_and_the_captions_point_to_it(tmp_path):
    files = make_suite(tmp_path / "runs", CLEAN_RANDOM, models=("sn-dcgan-hinge",))
    differs = ["eta: 0.05 vs 0.1", "steps: 5 vs 25", "no official ddls settings (not part of the releases)"]
    for path in files:
        result = read_json(path)
        variant = result["method"] != "base"
        result["setting"] = {"setting": "variant" if variant else "official", "official": "cifar10-sngan-hi",
                             "differs": differs if variant else []}
        write_json(path, result)
    build(files, params(), str(tmp_path / "tables" / "images"), str(tmp_path / "figures"))
    fid_md = (tmp_path / "tables" / "images_fid.md").read_text()
    caption = fid_md.split("\n\n|", 1)[0]
    setting = next(p for p in caption.split("\n\n") if p.startswith("Setting:"))
    assert "images_settings.md" in setting and len(setting) < 400  # a pointer, not the account
    assert not any(d in caption for d in differs)
    account = pd.read_csv(tmp_path / "tables" / "images_settings.csv", keep_default_na=False)
    assert list(account.columns) == ["cell", "setting", "official config", "field", "ours", "theirs", "source"]
    assert len(account) == 1 + 3 * len(differs)  # the official base cell once, each variant field once
    base = account[account["cell"] == "cifar10 / sn-dcgan-hinge / trained / Base"].iloc[0]
    assert (base["setting"], base["field"]) == ("official", "")
    eta = account[(account["cell"] == "cifar10 / sn-dcgan-hinge / trained / DOT") & (account["field"] == "eta")]
    assert eta[["ours", "theirs", "source"]].values.tolist() == [
        ["0.05", "0.1", "settings/official.yaml: cifar10-sngan-hi"]]
    assert "no official ddls settings (not part of the releases)" in set(account["field"])
    assert "| cell" in (tmp_path / "tables" / "images_settings.md").read_text()
