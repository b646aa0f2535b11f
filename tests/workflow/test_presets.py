"""Every preset stays a valid, complete config that Snakemake can plan; the image paper preset plans every
job with its memory and, under the SLURM profile, one GPU for each GPU stage."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO

from dgflow_bench.config import validate
from dgflow_bench.preflight import resolve_paths

PRESETS = sorted((REPO / "presets").glob("*.yaml"))
GPU_RULES = {"train", "finetune_discriminator", "refine", "evaluate"}


def dry_run(configfile, workdir, *args) -> str:
    cmd = [sys.executable, "-m", "snakemake", "-n", "--snakefile", str(REPO / "Snakefile"), "--directory",
           str(workdir), "--configfile", str(configfile), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr  # jobs on stdout; the official / variant rows on stderr


def planned_jobs(output: str) -> list[tuple[str, str]]:
    """(rule, resources line) of every job a dry run lists (jobs of a group job are indented)."""
    return re.findall(r"^\s*(?:local)?rule (\w+):\n(?:.*\n)*?\s+resources: (.*)$", output, re.MULTILINE)


def plannable(preset, tmp_path, dot_source: dict):
    """A copy of ``preset`` whose external inputs exist here: its relative paths resolved against presets/,
    the Inception weights (not on this machine; never downloaded) left out, a checkpoint folder that is not
    here replaced by the test's own DOT-format files. Planning then checks everything else."""
    config = resolve_paths(yaml.safe_load(preset.read_text()), preset.parent)
    if config.get("evaluate", {}).get("inception_weights"):
        config["evaluate"]["inception_weights"] = None
    source = config.get("sources", {}).get("dot-pretrained", {})
    if source.get("local_dir") and not Path(source["local_dir"]).is_dir():
        source.update(dot_source)
    copy = tmp_path / preset.name
    copy.write_text(yaml.safe_dump(config, sort_keys=False))
    return copy


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_preset_validates_and_plans(preset, tmp_path, dot_format_source):
    validate(yaml.safe_load(preset.read_text()))
    assert "Job stats:" in dry_run(plannable(preset, tmp_path, dot_format_source), tmp_path)


def test_image_paper_preset_without_weights_fails_the_dry_run(tmp_path):
    """The weights path is relative to presets/: absent here, the plan fails naming the key, before any job."""
    cmd = [sys.executable, "-m", "snakemake", "-n", "--snakefile", str(REPO / "Snakefile"), "--directory",
           str(tmp_path), "--configfile", str(REPO / "presets" / "images-paper.yaml")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    said = proc.stdout + proc.stderr  # a dry run logs to stdout
    assert "evaluate.inception_weights" in said
    assert str(REPO / "weights" / "pt_inception-2015-12-05-6726825d.pth") in said
    assert not (tmp_path / "results").exists()


def test_image_paper_preset_lists_gpu_and_memory_for_every_job(tmp_path, dot_format_source):
    output = dry_run(plannable(REPO / "presets" / "images-paper.yaml", tmp_path, dot_format_source), tmp_path,
                     "--workflow-profile", str(REPO / "workflow" / "profiles" / "slurm"))
    jobs = [(rule, res) for rule, res in planned_jobs(output) if rule != "all"]
    counts = {rule: sum(r == rule for r, _ in jobs) for rule, _ in jobs}
    # 15 model x dataset runs, 8 methods each: 120 refine + evaluate runs
    assert counts == {"resolved_config": 1, "data": 3, "train": 15, "finetune_discriminator": 15, "refine": 120,
                      "evaluate": 120, "report_images": 1}, counts
    # the paper's other generators: every stage of MMDGAN, OCFGAN-GP, the VAE and Glow on CIFAR10 and STL10
    # 32 px (their finetune job is the corrector; Glow's STL10 rows are ours, the release has no such config)
    # each job's own wildcards line: no other job's `rule` line may lie between (a job without a model wildcard
    # must not borrow the next job's)
    planned = set(re.findall(r"^\s*rule (\w+):\n(?:(?!\s*(?:local)?rule ).*\n)*?\s+wildcards: dataset=([\w-]+), "
                             r"model=([\w-]+)", output, re.MULTILINE))
    pairs = [(d, m) for m in ("mmdgan", "ocfgan-gp", "vae", "glow") for d in ("cifar10", "stl10-32")]
    for dataset, model in pairs:
        for rule in ("train", "finetune_discriminator", "refine", "evaluate"):
            assert (rule, dataset, model) in planned, (rule, dataset, model)
    # the official rows and the variant rows, listed apart before the jobs
    assert "official rows (76, reproduce the authors' settings)" in output
    assert "variant rows (44, ours; the table captions say which fields differ)" in output
    for rule, resources in jobs:
        assert re.search(r"\bmem_mb=\d+", resources), (rule, resources)
        assert ("gpu=1" in resources) == (rule in GPU_RULES), (rule, resources)
        assert not re.search(r"gpu=([2-9]|\d\d)", resources), (rule, resources)
