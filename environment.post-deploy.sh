#!/usr/bin/env bash
# Run by `snakemake --sdm conda` right after it creates the environment of environment.yml: installs this
# package into it (editable, from the checkout whose Snakefile sets DGFLOW_BENCH_SOURCE), so the rules'
# `dgflow-bench` command exists there and follows the checkout's code. The env file cannot do it itself:
# snakemake copies it elsewhere first, so a relative `-e .` would point at the copy's folder.
set -euo pipefail
pip install --no-deps -e "${DGFLOW_BENCH_SOURCE:?set by the Snakefile; run through snakemake}"
