# dgflow-bench: data -> base model (train or import) -> discriminator fine-tuning -> refinement
# (DGflow, DOT, DDLS from identical latents) -> metrics -> tables and figures.
import json
import os
import sys

from dgflow_bench.catalog import DECLARED_VARIABLE, EXTENSIONS_VARIABLE, declared_blocks
from dgflow_bench.config import ConfigError, validate as validate_config
from dgflow_bench.preflight import resolve_paths


# A --configfile given on the command line is a whole config (e.g. a preset), not a patch merged into
# config.yaml: merging would silently add the default suite's methods to every preset. The default is found
# beside this Snakefile, so --directory works without --configfile.
if not workflow.overwrite_configfiles:

    configfile: os.path.join(workflow.basedir, "config.yaml")


# environment.post-deploy.sh installs the package from here into a `--sdm conda` environment.
os.environ.update(DGFLOW_BENCH_SOURCE=workflow.basedir)

# Relative paths in a config are relative to the folder of the config file (the last --configfile, else
# config.yaml beside this Snakefile), whatever the working directory.
CONFIG_FILE = (
    os.path.abspath(workflow.overwrite_configfiles[-1])
    if workflow.overwrite_configfiles
    else os.path.join(workflow.basedir, "config.yaml")
)
CONFIG_DIR = os.path.dirname(CONFIG_FILE)

# Validate against the package's JSON schema (the one place defaults live) before any job runs; errors name
# the config file and the key.
try:
    _validated = resolve_paths(validate_config(config, source=os.path.relpath(CONFIG_FILE)), CONFIG_DIR)
except ConfigError as exc:  # the sentence alone: a Snakefile line and a traceback are no help to fix a config
    sys.exit(f"error: {exc}")
config.clear()
config.update(_validated)
# the jobs import the config's extensions too (catalog.py reads this variable)
os.environ[EXTENSIONS_VARIABLE] = ",".join(config["extensions"])
# and the datasets and models the config declares (`kind:` blocks), with their defaults filled in
os.environ[DECLARED_VARIABLE] = json.dumps(declared_blocks(config), sort_keys=True)


include: "workflow/rules/common.smk"
include: "workflow/rules/preflight.smk"
include: "workflow/rules/stages.smk"
include: "workflow/rules/report.smk"


# Seconds of work: on a cluster it runs on the submitting host instead of waiting in the queue (so do the
# report_<suite> rules: `localrule: True` in report.smk).
localrules:
    resolved_config,


rule all:
    default_target: True
    input:
        final_targets(),
        # intermediates deleted by hand: remade first, they are newer than what was made from them, so that
        # is rebuilt too (Snakemake alone skips a missing file whose dependants exist)
        REBUILD,


onstart:
    keep_report_aside()


onsuccess:
    drop_kept_report()
    announce_outputs()


onerror:
    restore_kept_report()
