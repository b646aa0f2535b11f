# dgflow-bench: data -> base model (train or import) -> discriminator fine-tuning -> refinement
# (DGflow, DOT, DDLS from identical latents) -> metrics -> tables and figures.
from dgflow_bench.config import validate as validate_config


# A --configfile given on the command line is a whole config (e.g. a preset), not a patch merged into
# config.yaml: merging would silently add the default suite's methods to every preset.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


# Validate against the package's JSON schema (the one place defaults live) before any job runs.
_validated = validate_config(config)
config.clear()
config.update(_validated)


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/refine.smk"
include: "workflow/rules/report.smk"


# Seconds of work each: on a cluster they run on the submitting host instead of waiting in the queue.
localrules:
    resolved_config,
    report_toy2d,
    report_text,
    report_images,


rule all:
    default_target: True
    input:
        final_targets(),


onsuccess:
    announce_outputs()
