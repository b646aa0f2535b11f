"""The whole Snakemake workflow on a tiny config in a temp dir, through `python -m snakemake` in a
subprocess: tables and figures appear, both model sources run, a rerun does nothing, editing one method
reruns only its jobs, a bad config fails before any job runs, and the same config gives the same numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fixtures.workflow import job_counts, snakemake, tiny_config, write_config

from dgflow_bench.snapshots import open_snapshots

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, dot_format_source):
    workdir = tmp_path_factory.mktemp("suite")
    write_config(workdir, tiny_config(dot_format_source))
    proc = snakemake(workdir)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir


def test_outputs_and_table(finished_run):
    table = pd.read_csv(finished_run / "results/tables/toy2d.csv")
    assert {"dataset", "source", "method", "discriminator", "step"} <= set(table.columns)
    assert len(table) == 2 * 2 * 6  # datasets x sources x methods
    assert set(table["source"]) == {"trained", "dot-pretrained"}
    assert {"hq4sigma_pct", "energy_u_heldout300"} <= set(table.columns)
    # values at each method's configured final step
    assert set(table.loc[table.method == "base", "step"]) == {0}
    assert set(table.loc[table.method != "base", "step"]) == {4}
    for ext in ("md", "tex"):
        assert (finished_run / f"results/tables/toy2d.{ext}").stat().st_size > 0
    for dataset in ("25gaussians", "swissroll"):
        for suffix in ("", "_steps"):
            png = finished_run / f"results/figures/toy2d_{dataset}{suffix}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (finished_run / "results/config.resolved.json").exists()
    assert (finished_run / "results/samples/swissroll/wgan-gp/trained/dot.config.json").exists()


def test_all_methods_start_from_identical_latents(finished_run):
    base_dir = finished_run / "results/samples/25gaussians/wgan-gp/dot-pretrained"
    def first_snapshot(path):
        with open_snapshots(path) as snapshots:
            return snapshots.latents, snapshots.read(0)

    runs = {p.stem: first_snapshot(p) for p in base_dir.glob("*.npz")}
    reference = runs["base"]
    for name, (latents, samples) in runs.items():
        np.testing.assert_array_equal(latents, reference[0], err_msg=name)
        np.testing.assert_array_equal(samples, reference[1], err_msg=name)


def test_dot_records_k_eff(finished_run):
    import json

    info = json.loads((finished_run / "results/samples/25gaussians/wgan-gp/trained/dot.config.json").read_text())
    k_eff = info["info"]["k_eff"]
    assert all(k > 0 for k in (k_eff if isinstance(k_eff, list) else [k_eff]))


def test_rerun_does_nothing(finished_run):
    proc = snakemake(finished_run, "-n")
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_changing_one_eta_reruns_only_that_method(finished_run, dot_format_source, tmp_path):
    config = tiny_config(dot_format_source)
    config["methods"]["dgflow-kl"]["eta"] = 0.07
    write_config(finished_run, config)
    try:
        proc = snakemake(finished_run, "-n")
    finally:
        write_config(finished_run, tiny_config(dot_format_source))
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = job_counts(proc.stdout)
    # the resolved-config record changes too (it holds the whole config); no data, train or finetune job
    assert counts == {"refine": 4, "evaluate": 4, "report_toy2d": 1, "resolved_config": 1, "all": 1}, counts
    assert "dgflow-kl.npz" in proc.stdout and "dgflow-kl-raw.npz" not in proc.stdout


def test_same_config_same_numbers(finished_run, dot_format_source, tmp_path):
    # a second workdir with one dataset and one source: identical samples and table rows
    config = tiny_config(dot_format_source)
    config["datasets"].pop("swissroll")
    config["models"]["wgan-gp"]["datasets"] = ["25gaussians"]
    write_config(tmp_path, config)
    proc = snakemake(tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    for source in ("trained", "dot-pretrained"):
        for method in ("dgflow-kl", "ddls", "dot"):
            rel = f"results/samples/25gaussians/wgan-gp/{source}/{method}.npz"
            with open_snapshots(tmp_path / rel) as mine, open_snapshots(finished_run / rel) as theirs:
                assert mine.steps == theirs.steps
                for step in mine.steps:
                    np.testing.assert_array_equal(mine.read(step), theirs.read(step))
    for source in ("trained", "dot-pretrained"):  # checkpoints too, byte for byte
        rel = f"results/models/25gaussians/wgan-gp/{source}/model.pt"
        assert (tmp_path / rel).read_bytes() == (finished_run / rel).read_bytes(), rel
    first = pd.read_csv(finished_run / "results/tables/toy2d.csv")
    second = pd.read_csv(tmp_path / "results/tables/toy2d.csv")
    pd.testing.assert_frame_equal(first[first.dataset == "25gaussians"].reset_index(drop=True), second)


def test_unknown_key_fails_before_any_job(tmp_path, dot_format_source):
    config = tiny_config(dot_format_source)
    config["methods"]["dgflow-kl"]["etaa"] = 0.1
    config["refine"]["n_samples"] = "many"
    write_config(tmp_path, config)
    proc = snakemake(tmp_path)
    assert proc.returncode != 0
    assert "methods.dgflow-kl" in proc.stderr and "'etaa' was unexpected" in proc.stderr
    assert "refine.n_samples" in proc.stderr
    assert not (tmp_path / "results").exists()


def test_missing_checkpoint_folder_names_config_key(tmp_path, dot_format_source):
    config = tiny_config(dot_format_source)
    config["sources"]["dot-pretrained"]["local_dir"] = str(tmp_path / "nowhere")
    config["datasets"].pop("swissroll")
    config["models"]["wgan-gp"].update(datasets=["25gaussians"], sources=["dot-pretrained"])
    write_config(tmp_path, config)
    proc = snakemake(tmp_path)
    assert proc.returncode != 0  # while the job graph is built: no job ran
    assert "sources.dot-pretrained.local_dir" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


def test_checkpoint_folder_without_a_needed_file_names_it(tmp_path, dot_format_source):
    config = tiny_config(dot_format_source)
    config["models"]["wgan-gp"].update(sources=["dot-pretrained"])
    folder = tmp_path / "partial"
    folder.mkdir()
    for name in Path(dot_format_source["local_dir"]).iterdir():
        if "25gaussians" in name.name:
            (folder / name.name).write_bytes(name.read_bytes())
    config["sources"]["dot-pretrained"]["local_dir"] = str(folder)
    write_config(tmp_path, config)
    proc = snakemake(tmp_path, "-n")
    assert proc.returncode != 0
    assert "lacks G_swissroll_WGAN-GP.npz" in proc.stdout + proc.stderr
