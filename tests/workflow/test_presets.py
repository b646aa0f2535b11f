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
    assert "official rows (64, reproduce the authors' settings)" in output
    assert "variant rows (56, ours; the table captions say which fields differ)" in output
    for rule, resources in jobs:
        assert re.search(r"\bmem_mb=\d+", resources), (rule, resources)
        assert ("gpu=1" in resources) == (rule in GPU_RULES), (rule, resources)
        assert not re.search(r"gpu=([2-9]|\d\d)", resources), (rule, resources)


# The ablation presets (docs/ablations.md) and the config whose rows they vary: a row named as a row of that
# config is that row unchanged; <that name>-<change>[-<change>...] is that row with each change applied.
ABLATIONS = [("ablation-toy2d.yaml", REPO / "config.yaml"),
             ("ablation-images.yaml", REPO / "presets" / "images-paper.yaml")]
ABLATION_REFERENCE = "dgflow-kl"  # the authors' row of every ablation preset
# name token -> (knob, value); 'p' is the decimal point (row names may not hold a '.')
ABLATION_TOKENS = [(r"gamma(\d+(?:p\d+)?)", "gamma", lambda v: float(v.replace("p", "."))),
                   (r"eta(\d+(?:p\d+)?)", "eta", lambda v: float(v.replace("p", "."))),
                   (r"steps(\d+)", "steps", int),
                   (r"data", "space", lambda _: "data"),
                   (r"ft", "discriminator", lambda _: "finetuned"),
                   (r"corr", "discriminator", lambda _: "finetuned")]
# the fields of the authors'-settings comparison (settings/official.py) each knob may change
OFFICIAL_FIELDS = {"gamma": {"gamma"}, "eta": {"eta"}, "steps": {"steps"}, "space": {"space"},
                   "discriminator": {"discriminator", "d_phi", "corrector"}}


def resolved(path) -> dict:
    return validate(yaml.safe_load(Path(path).read_text()))


def ablation_row(name: str, parent_rows) -> tuple[str, dict]:
    """(parent row, {knob: value} the name changes) of an ablation row's name."""
    parent = max((p for p in parent_rows if name == p or name.startswith(p + "-")), key=len, default=None)
    assert parent is not None, f"{name}: no row of the parent config is a prefix of its name"
    tokens = name[len(parent) + 1:].split("-") if name != parent else []
    changes = {}
    for token in tokens:
        found = [(knob, value(m.group(1) if m.groups() else token))
                 for pattern, knob, value in ABLATION_TOKENS if (m := re.fullmatch(pattern, token))]
        assert len(found) == 1, f"{name}: {token!r} names no single knob"
        (knob, value), = found
        assert knob not in changes, f"{name}: changes {knob} twice"
        changes[knob] = value
    return parent, changes


@pytest.mark.parametrize("preset, parent", ABLATIONS, ids=lambda p: getattr(p, "stem", p))
def test_ablation_rows_vary_only_what_their_names_say(preset, parent):
    ours, theirs = resolved(REPO / "presets" / preset), resolved(parent)
    reference = ours["methods"][ABLATION_REFERENCE]
    assert reference == theirs["methods"][ABLATION_REFERENCE]  # the authors' row, unchanged
    for name, spec in ours["methods"].items():
        base, changes = ablation_row(name, theirs["methods"])
        assert spec == {**theirs["methods"][base], **changes}, name
    # what the ablation asks about is there: gamma 0, two other step sizes, two other step counts, the other
    # space, the other discriminator, and the three f-divergences (values of the dgflow rows that differ from
    # the reference row)
    dgflow = {name: spec for name, spec in ours["methods"].items() if spec["kind"] == "dgflow"}
    varied = {}
    for spec in dgflow.values():
        for knob, value in spec.items():
            if value != reference[knob]:
                varied.setdefault(knob, set()).add(value)
    assert varied["gamma"] == {0.0}
    assert len(varied["eta"]) >= 2 and len(varied["steps"]) >= 2
    assert varied["space"] == {"data"} and varied["discriminator"] == {"finetuned"}
    assert varied["f"] == {"KL", "JS", "logD"} - {reference["f"]}
    # ... side by side at the reference row's step size: rows that differ from it in f alone
    same_but_f = {spec["f"] for spec in dgflow.values() if {**spec, "f": reference["f"]} == reference}
    assert same_but_f == {"KL", "JS", "logD"}, same_but_f


@pytest.mark.parametrize("preset, parent", ABLATIONS, ids=lambda p: getattr(p, "stem", p))
def test_ablation_presets_reuse_the_parents_models_and_rows(preset, parent):
    """Same shared blocks, same provenance: run in the parent's folder, an ablation preset retrains nothing
    and reruns no row the parent already ran."""
    from dgflow_bench import provenance
    from dgflow_bench.config import run_methods, runs

    ours, theirs = resolved(REPO / "presets" / preset), resolved(parent)
    for key in ("seed", "refine", "finetune", "evaluate"):
        assert ours[key] == theirs[key], key
    assert all(ours["datasets"][d] == theirs["datasets"][d] for d in ours["datasets"])
    parent_runs = set(runs(theirs))
    for dataset, model, source in runs(ours):
        assert (dataset, model, source) in parent_runs
        assert provenance.model(ours, dataset, model, source) == provenance.model(theirs, dataset, model, source)
        shared = set(run_methods(ours, dataset, model)) & set(run_methods(theirs, dataset, model))
        assert ABLATION_REFERENCE in shared
        for method in shared:
            assert (provenance.refinement(ours, dataset, model, source, method)
                    == provenance.refinement(theirs, dataset, model, source, method)), (dataset, model, method)


def test_images_ablation_rows_are_official_or_vary_the_named_fields():
    """Each image row is compared with the authors' settings (settings/official.py): the rows named as
    images-paper.yaml's rows keep its verdict, and each other row differs from the authors' in exactly the
    fields its name changes; -ft runs on a logistic fine-tune, -corr on a corrector."""
    from dgflow_bench.config import density_ratio, run_methods, runs
    from dgflow_bench.settings.official import compare

    ours, theirs = resolved(REPO / "presets" / "ablation-images.yaml"), resolved(REPO / "presets" / "images-paper.yaml")
    kinds = set()
    for dataset, model, source in runs(ours):
        for method in run_methods(ours, dataset, model):
            verdict = compare(ours, dataset, model, source, method)
            _, changes = ablation_row(method, theirs["methods"])
            tokens = method.split("-")
            if "corr" in tokens or "ft" in tokens:
                kind = density_ratio(ours, model)["kind"]
                assert kind == ("corrector" if "corr" in tokens else "logistic"), (model, method, kind)
                kinds.add(kind)
            if not changes:
                assert verdict == compare(theirs, dataset, model, source, method), (model, method)
                continue
            fields = {d.split(":")[0] for d in verdict["differs"]}
            assert fields and fields <= set().union(*(OFFICIAL_FIELDS[k] for k in changes)), (model, method, fields)
            assert all(k in fields for k in changes), (model, method, fields)
        assert compare(ours, dataset, model, source, ABLATION_REFERENCE)["setting"] == "official", model
    assert kinds == {"logistic", "corrector"}  # raw vs fine-tuned vs corrected


def test_images_ablation_tiny_is_the_full_one_in_miniature():
    """The same rows on the same models, each with the full preset's knobs but its steps (and snapshots);
    the steps sweep keeps its order."""
    from dgflow_bench.config import density_ratio, run_methods

    full = resolved(REPO / "presets" / "ablation-images.yaml")
    tiny = resolved(REPO / "presets" / "ablation-images-tiny.yaml")
    assert list(tiny["methods"]) == list(full["methods"])
    assert list(tiny["models"]) == list(full["models"]) and list(tiny["datasets"]) == list(full["datasets"])
    for model in full["models"]:
        assert density_ratio(tiny, model)["kind"] == density_ratio(full, model)["kind"]
        assert tiny["models"][model]["arch"]["z_prior"] == full["models"][model]["arch"]["z_prior"]
        for dataset in full["models"][model]["datasets"]:
            assert run_methods(tiny, dataset, model) == run_methods(full, dataset, model)
    small = ("steps", "snapshot_every")
    for name, spec in full["methods"].items():
        mini = tiny["methods"][name]
        assert {k: v for k, v in mini.items() if k not in small} == {k: v for k, v in spec.items() if k not in small}
    steps = {name: (spec["steps"], tiny["methods"][name]["steps"]) for name, spec in full["methods"].items()
             if "steps" in spec}
    assert max(small for _, small in steps.values()) <= 4
    for a, (full_a, tiny_a) in steps.items():
        for b, (full_b, tiny_b) in steps.items():
            assert (full_a < full_b) == (tiny_a < tiny_b) and (full_a == full_b) == (tiny_a == tiny_b), (a, b)
