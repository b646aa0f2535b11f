"""Cost of a pipeline run, read from Snakemake's per-job benchmark files (results/benchmarks/**.tsv):
wall seconds, CPU seconds and peak RSS per rule, and their sums over all jobs.
Target for the default suite (issue 14): <= 6 minutes with --cores 2; docs/results.md ("Time") says where it stands.

    python benchmarks/bench_suite.py [--results results] [--run]   # --run: time a fresh `snakemake --cores 2`
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def read_benchmarks(results: Path) -> pd.DataFrame:
    frames = []
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        frame = pd.read_csv(tsv, sep="\t")
        frame["rule"] = tsv.relative_to(results / "benchmarks").parts[0].removesuffix(".tsv")
        frame["job"] = str(tsv.relative_to(results / "benchmarks").with_suffix(""))
        frames.append(frame)
    if not frames:
        raise SystemExit(f"no benchmark files under {results / 'benchmarks'}: run the pipeline first")
    return pd.concat(frames, ignore_index=True)


def fresh_run(cores: int, keep: Path) -> float:
    """Run the default suite from scratch in a temp dir; copy its benchmark files to ``keep``."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(REPO / "config.yaml", tmp)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory",
                        tmp, "--configfile", str(Path(tmp) / "config.yaml"), "--cores", str(cores), "-q"],
                       check=True)
        elapsed = time.perf_counter() - start
        shutil.copytree(Path(tmp) / "results" / "benchmarks", keep / "benchmarks", dirs_exist_ok=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=REPO / "results")
    parser.add_argument("--run", action="store_true", help="time a fresh default-suite run first")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    if args.run:
        args.results = Path(tempfile.mkdtemp(prefix="dgflow-suite-bench-"))
        print(f"fresh `snakemake --cores {args.cores}` of the default suite: "
              f"{fresh_run(args.cores, args.results):.1f} s wall")
    frame = read_benchmarks(args.results)
    per_rule = frame.groupby("rule").agg(jobs=("s", "size"), wall_s=("s", "sum"), max_wall_s=("s", "max"),
                                         cpu_s=("cpu_time", "sum"), max_rss_mb=("max_rss", "max"))
    print(per_rule.sort_values("wall_s", ascending=False).round(1).to_string())
    print(f"\nsum of job wall times: {frame['s'].sum():.1f} s over {len(frame)} jobs; "
          f"sum of CPU time {frame['cpu_time'].sum():.1f} s")


if __name__ == "__main__":
    main()
