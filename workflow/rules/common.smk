# Input functions and helpers: expand the config's experiment matrix into targets.
import json
import re

from dgflow_bench import config as dg, layout, provenance, stage_table as table
from dgflow_bench.catalog import DATASETS, SOURCES, SUITES

RUNS = list(dg.runs(config))
METHODS = list(config["methods"])
IMPORTED_SOURCES = [name for name, entry in SOURCES.items() if not entry.trained]
CONDA_ENV = "../../environment.yml"


wildcard_constraints:
    dataset="|".join(map(re.escape, config["datasets"])),
    model="|".join(map(re.escape, config["models"])),
    source="|".join(map(re.escape, SOURCES)),
    method="|".join(map(re.escape, METHODS)),


def as_json(obj):
    return json.dumps(obj, sort_keys=True)


def suite_runs(suite):
    """The suite's runs that have refinement rows (overrides' `rows` can leave a run with none: a model that
    only lends its critic is built, as a dependency, but never refined or tabulated)."""
    return [(d, m, s) for d, m, s in RUNS if DATASETS[d].suite == suite and dg.run_methods(config, d, m)]


def suite_datasets(suite):
    return sorted({d for d, _, _ in suite_runs(suite)})


def configured_suites():
    return [name for name in SUITES if suite_runs(name)]


def report_outputs(suite):
    """{name: [files]} of the suite's report (suites/<suite>.py), for its rule and for `all`."""
    return SUITES[suite].report.outputs(suite_runs(suite))


def final_targets():
    """Every table and figure of the configured suites (rule all adds preflight's REBUILD list)."""
    targets = ["results/config.resolved.json"]
    for suite in configured_suites():
        targets += [path for paths in report_outputs(suite).values() for path in paths]
    return targets


def announce_outputs():
    """Printed when a run succeeds: where to look."""
    tables = [t for t in final_targets() if t.startswith("results/tables/")]
    figures = [t for t in final_targets() if t.startswith("results/figures/")]
    print("\ndgflow-bench finished.")
    print("  tables:  " + ", ".join(tables))
    print("  figures: " + ", ".join(figures))
    print("  resolved config: results/config.resolved.json; logs: results/logs/; job costs: results/benchmarks/")
    print("  HTML report with everything: snakemake --report results/report.html")


def mem_for(stage):
    """Memory of the config's resource table, scaled by the attempt so --retries survives an OOM kill."""
    return lambda wildcards, attempt: config["resources"][stage]["mem_mb"] * attempt


def runtime_for(stage):
    return config["resources"][stage]["runtime"]
