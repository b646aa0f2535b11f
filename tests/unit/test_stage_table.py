"""The stage table (stage_table.py) is the one place an input edge is written: every edge it declares is
followed by the generated Snakemake rules (the job's input and its command line), by the provenance hash and
by the intermediates list, and the CLI passes every argument it parses to the stage's run()."""

from __future__ import annotations

import importlib
import inspect
import re
import shlex
import subprocess
import sys

import pytest
import yaml

from conftest import REPO

from dgflow_bench import provenance
from dgflow_bench.cli import CHECK_CONFIG, build_parser
from dgflow_bench.config import validate
from dgflow_bench.stage_table import STAGES, edge_jobs, intermediates, jobs, output_path

# together these configs use every edge of the table (the test says which edge none of them uses)
CONFIGS = [REPO / "config.yaml", REPO / "presets" / "images-corrector-tiny.yaml"]


def edges(config: dict):
    """(consumer stage, its wildcards, edge, producer stage, its wildcards) of every input of every job."""
    for stage, names in jobs(config):
        for edge in stage.inputs:
            for producer, producer_names in edge_jobs(config, edge, names) or []:
                yield stage, names, edge, producer, producer_names


@pytest.fixture(scope="module")
def configs():
    return {path.name: validate(yaml.safe_load(path.read_text())) for path in CONFIGS}


def test_every_edge_is_used_by_some_config(configs):
    declared = {(stage.name, edge.role) for stage in STAGES.values() for edge in stage.inputs}
    used = {(stage.name, edge.role) for config in configs.values() for stage, _, edge, _, _ in edges(config)}
    assert declared - used == set(), "add a config to CONFIGS that uses these edges"


def test_every_edge_is_in_the_provenance(configs):
    for config in configs.values():
        for stage, names, edge, producer, producer_names in edges(config):
            hashes = provenance.parts(config, stage, names)["inputs"][edge.role]
            assert provenance.of(config, producer, producer_names) in (hashes if edge.many else [hashes])


def test_every_edge_is_in_the_intermediates(configs):
    for config in configs.values():
        users = intermediates(config)
        for stage, names, edge, producer, producer_names in edges(config):
            made_from = users[output_path(producer, producer_names)]
            if stage.output is not None:  # a report's outputs are final, not intermediates
                assert output_path(stage, names) in made_from, (stage.name, edge.role)


def test_the_cli_passes_every_argument_to_the_stage():
    """dispatch calls run() with the parsed arguments its signature names: none may be left out."""
    parser = build_parser()
    not_for_run = {"stage", "no_progress", "threads", "provenance", "help"}
    commands = parser._subparsers._group_actions[0].choices
    assert set(commands) == {s.command for s in STAGES.values()} | {CHECK_CONFIG}  # every stage, and the checker
    for command, sub in commands.items():
        if command == CHECK_CONFIG:  # no stage: tests/unit/test_error_messages.py runs it
            continue
        stage = next(s for s in STAGES.values() if s.command == command)
        accepted = inspect.signature(importlib.import_module(f"dgflow_bench.stages.{stage.module}").run).parameters
        dests = {action.dest for action in sub._actions} - not_for_run
        assert dests <= set(accepted), (command, dests - set(accepted))
        assert {edge.role for edge in stage.inputs} <= dests


def planned(configfile, workdir) -> list[dict]:
    """Every job of a dry run: its rule, input files, output files and command line."""
    cmd = [sys.executable, "-m", "snakemake", "-n", "-p", "--snakefile", str(REPO / "Snakefile"), "--directory",
           str(workdir), "--configfile", str(configfile)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = []
    for block in re.split(r"\n\s*\[[^\]]+\]\n", proc.stdout):
        rule = re.search(r"^\s*(?:local)?rule (\w+):", block, re.MULTILINE)
        field = {name: re.search(rf"^\s+{name}: (.*)$", block, re.MULTILINE) for name in ("input", "output")}
        shell = re.search(r"^Shell command: (.*)$", block, re.MULTILINE)
        if rule is None or field["output"] is None:  # rule all makes nothing
            continue
        found.append({"rule": rule.group(1), "output": set(field["output"].group(1).split(", ")),
                      "input": set(field["input"].group(1).split(", ")) if field["input"] else set(),
                      "shell": shlex.split(shell.group(1))})
    return found


@pytest.mark.workflow
@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_edge_is_in_the_generated_rules(path, configs, tmp_path):
    config = configs[path.name]
    by_output = {out: job for job in planned(path, tmp_path) for out in job["output"]}
    expected = {}
    for stage, names, edge, producer, producer_names in edges(config):
        made = output_path(stage, names) if stage.output else f"report_{names['suite']}"
        expected.setdefault(made, {}).setdefault(edge.flag, []).append(output_path(producer, producer_names))
    reports = {job["rule"]: job for job in by_output.values() if job["rule"].startswith("report_")}
    for made, flags in expected.items():
        job = reports[made] if made.startswith("report_") else by_output[made]
        wanted = {path for paths in flags.values() for path in paths}
        assert job["input"] == wanted, made  # the rule reads exactly the table's inputs
        for flag, paths in flags.items():  # and names each after its flag on the command line
            at = job["shell"].index(flag)
            assert job["shell"][at + 1: at + 1 + len(paths)] == paths, (made, flag)


def test_generated_rules_run_their_own_command():
    """`shell:` is evaluated when a job runs: in a loop it would read the loop variable then (the last stage),
    so the generated rules take their whole command line from a param made per stage."""
    for name in ("stages.smk", "report.smk"):
        text = (REPO / "workflow" / "rules" / name).read_text()
        shells = re.findall(r"^\s+shell:\n\s+(.*)$", text, re.MULTILINE)
        assert shells == ['"{params.command} 2> {log}"'], name
