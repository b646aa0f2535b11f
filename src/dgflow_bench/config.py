"""The config's one source of defaults is the JSON schema beside this file; this module validates a
config against it and turns it into the per-job parameter dicts that the Snakemake rules pass to the CLI.
Keeping these builders here (not in the Snakefile) makes them testable and keeps the rules one line."""

from __future__ import annotations

import copy
import hashlib
import math
import re
from pathlib import Path
from typing import Iterator

import yaml

from .catalog import DATASETS, METHODS, MODELS, SOURCES, SUITES, declare, load_extensions
from .io import derive_seed  # noqa: F401  (defined with the other foundation pieces: refine/driver.py uses it)
from .refine.method_params import resolve_discriminator
from .resolve import (apply_overrides, corrector_base, d_phi_dataset, density_ratio, raw_logit_from,  # noqa: F401
                      run_methods, run_settings)

SCHEMA_PATH = Path(__file__).parent / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    pass


def load_schema() -> dict:
    """config.schema.yaml with the blocks of schemas/definitions/*.yaml under `definitions`, and what the
    registries declare: each dataset's and model's config block, and every method kind's parameters."""
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    definitions: dict = {}
    for part in sorted((SCHEMA_PATH.parent / "definitions").glob("*.yaml")):
        blocks = yaml.safe_load(part.read_text())
        clash = set(blocks) & set(definitions)
        if clash:
            raise ValueError(f"schema definitions {sorted(clash)} are defined twice ({part.name})")
        definitions.update(blocks)
    schema["definitions"] = definitions
    properties = schema["properties"]
    properties["datasets"]["properties"] = {name: entry.schema for name, entry in DATASETS.items()}
    properties["models"]["properties"] = {name: family.schema for name, family in MODELS.items()}
    definitions["method"] = _method_schema()
    return schema


def _method_schema() -> dict:
    """One if/then block per registered method kind, built from its parameter class (refine/methods/<kind>.py)."""
    cases = [{"if": {"properties": {"kind": {"const": kind}}}, "then": params.schema()}
             for kind, params in METHODS.items()]
    return {"type": "object", "required": ["kind"], "properties": {"kind": {"enum": list(METHODS)}},
            "allOf": cases}


def load_config_file(path: str | Path) -> dict:
    """A YAML (or JSON) config file read with the safe loader; a tag such as ``!!python/object`` (which would
    build an object, i.e. run code) or a syntax error is a ConfigError naming the file, the line and the tag."""
    try:
        config = yaml.safe_load(Path(path).read_text())
    except yaml.constructor.ConstructorError as exc:
        mark = f" (line {exc.problem_mark.line + 1})" if exc.problem_mark else ""
        raise ConfigError(f"{path}{mark}: {exc.problem}; configs hold plain values only, never Python objects: "
                          f"remove the tag") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML ({str(exc).splitlines()[0]}): fix the syntax "
                          f"(do not mix tabs and spaces)") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path} must hold a mapping of keys (datasets:, models:, methods:, ...)")
    return config


def validate(config: dict, source: str | None = None) -> dict:
    """A default-filled copy of ``config``; raises ConfigError naming the offending key. ``source``: the config
    file it was read from (the workflow passes its --configfile); then every error names it too, and the
    datasets that the models name are checked as well."""
    try:
        checked = _validate(config)
        if source is not None:
            list(runs(checked))
    except ConfigError as exc:
        if source is None:
            raise
        raise ConfigError(f"{source}: {exc}") from None
    return checked


def _key_path(path) -> str:
    """jsonschema's path as the config reads: models.wgan-gp.datasets[0]."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<top level>"


def _validate(config: dict) -> dict:
    import jsonschema

    extensions = config.get("extensions", [])
    if not (isinstance(extensions, list) and all(isinstance(m, str) for m in extensions)):
        raise ConfigError(f"invalid config:\n  extensions: {extensions!r} (a list of importable module names)")
    try:
        load_extensions(extensions)  # first: their methods and datasets are part of the schema
        declare(config)  # so are the datasets and models the config's own blocks declare (`kind:`)
    except ValueError as exc:
        raise ConfigError(f"invalid config:\n  {exc}") from None
    schema = load_schema()
    config = _yaml11_numbers(copy.deepcopy(config))
    bad = [f"  {key}: {value} (numbers must be finite)" for key, value in _non_finite(config)]
    if bad:
        raise ConfigError("invalid config:\n" + "\n".join(bad))
    base = jsonschema.validators.validator_for(schema)

    def fill_defaults(validator, properties, instance, subschema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                found, default = _default_of(sub, schema["definitions"])
                if found:
                    instance.setdefault(key, copy.deepcopy(default))
        yield from base.VALIDATORS["properties"](validator, properties, instance, subschema)

    validator = jsonschema.validators.extend(base, {"properties": fill_defaults})(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {_key_path(e.absolute_path)}: {e.message}" for e in errors]
        raise ConfigError("invalid config:\n" + "\n".join(lines))
    check_overrides(config, validator)
    check_density_ratio_bases(config)
    check_logit_sources(config)
    return config


def _default_of(sub: dict, definitions: dict) -> tuple[bool, object]:
    """(found, default) of a property: the default written beside it, else its ``$ref`` definition's own (a
    chain of refs followed), so a definition's default is written once, in the definition."""
    seen = set()
    while "default" not in sub and "$ref" in sub and sub["$ref"] not in seen:
        seen.add(sub["$ref"])
        prefix = "#/definitions/"
        if not sub["$ref"].startswith(prefix):
            raise ValueError(f"schema $ref {sub['$ref']!r}: only {prefix}<name> refs are followed")
        sub = definitions[sub["$ref"][len(prefix):]]
    return ("default" in sub), sub.get("default")


def check_overrides(config: dict, validator) -> None:
    """Each `overrides` entry names configured datasets, models and methods, and every block it merges is
    valid where it lands (the merged config is validated as a whole; errors name the entry)."""
    for i, entry in enumerate(config["overrides"]):
        key = f"overrides[{i}]"
        for axis, key_in_config in (("datasets", "datasets"), ("models", "models"), ("methods", "methods"),
                                    ("rows", "methods")):
            unknown = sorted(set(entry.get(axis, [])) - set(config[key_in_config]))
            if unknown:
                raise ConfigError(f"{key}.{axis} names {', '.join(map(repr, unknown))}, not in the config's "
                                  f"{key_in_config}: block ({', '.join(config[key_in_config])})")
        # the merged blocks, every method kept (`rows` only selects among them)
        merged = {**config, **apply_overrides(config, [{k: v for k, v in entry.items() if k != "rows"}])}
        errors = sorted(validator.iter_errors(merged), key=lambda e: list(e.absolute_path))
        if errors:
            lines = [f"  {key}, merged into {_key_path(e.absolute_path)}: {e.message}" for e in errors]
            raise ConfigError("invalid config:\n" + "\n".join(lines))


# YAML 1.1 (PyYAML, which Snakemake reads configs with) takes 1e-2 for a string: it wants 1.0e-2. Such strings
# are meant as numbers wherever they appear in a config (no string setting looks like one).
_EXPONENT_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def _yaml11_numbers(node):
    if isinstance(node, dict):
        return {key: _yaml11_numbers(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_yaml11_numbers(value) for value in node]
    if isinstance(node, str) and _EXPONENT_NUMBER.match(node.strip()):
        return float(node)
    return node


def _non_finite(node, path: str = ""):
    """(key, value) of every NaN or infinite number: JSON has none, and no setting means one."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _non_finite(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _non_finite(value, f"{path}[{i}]")
    elif isinstance(node, float) and not math.isfinite(node):
        yield path, node


def _check_borrowed(config: dict, key: str, model: str, borrowed: dict, fallback: str, source_key: str) -> None:
    """The borrowed critic's model must run on that dataset, from that source, or the DAG has no job making it."""
    other, dataset = config["models"].get(borrowed["model"]), borrowed["dataset"]
    if other is None or dataset not in other["datasets"]:
        missing = "is not configured" if other is None else f"does not list {dataset!r}"
        extra = "" if dataset in config["datasets"] else f" and a datasets.{dataset} block"
        raise ConfigError(
            f"{key}: {model} borrows the critic of {borrowed['model']} trained on {dataset}, but "
            f"models.{borrowed['model']} {missing}. Fix: add {dataset!r} to models.{borrowed['model']}.datasets"
            f"{extra} (the pipeline then trains it first), {fallback}")
    if borrowed["source"] not in other["sources"]:
        raise ConfigError(f"{source_key} is {borrowed['source']!r}, but models.{borrowed['model']}.sources is "
                          f"{other['sources']}; add it there or choose one of those")


def check_density_ratio_bases(config: dict) -> None:
    """A corrector's d_phi is the critic of models.<base_model> on the same dataset (or d_phi_dataset's): that
    model must run there, from base_source. Checked for models some method refines along the fine-tuned
    discriminator (else none is built)."""
    for model, spec in config["models"].items():
        if not any(uses_finetuned(config, model, method) for method in config["methods"]):
            continue
        estimator = density_ratio(config, model)
        if estimator["kind"] != "corrector":
            continue
        key = f"models.{model}.density_ratio"
        if estimator["base_model"] not in MODELS:
            raise ConfigError(f"{key}.base_model is {estimator['base_model']!r}, not a registered model; registered: "
                              f"{', '.join(sorted(MODELS))} (the paper's d_phi is sn-dcgan-ns)")
        for dataset in spec["datasets"]:
            _check_borrowed(config, key, model, corrector_base(config, model, dataset),
                            f"or set {key}: {{kind: logistic}}", f"{key}.base_source")
        _check_published_corrector(config, model, estimator)


def _check_published_corrector(config: dict, model: str, estimator: dict) -> None:
    """A published corrector corrects the d_phi it was trained against: DOT's published discriminator."""
    importers = SUITES[MODELS[model].suite].importers
    publishing = [s for s in config["models"][model]["sources"]
                  if getattr(importers.get(s), "load_corrector", None) is not None]
    if publishing and estimator["use_published"] and estimator["base_source"] != "dot-pretrained":
        key = f"models.{model}.density_ratio"
        raise ConfigError(
            f"{key}: {model} comes from {publishing[0]}, whose published corrector was trained against DOT's "
            f"published {estimator['base_model']} discriminator, but {key}.base_source is "
            f"{estimator['base_source']!r}. Fix: set {key}.base_source: dot-pretrained (with dot-pretrained in "
            f"models.{estimator['base_model']}.sources), or {key}.use_published: false to train our own corrector")


def check_logit_sources(config: dict) -> None:
    """A borrowed raw logit is the critic of another configured model on the same (or d_phi_dataset's) data."""
    for model, spec in config["models"].items():
        for dataset in spec["datasets"]:
            borrowed = raw_logit_from(config, model, dataset)
            if borrowed is not None:
                _check_borrowed(config, f"models.{model}.logit_from", model, borrowed,
                                f"or drop models.{model}.logit_from", f"models.{model}.logit_from.source")


def runs(config: dict) -> Iterator[tuple[str, str, str]]:
    """Every (dataset, model, source) the config asks for."""
    for model, spec in config["models"].items():
        suite = MODELS[model].suite
        for i, dataset in enumerate(spec["datasets"]):
            if dataset not in DATASETS:
                raise ConfigError(f"models.{model}.datasets[{i}] is {dataset!r}, not a registered dataset; "
                                  f"registered: {', '.join(sorted(DATASETS))}")
            if DATASETS[dataset].suite != suite:
                raise ConfigError(f"models.{model}.datasets names {dataset!r}, a {DATASETS[dataset].suite} dataset; "
                                  f"{model} is a {suite} model")
            if dataset not in config["datasets"]:
                raise ConfigError(f"models.{model}.datasets names {dataset!r}, which has no block under datasets:")
            for source in spec["sources"]:
                SOURCES[source]  # an unknown source is an error naming the registered ones
                yield dataset, model, source


def suites(config: dict) -> list[str]:
    return sorted({DATASETS[d].suite for d, _, _ in runs(config)})


def data_params(config: dict, dataset: str) -> dict:
    return {**config["datasets"][dataset], "seed": derive_seed(config["seed"], "data", dataset)}


def train_params(config: dict, dataset: str, model: str) -> dict:
    spec = config["models"][model]
    return {"arch": spec["arch"], "recipe": spec["train"], "seed": derive_seed(config["seed"], "train", dataset, model)}


def import_params(config: dict, source: str, model: str) -> dict:
    """The source's settings that this model's importer reads (its suite's ``import_keys``): editing an image
    key never reruns a 2-D import, and vice versa. A model whose family has its own (a model you bring) reads
    its own block instead."""
    own = getattr(MODELS[model], "import_params", None)
    if own is not None:
        return own(config["models"][model])
    wanted = SUITES[MODELS[model].suite].import_keys
    return {key: value for key, value in config["sources"][source].items() if wanted(key)}


def finetune_params(config: dict, dataset: str, model: str, source: str) -> dict:
    # The logistic fine-tune reads the shared finetune block; a corrector only its own density_ratio block,
    # so editing one estimator's settings reruns only its jobs.
    estimator = density_ratio(config, model)
    seed = derive_seed(config["seed"], "finetune", dataset, model, source)
    if estimator["kind"] == "corrector":
        return {"density_ratio": estimator, "seed": seed}
    return {**config["finetune"], "density_ratio": estimator, "seed": seed}


def discriminator_for(config: dict, model: str, method: str) -> str | None:
    """'raw', 'finetuned', or None (a method that follows no discriminator) for this model and method."""
    return resolve_discriminator(config["methods"][method], config["models"][model])


def refine_params(config: dict, method: str, dataset: str, model: str) -> dict:
    # Only this method's block (its discriminator resolved for the model) and the shared latent settings:
    # editing one method reruns only its jobs.
    settings = run_settings(config, dataset, model)
    spec = settings["methods"][method]
    if "discriminator" in spec:
        spec["discriminator"] = discriminator_for(config, model, method)
    params = {"name": method, "method": spec, "refine": settings["refine"]}
    storage = SUITES[DATASETS[dataset].suite].sample_storage  # e.g. images: the form their protocol scores
    if storage is not None:
        params["storage"] = storage(config["evaluate"])
    return params


def reads_real_data(config: dict, method: str, dataset: str, model: str) -> bool:
    """Whether this refinement fits something on held-out real samples (MH-GAN's calibration): its job then
    reads the data file."""
    spec = refine_params(config, method, dataset, model)["method"]
    return bool(METHODS[spec["kind"]].from_config(spec).real_samples)


def evaluate_params(config: dict, dataset: str, model: str, source: str, method: str) -> dict:
    labels = {"dataset": dataset, "model": model, "source": source, "method": method,
              "discriminator": discriminator_for(config, model, method) or ""}
    suite = SUITES[DATASETS[dataset].suite]
    if suite.official is not None:  # official | variant, and which fields differ from the authors' settings
        labels["setting"] = suite.official(config, dataset, model, source, method)
    keys = suite.evaluate_keys  # only what this suite's metrics read
    return {"labels": labels, "metrics": {k: config["evaluate"][k] for k in keys}}


def report_params(config: dict, suite: str) -> dict:
    # the suite's own evaluate keys (for its captions); kind + f map each method onto the paper's columns
    # (Base, DOT, DGflow-KL/JS/logD, DDLS)
    params = {"suite": suite, "n_samples": config["refine"]["n_samples"], "method_order": list(config["methods"]),
              "evaluate": {k: config["evaluate"][k] for k in SUITES[suite].evaluate_keys},
              "methods": {name: {k: spec[k] for k in ("kind", "f") if k in spec}
                          for name, spec in config["methods"].items()}}
    # runs whose overrides refine another number of samples (the captions say so)
    other = {f"{d} / {m}": n for d, m, _ in runs(config) if DATASETS[d].suite == suite
             for n in [run_settings(config, d, m)["refine"]["n_samples"]] if n != params["n_samples"]}
    if other:
        params["n_samples_except"] = dict(sorted(other.items()))
    return params


def uses_finetuned(config: dict, model: str, method: str) -> bool:
    return discriminator_for(config, model, method) == "finetuned"


def follows_raw(config: dict, model: str, method: str) -> bool:
    return discriminator_for(config, model, method) == "raw"
