"""Every preset stays a valid, complete config that Snakemake can plan; the image paper preset plans every
job with its memory and, under the SLURM profile, one GPU for each GPU stage."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml

from conftest import REPO

from dgflow_bench.config import validate

PRESETS = sorted((REPO / "presets").glob("*.yaml"))
GPU_RULES = {"train", "finetune_discriminator", "refine", "evaluate"}


def dry_run(configfile, workdir, *args) -> str:
    cmd = [sys.executable, "-m", "snakemake", "-n", "--snakefile", str(REPO / "Snakefile"), "--directory",
           str(workdir), "--configfile", str(configfile), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def planned_jobs(output: str) -> list[tuple[str, str]]:
    """(rule, resources line) of every job a dry run lists (jobs of a group job are indented)."""
    return re.findall(r"^\s*(?:local)?rule (\w+):\n(?:.*\n)*?\s+resources: (.*)$", output, re.MULTILINE)


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_preset_validates_and_plans(preset, tmp_path):
    validate(yaml.safe_load(preset.read_text()))
    assert "Job stats:" in dry_run(preset, tmp_path)


def test_image_paper_preset_lists_gpu_and_memory_for_every_job(tmp_path):
    output = dry_run(REPO / "presets" / "images-paper.yaml", tmp_path,
                     "--workflow-profile", str(REPO / "workflow" / "profiles" / "slurm"))
    jobs = [(rule, res) for rule, res in planned_jobs(output) if rule != "all"]
    counts = {rule: sum(r == rule for r, _ in jobs) for rule, _ in jobs}
    # 7 models x datasets, 7 methods each: 49 refine + evaluate runs at 50,000 samples
    assert counts == {"resolved_config": 1, "data": 2, "train": 7, "finetune_discriminator": 7, "refine": 49,
                      "evaluate": 49, "report_images": 1}, counts
    for rule, resources in jobs:
        assert re.search(r"\bmem_mb=\d+", resources), (rule, resources)
        assert ("gpu=1" in resources) == (rule in GPU_RULES), (rule, resources)
        assert not re.search(r"gpu=([2-9]|\d\d)", resources), (rule, resources)
