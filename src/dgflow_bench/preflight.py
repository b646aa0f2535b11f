"""Checks the workflow runs while it builds its job graph, before any job starts (so also on `snakemake -n`):

- relative paths in a config resolve against the folder of the config file that holds them, the same with
  and without `--directory`;
- every external input the configured runs read (data roots, Inception weights, checkpoint folders) exists
  and, where a SHA-256 is known, matches it; errors name the config key and the fix;
- intermediates deleted or damaged by hand are found, so the workflow rebuilds them with their dependants;
- which configured rows reproduce the authors' settings and which are variants (``setting_lines``);
- ``check_config_file``: all of the above for one config file, without Snakemake (`dgflow-bench check-config`),
  whose own reading of a --configfile reports a YAML problem without the file, the line or the tag.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import config as dg
from .io import CorruptFileError, read_json
from .layout import DATA, MODEL, sidecar
from .stage_table import intermediates
from .catalog import DATASETS, MODELS, SOURCES, SUITES
from .suites import brought_check


def path_keys(config: dict) -> list[tuple[tuple[str, ...], str]]:
    """(key path, value) of every non-null path-valued setting of the config."""
    found = []
    for name, spec in config.get("datasets", {}).items():
        for key in ("root", "path"):  # path: the file or folder of a dataset you bring (suites/brought_data.py)
            if isinstance(spec, dict) and spec.get(key):
                found.append((("datasets", name, key), spec[key]))
    for name, spec in config.get("sources", {}).items():
        if isinstance(spec, dict) and spec.get("local_dir"):
            found.append((("sources", name, "local_dir"), spec["local_dir"]))
    weights = config.get("evaluate", {}).get("inception_weights")
    if weights:
        found.append((("evaluate", "inception_weights"), weights))
    return found


def resolve_paths(config: dict, base: str | os.PathLike) -> dict:
    """``config`` with its relative paths made absolute against ``base`` (the config file's folder)."""
    for keys, value in path_keys(config):
        path = Path(os.path.expanduser(value))
        node = config
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = str(path if path.is_absolute() else (Path(base) / path).resolve())
    return brought_check.resolve(config, base)  # a brought model's weights, with their hashes


def external_input_errors(config: dict, root: str | os.PathLike = ".") -> list[str]:
    """One message per external input that a configured run needs and that is missing or wrong. Data roots and
    checkpoint folders are needed only while what is made from them is not built yet (under ``root``), so a
    raw-data folder may go once its dataset file exists; the Inception weights are read by every image
    evaluation and report."""
    runs = list(dg.runs(config))
    built = lambda pattern, **names: (Path(root) / pattern.format(**names)).exists()  # noqa: E731
    errors = []
    for dataset in sorted({d for d, _, _ in runs}):
        spec = config["datasets"][dataset]
        if spec.get("root") and not built(DATA, dataset=dataset):
            errors += _data_root_errors(dataset, spec)
        if spec.get("path") and not built(DATA, dataset=dataset):
            errors += _data_path_errors(dataset, spec)
    for source in sorted({s for _, _, s in runs if not SOURCES[s].trained}):
        needed = [(d, m) for d, m, s in runs if s == source and not built(MODEL, dataset=d, model=m, source=s)]
        if needed:
            errors += _checkpoint_errors(config, source, needed)
    errors += brought_check.errors(config, runs, root)  # models you bring: what their builder returns
    weights = config["evaluate"].get("inception_weights")
    if weights and any("inception_weights" in SUITES[DATASETS[d].suite].evaluate_keys for d, _, _ in runs):
        errors += _weights_errors(weights)
    return errors


def _data_root_errors(dataset: str, spec: dict) -> list[str]:
    key = f"datasets.{dataset}.root"
    if not Path(spec["root"]).is_dir():
        return [f"{key} = {spec['root']!r}: no such folder. Fix: point it at the extracted data, or set it to "
                f"null to download {spec.get('url', 'the data')}"]
    return [f"{key}: {problem}" for problem in _entry_check(dataset, spec, key)]


def _data_path_errors(dataset: str, spec: dict) -> list[str]:
    """A dataset you bring: its entry's check reads the file or folder's headers and names the key itself."""
    return _entry_check(dataset, spec, f"datasets.{dataset}.path")


def _entry_check(dataset: str, spec: dict, key: str) -> list[str]:
    """What the dataset's entry finds wrong in what its data stage reads (``check_root``), as sentences."""
    check = DATASETS[dataset].check_root
    try:
        if check is not None:
            check(spec, key)
    except (FileNotFoundError, ValueError) as exc:
        return [str(exc)]
    return []


def _checkpoint_errors(config: dict, source: str, runs: list[tuple[str, str]]) -> list[str]:
    from .io import sha256_file

    spec, key = config["sources"].get(source, {}), f"sources.{source}.local_dir"
    if not spec.get("local_dir"):
        return []  # downloaded by the import job (SHA-256 checked there)
    folder = Path(spec["local_dir"])
    if not folder.is_dir():
        return [f"{key} = {spec['local_dir']!r}: no such folder. Fix: point it at the folder holding the "
                "published checkpoints, or set it to null to download them"]
    errors = []
    for dataset, model in runs:
        importer = SUITES[MODELS[model].suite].importers.get(source)
        if importer is None:
            continue  # the import job names the problem (no checkpoints of this source for the suite)
        try:
            names, expected = importer.files(dataset, model, spec)
        except ValueError as exc:
            errors.append(f"{key}: {exc}")
            continue
        for name in names.values():
            path = folder / name
            if not path.is_file():
                errors.append(f"{key} = {str(folder)!r} lacks {name} ({model} on {dataset})")
            elif name in expected and sha256_file(path) != expected[name]:
                errors.append(f"{path} does not match its SHA-256 {expected[name][:12]}...: a corrupt or different "
                              f"file; replace it (or, for your own retrained file, give its hash under "
                              f"sources.{source}.sha256 / image_sha256)")
    return errors


def _weights_errors(weights: str) -> list[str]:
    from .io import sha256_file
    from .metrics.feature_extractors import REFERENCE_WEIGHTS_SHA256_PREFIX, is_reference_weights_hash

    key = "evaluate.inception_weights"
    if not Path(weights).is_file():
        return [f"{key} = {weights!r}: no such file. Fix: copy pt_inception-2015-12-05-6726825d.pth there (it is "
                "never downloaded), or set the key to the file's path"]
    if not is_reference_weights_hash(sha256_file(weights)):
        return [f"{key} = {weights!r}: its SHA-256 does not start with {REFERENCE_WEIGHTS_SHA256_PREFIX}, so it is "
                "not the TF inception-2015-12-05 file FID/IS are defined with"]
    return []


def damaged_intermediates(config: dict, root: str | os.PathLike = ".") -> dict[str, str]:
    """{intermediate: what is wrong} for files that were made before (their sidecar exists, or a file made from
    them does) but are now missing, or whose size differs from the one their sidecar recorded. Full SHA-256
    checks happen when a job reads the file (io.verify_file)."""
    root = Path(root)
    found = {}
    for path, users in intermediates(config).items():
        target, record = root / path, root / sidecar(path)
        if not target.exists():
            made_from_it = [u for u in users if (root / u).exists()]
            if record.exists() or made_from_it:
                found[path] = "missing" + (f", but {min(made_from_it)} was made from it" if made_from_it else "")
            continue
        if record.exists():
            try:
                content = read_json(record)
                written = ((content.get("output") if isinstance(content, dict) else None) or {}).get("bytes")
            except (CorruptFileError, AttributeError):
                found[path] = f"its record {sidecar(path)} is unreadable"
                continue
            if written is not None and target.stat().st_size != written:
                found[path] = f"{target.stat().st_size} bytes where {written} were written (truncated?)"
    return found


def setting_lines(config: dict) -> list[str]:
    """The configured rows of suites with official settings, official ones first, then variants: one line per
    dataset / model / source listing its methods (the tables' captions say what each variant changes)."""
    groups: dict[str, list[tuple[str, list[str]]]] = {"official": [], "variant": []}
    for dataset, model, source in dg.runs(config):
        suite = SUITES[DATASETS[dataset].suite]
        if suite.official is None:
            continue
        settings = {method: suite.official(config, dataset, model, source, method)["setting"]
                    for method in dg.run_methods(config, dataset, model)}
        for setting, rows in groups.items():
            methods = [m for m, s in settings.items() if s == setting]
            if methods:
                rows.append((f"{dataset} / {model} / {source}", methods))
    if not any(groups.values()):
        return []
    lines = ["the authors' settings (settings/official.yaml) in this config:"]
    for setting, why in (("official", "reproduce the authors' settings"),
                         ("variant", "ours; the table captions say which fields differ")):
        lines.append(f"  {setting} rows ({sum(len(m) for _, m in groups[setting])}, {why}):")
        lines.extend(f"    {run}: {', '.join(methods)}" for run, methods in groups[setting])
    return lines


def check_config_file(path: str | os.PathLike) -> list[str]:
    """The planner's checks of one config file, read with the safe loader as Snakemake's --configfile is:
    raises ConfigError naming the file and the key (or the line and the YAML tag); else what it configures."""
    config = resolve_paths(dg.validate(dg.load_config_file(path), source=str(path)), Path(path).resolve().parent)
    errors = external_input_errors(config)
    if errors:
        raise dg.ConfigError(f"{path}: external inputs the configured runs need are missing or wrong:\n  "
                             + "\n  ".join(errors))
    runs = list(dg.runs(config))
    return [f"{path}: valid: {len(runs)} dataset x model runs, {len(config['methods'])} methods; every external "
            f"input is present", *setting_lines(config)]
