"""The pipeline's stages, each declared once: its output pattern, its inputs (edges to the stages that make
them), its parameters and its CLI arguments. Everything else is derived from this table: the Snakemake rules
(workflow/rules/stages.smk), the CLI parser and dispatch (cli.py), the provenance hashes (provenance.py) and
the intermediates list the workflow rebuilds from (``intermediates`` below). A new edge is one ``Edge`` line.

No torch here: the Snakefile imports this module on every plan."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import Callable, Iterator, Union

from . import config as dg
from .catalog import DATASETS, SOURCES, SUITES
from .layout import DATA, DISC, METRICS, MODEL, SAMPLES, TRAINED_MODEL

Wildcards = dict  # {wildcard name: value}, e.g. {"dataset": "25gaussians", "model": "wgan-gp", ...}


@dataclass(frozen=True)
class Edge:
    """One input of a stage: a file that another stage makes.

    role:  the rule's input name, the CLI argument's dest and the stage's ``run()`` keyword, all the same word.
    stage: the stage that makes the file, or a function of the producer's wildcards choosing it.
    when:  None: always read; else a predicate (config, wildcards) -> bool, and the CLI argument is optional.
    at:    the producer's wildcards (config, wildcards) -> dict, or a list of them (`many`: the report's metrics
           files); by default the consumer's own, restricted to the producer's."""

    role: str
    flag: str
    stage: Union[str, Callable[[Wildcards], str]]
    help: str = ""
    when: Callable[[dict, Wildcards], bool] | None = None
    at: Callable[[dict, Wildcards], Union[Wildcards, list]] | None = None
    many: bool = False


@dataclass(frozen=True)
class Option:
    """A CLI argument that is no input file: ``value`` is the pattern the rule passes (wildcards filled), or None
    when the rule file supplies it (the report's --outputs)."""

    flag: str
    help: str = ""
    required: bool = True
    value: str | None = None
    type: Callable | None = None


@dataclass(frozen=True)
class Stage:
    name: str  # the Snakemake rule, and the key of its `resources:` block in the config
    command: str  # the `dgflow-bench <command>` sub-command
    module: str  # stages/<module>.py, whose run() takes the CLI's arguments by their dests
    help: str
    params: Callable[[dict, Wildcards], dict]  # the resolved parameters the job gets as --params
    cli_wildcards: tuple[str, ...] = ()  # wildcards passed to the CLI as --<name>
    output: str | None = None  # the file written (--out); None: the report's, declared by its suite
    inputs: tuple[Edge, ...] = ()
    options: tuple[Option, ...] = ()
    log_dir: str = ""  # results/logs/<log_dir>/<wildcards>.log (and benchmarks alike)
    sealed: bool = True  # writes <out>.config.json sealed with its provenance (--provenance, `record` output)
    device: bool = False  # --device and --threads (a torch job)
    progress: bool = True  # --no-progress
    group: str | None = None  # Snakemake group (refine + evaluate: one cluster job)
    constraints: dict = field(default_factory=dict)  # {wildcard: allowed values}
    extra_outputs: dict = field(default_factory=dict)  # {name: pattern} written beside the output
    required_keys: tuple[str, ...] = ()  # top-level --params keys the stage reads, checked before any work
    # files from outside the pipeline that the job reads (a user's image folder): Snakemake inputs under the role
    # 'external', not CLI arguments (the params name them), so that editing one reruns the job
    external: Callable[[dict, Wildcards], list[str]] | None = None


def dataset_sources(config: dict, dataset: str) -> list[str]:
    """The user's files a dataset is built from (suites.base.DatasetEntry.source_files), for the data job."""
    listing = DATASETS[dataset].source_files
    return listing(config["datasets"][dataset]) if listing else []


def model_maker(wildcards: Wildcards) -> str:
    """The stage that makes a model file: trained by the pipeline, or imported."""
    return "train" if SOURCES[wildcards["source"]].trained else "import_checkpoint"


STAGES: dict[str, Stage] = {stage.name: stage for stage in (
    Stage("data", "data", "data", "build a dataset's train and held-out arrays",
          params=lambda config, w: dg.data_params(config, w["dataset"]), cli_wildcards=("dataset",), output=DATA,
          log_dir="data", required_keys=("seed",), external=lambda config, w: dataset_sources(config, w["dataset"])),
    Stage("train", "train", "train", "train a base GAN (resumable, full-state checkpoints)",
          params=lambda config, w: dg.train_params(config, w["dataset"], w["model"]), cli_wildcards=("dataset", "model"),
          output=TRAINED_MODEL, log_dir="train", device=True, required_keys=("seed", "arch", "recipe"),
          inputs=(Edge("data", "--data", "data"),),
          options=(Option("--state", "full-state checkpoint path (resumed if present)",
                          value="results/models/{dataset}/{model}/trained/train-state.pt"),)),
    Stage("import_checkpoint", "import-checkpoint", "import_checkpoint",
          "import published weights (download + SHA-256, or a local folder)",
          params=lambda config, w: dg.import_params(config, w["source"], w["model"]),
          cli_wildcards=("dataset", "model", "source"), output=MODEL, log_dir="import",
          constraints={"source": tuple(name for name, entry in SOURCES.items() if not entry.trained)}),
    Stage("finetune_discriminator", "finetune", "finetune",
          "build the density-ratio discriminator: logistic fine-tune, or d_phi + d_lambda corrector",
          params=lambda config, w: dg.finetune_params(config, w["dataset"], w["model"], w["source"]),
          cli_wildcards=("dataset",), output=DISC, log_dir="finetune", device=True,
          required_keys=("seed", "density_ratio"),
          # held-out logistic loss / accuracy at every evaluated step and the step kept
          extra_outputs={"validation": "results/models/{dataset}/{model}/{source}/disc-finetuned.validation.json"},
          inputs=(Edge("model_file", "--model-file", model_maker),
                  Edge("data", "--data", "data"),
                  Edge("base_model_file", "--base-model-file", model_maker,
                       "model file whose critic is the frozen d_phi (density_ratio kind 'corrector')",
                       when=lambda config, w: dg.corrector_base(config, w["model"], w["dataset"]) is not None,
                       at=lambda config, w: dg.corrector_base(config, w["model"], w["dataset"]))),
          options=(Option("--state", "corrector only: full-state checkpoint path (resumed if present)",
                          required=False, value="results/models/{dataset}/{model}/{source}/finetune-state.pt"),)),
    Stage("refine", "refine", "refine", "refine samples with one method (DGflow, DOT, DDLS, base) from the "
          "shared latents", params=lambda config, w: dg.refine_params(config, w["method"], w["dataset"], w["model"]),
          cli_wildcards=("dataset",), output=SAMPLES, log_dir="refine", device=True, group="refinement",
          required_keys=("method", "refine"),
          inputs=(Edge("model_file", "--model-file", model_maker),
                  Edge("disc_file", "--disc", "finetune_discriminator",
                       "fine-tuned discriminator file, if the method uses it",
                       when=lambda config, w: dg.uses_finetuned(config, w["model"], w["method"])),
                  Edge("logit_model_file", "--logit-model-file", model_maker,
                       "model file whose critic is the raw discriminator (models.<model>.logit_from)",
                       when=lambda config, w: (dg.follows_raw(config, w["model"], w["method"])
                                               and dg.raw_logit_from(config, w["model"], w["dataset"]) is not None),
                       at=lambda config, w: dg.raw_logit_from(config, w["model"], w["dataset"])),
                  Edge("data", "--data", "data",
                       "the data file, for a method that fits something on held-out real samples (MH-GAN)",
                       when=lambda config, w: dg.reads_real_data(config, w["method"], w["dataset"], w["model"])))),
    Stage("evaluate", "evaluate", "evaluate", "compute the suite's metrics at every snapshot",
          params=lambda config, w: dg.evaluate_params(config, w["dataset"], w["model"], w["source"], w["method"]),
          output=METRICS, log_dir="evaluate", group="refinement", required_keys=("labels", "metrics"),
          inputs=(Edge("samples_file", "--samples", "refine"), Edge("data_file", "--data", "data"))),
    Stage("report", "report", "report", "write the suite's tables and figures",
          params=lambda config, w: dg.report_params(config, w["suite"]), cli_wildcards=("suite",), log_dir="report",
          sealed=False,
          inputs=(Edge("metric_files", "--metrics", "evaluate", many=True,
                       at=lambda config, w: list(metrics_jobs(config, w["suite"]))),),
          options=(Option("--outputs", "JSON {name: [files]}: the files to write, as the suite's report declares "
                          "them (the workflow passes the rule's own outputs)", type=json.loads),)),
    Stage("resolved_config", "resolve-config", "resolve_config", "write the validated, default-filled config",
          params=lambda config, w: config, output="results/config.resolved.json", log_dir="resolved_config",
          sealed=False, progress=False),
)}
BY_COMMAND = {stage.command: stage for stage in STAGES.values()}


def pattern_wildcards(stage: Stage) -> tuple[str, ...]:
    """Every wildcard of the stage's jobs: those in its output pattern, then the CLI-only ones (the report's suite)."""
    from string import Formatter

    names = [name for _, name, _, _ in Formatter().parse(stage.output or "") if name]
    return tuple(dict.fromkeys(names + list(stage.cli_wildcards)))


def metrics_jobs(config: dict, suite: str) -> Iterator[Wildcards]:
    """The evaluate jobs a suite's report reads: its runs' refinement rows, in the config's order."""
    for d, m, s in dg.runs(config):
        if DATASETS[d].suite == suite:
            for method in dg.run_methods(config, d, m):
                yield {"dataset": d, "model": m, "source": s, "method": method}


def edge_jobs(config: dict, edge: Edge, wildcards: Wildcards) -> list[tuple[Stage, Wildcards]] | None:
    """The producer jobs of one input of a job, as (stage, wildcards); None where the job does not read it."""
    if edge.when is not None and not edge.when(config, wildcards):
        return None
    found = edge.at(config, wildcards) if edge.at is not None else wildcards
    return [producer_job(edge.stage, names) for names in (found if edge.many else [found])]


def producer_job(stage: str | Callable[[Wildcards], str], names: Wildcards) -> tuple[Stage, Wildcards]:
    """(stage, its job's wildcards) of the job making a file, from the wildcards of the job reading it."""
    producer = STAGES[stage if isinstance(stage, str) else stage(names)]
    return producer, {k: names[k] for k in pattern_wildcards(producer)}


def output_path(stage: Stage, wildcards: Wildcards) -> str:
    return stage.output.format(**wildcards)


def inputs(config: dict, stage: Stage, wildcards: Wildcards) -> dict[str, str | list[str]]:
    """{role: path (or paths, for a `many` edge)} of the files a job reads (the rule's input function)."""
    found = {}
    for edge in stage.inputs:
        jobs = edge_jobs(config, edge, wildcards)
        if jobs is not None:
            paths = [output_path(producer, names) for producer, names in jobs]
            found[edge.role] = paths if edge.many else paths[0]
    external = stage.external(config, wildcards) if stage.external else []
    if external:
        found["external"] = external
    return found


def final_jobs(config: dict) -> list[tuple[Stage, Wildcards]]:
    """The report job of every suite with refinement rows (the jobs everything else is made for)."""
    suites = sorted({DATASETS[d].suite for d, m, _ in dg.runs(config) if dg.run_methods(config, d, m)})
    return [(STAGES["report"], {"suite": suite}) for suite in suites]


def jobs(config: dict) -> Iterator[tuple[Stage, Wildcards]]:
    """Every job the config's reports need, each once: the input edges followed from the reports down."""
    seen: set = set()
    todo = final_jobs(config)
    while todo:
        stage, names = todo.pop()
        key = (stage.name, tuple(sorted(names.items())))
        if key in seen:
            continue
        seen.add(key)
        yield stage, names
        for edge in stage.inputs:
            todo += edge_jobs(config, edge, names) or []


def intermediates(config: dict) -> dict[str, set[str]]:
    """{file: files made directly from it} for every intermediate the config's jobs produce: the table's input
    edges read backwards. A report's own outputs are final, not intermediates, but they are users of the
    metrics files: without them a metrics file deleted by hand would have no dependant, and nothing rebuilt."""
    users: dict[str, set[str]] = {}
    for stage, names in jobs(config):
        if stage.output:
            made = [output_path(stage, names)]
            users.setdefault(made[0], set())  # an output nothing reads yet is an intermediate too
        else:  # the report: its tables and figures, as its suite declares them
            suite = names["suite"]
            runs = [(d, m, s) for d, m, s in dg.runs(config)
                    if DATASETS[d].suite == suite and dg.run_methods(config, d, m)]
            made = [path for paths in SUITES[suite].report.outputs(runs).values() for path in paths]
        for edge in stage.inputs:
            for producer, producer_names in edge_jobs(config, edge, names) or []:
                users.setdefault(output_path(producer, producer_names), set()).update(made)
    return users


# ---- what the generated Snakemake rules (workflow/rules/stages.smk, report.smk) say ----

def log_path(stage: Stage, folder: str, suffix: str, values: Wildcards | None = None) -> str:
    """results/<folder>/<log_dir>/<wildcards...><suffix> (folder: logs or benchmarks); ``values`` fills them."""
    names = pattern_wildcards(stage)
    path = "/".join([f"results/{folder}/{stage.log_dir}"] + ["{%s}" % name for name in names]) + suffix
    return path.format(**values) if values else path


def command_line(config: dict, stage: Stage, wildcards: Wildcards, found: dict, provenance: str | None = None,
                 out: str | None = None, threads: int = 1, given: dict | None = None) -> str:
    """A job's `dgflow-bench <command>` line: its CLI wildcards, its inputs by flag (``found``: {role: path or
    paths}), params, provenance, output, options (their patterns filled, or ``given`` {flag: value}), device.
    The rules build it per job: a loop's `shell:` would read the loop variable when the job runs, not when the
    rule was made."""
    words = ["dgflow-bench", stage.command, "--params", json.dumps(stage.params(config, wildcards), sort_keys=True)]
    words += [word for name in stage.cli_wildcards for word in (f"--{name}", wildcards[name])]
    for edge in stage.inputs:
        if edge.role in found:
            words += [edge.flag, *(found[edge.role] if edge.many else [found[edge.role]])]
    if stage.sealed:
        words += ["--provenance", provenance]
    if out is not None:
        words += ["--out", out]
    for option in stage.options:
        words += [option.flag, option.value.format(**wildcards) if option.value is not None else given[option.flag]]
    if stage.device:
        words += ["--device", config["device"], "--threads", str(threads)]
    return shlex.join(words)
