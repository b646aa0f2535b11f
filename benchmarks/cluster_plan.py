"""What a preset costs on a SLURM cluster, from a dry run: jobs per rule, cluster submissions after the
"refinement" grouping of the SLURM profile, GPU jobs, and the GPU-hours those jobs request (the config's
`resources` runtimes: an upper bound, not a measurement).

    python benchmarks/cluster_plan.py presets/toy2d-paper.yaml presets/text-paper.yaml
"""

from __future__ import annotations

import argparse
import math
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from dgflow_bench.config import validate

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "workflow" / "profiles" / "slurm" / "config.yaml"
GROUPED = ("refine", "evaluate")  # group "refinement": one submission per pair


def dry_run_counts(configfile: Path) -> dict[str, int]:
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--snakefile", str(REPO / "Snakefile"),
                               "--directory", tmp, "--configfile", str(configfile.resolve())],
                              capture_output=True, text=True, check=True)
    counts = {}
    for line in proc.stdout.split("Job stats:")[-1].splitlines():
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m and m.group(1) not in ("total", "all"):
            counts[m.group(1)] = int(m.group(2))
    return counts


def local_rules() -> set[str]:
    """The Snakefile's `localrules:` (run on the submitting host, never submitted)."""
    text = (REPO / "Snakefile").read_text()
    block = re.search(r"^localrules:\n((?:[ \t]+\w+,?\n)+)", text, re.MULTILINE)
    return set(re.findall(r"\w+", block.group(1))) if block else set()


def plan(configfile: Path) -> None:
    config = validate(yaml.safe_load(configfile.read_text()))
    profile = yaml.safe_load(PROFILE.read_text())
    gpu_rules = {rule for rule, res in profile["set-resources"].items() if res.get("gpu")}
    per_group = int(dict(item.split("=") for item in profile["group-components"])["refinement"])
    counts = dry_run_counts(configfile)
    local = local_rules()
    submissions = {rule: n for rule, n in counts.items() if rule not in GROUPED and rule not in local}
    submissions["refinement (refine+evaluate)"] = math.ceil(counts.get("refine", 0) / per_group)
    stage = lambda rule: "report" if rule.startswith("report") else rule  # noqa: E731
    gpu_hours = sum(counts[r] * config["resources"][stage(r)]["runtime"] for r in counts if r in gpu_rules) / 60
    gpu_jobs = sum(counts[r] for r in ("train", "finetune_discriminator") if r in counts)
    gpu_jobs += submissions["refinement (refine+evaluate)"]
    print(f"== {configfile}")
    print("  jobs per rule (dry run): " + ", ".join(f"{r} {n}" for r, n in counts.items()))
    n_local = sum(n for rule, n in counts.items() if rule in local)
    print(f"  cluster submissions: {sum(submissions.values())} ({gpu_jobs} on one GPU each, none on more; "
          f"refine + evaluate in bundles of {per_group}); {n_local} jobs on the submitting host")
    print(f"  requested GPU time (resources table, upper bound): {gpu_hours:.1f} GPU-hours")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="+", type=Path)
    for configfile in parser.parse_args().configs:
        plan(configfile)


if __name__ == "__main__":
    main()
