"""The plan-time side of a model you bring (suites/brought_models.py), torch-free like the rest of the planner:

- ``resolve(config, base)``: the weights path made absolute against the config file's folder, its SHA-256 and
  the hash of the builder's package code filled into the block (so the import job's params, and the resolved
  config, carry them: a new file reruns the model's dependants);
- ``errors(config, runs, root)``: one sentence per problem, before any job runs. What the builder returns is
  checked in a subprocess (models/brought.probe_main imports torch and the user's code), cached under
  ``results/.plan-cache/`` by (builder, weights SHA-256, code hash, sample shape): an unchanged plan runs none.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from ..io import read_json, sha256_file, write_json
from ..refine.method_params import resolve_discriminator
from ..registry import DATASETS
from ..resolve import density_ratio, raw_logit_from, run_methods
from .brought_models import KIND, SUITE_NAMES

CACHE = "results/.plan-cache/brought-models.json"
PROBE = "import sys; from dgflow_bench.models.brought import probe_main; sys.exit(probe_main())"
PROBE_TIMEOUT_S = 600
_hashes: dict[tuple, str] = {}  # (path, size, mtime_ns) -> SHA-256: a plan hashes each file once


def brought_blocks(config: dict) -> dict:
    """{name: block} of the config's models that are brought (``kind: builder``)."""
    return {name: block for name, block in (config.get("models") or {}).items()
            if isinstance(block, dict) and block.get("kind") == KIND}


def _file_hash(path: Path) -> str:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _hashes:
        _hashes[key] = sha256_file(path)
    return _hashes[key]


def module_file(module: str) -> Path | None:
    """The file of ``module`` found on sys.path without importing it (importing would run the user's code,
    and torch, in the planner): <entry>/a/b.py or <entry>/a/b/__init__.py."""
    parts = module.split(".")
    for entry in sys.path:
        base = Path(entry or ".")
        for candidate in (base.joinpath(*parts).with_suffix(".py"), base.joinpath(*parts, "__init__.py")):
            if candidate.is_file():
                return candidate.resolve()
    return None


def code_hash(builder: str) -> str | None:
    """SHA-256 over the .py files of the builder's top-level package (a lone module: that file), names and
    contents; None when the module is not found as a file on sys.path (the check then names the problem)."""
    module = builder.partition(":")[0]
    found = module_file(module)
    if found is None:
        return None
    depth = module.count(".") + (found.name == "__init__.py")
    top = found.parents[depth - 1] if depth else found
    files = sorted(top.rglob("*.py")) if top.is_dir() else [top]
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(top.parent)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def resolve(config: dict, base: str | os.PathLike) -> dict:
    """Fill each brought block's weights (absolute), sha256 (a given one is kept: ``errors`` compares) and
    code_sha256, in place; a missing file leaves sha256 null for ``errors`` to name."""
    for block in brought_blocks(config).values():
        path = Path(os.path.expanduser(block["weights"]))
        path = path if path.is_absolute() else (Path(base) / path).resolve()
        block["weights"] = str(path)
        if not block.get("sha256") and path.is_file():
            block["sha256"] = _file_hash(path)
        block["code_sha256"] = code_hash(block["builder"])
    return config


def sample_shape(dataset: str) -> list[int] | None:
    """What one sample of ``dataset`` is: [2] on 2-D data, [3, R, R] at an image dataset's stored resolution
    (None when its row does not say: the generator's output shape is then not compared)."""
    entry = DATASETS[dataset]
    if entry.suite == "toy2d":
        return [2]
    resolution = getattr(entry.row, "resolution", None)
    return [3, int(resolution), int(resolution)] if resolution else None


def errors(config: dict, runs: list[tuple[str, str, str]], root: str | os.PathLike = ".") -> list[str]:
    found = []
    for name, block in brought_blocks(config).items():
        datasets = [d for d, m, _ in runs if m == name]
        key, path = f"models.{name}.weights", Path(block["weights"])
        if not path.is_file():
            found.append(f"{key} = {block['weights']!r}: no such file; point it at the torch.save'd weights (a "
                         "relative path is relative to the config file's folder)")
            continue
        actual = _file_hash(path)
        if block.get("sha256") and block["sha256"].lower() != actual:
            found.append(f"models.{name}.sha256 is {block['sha256'][:12]}..., but {path} hashes to {actual[:12]}...: "
                         "another file; set sha256 to the new hash (or null) if it is meant")
            continue
        wrong = [d for d in datasets if DATASETS[d].suite not in SUITE_NAMES]
        if wrong:
            found.append(f"models.{name}.datasets: {wrong[0]} is a {DATASETS[wrong[0]].suite} dataset; a brought "
                         f"model runs on {' or '.join(SUITE_NAMES)} datasets")
            continue
        for dataset in dict.fromkeys(datasets):
            result = _checked(name, block, actual, dataset, Path(root))
            if not result["ok"]:
                found.append(result["error"])
                break
            if not result["critic"]:
                found += _critic_errors(config, name, dataset)
    return found


def _critic_errors(config: dict, name: str, dataset: str) -> list[str]:
    """A builder with no critic: every row that follows a discriminator must borrow one by config key."""
    block, found = config["models"][name], []
    for method in run_methods(config, dataset, name):
        kind = resolve_discriminator(config["methods"][method], block)
        if kind == "raw" and raw_logit_from(config, name, dataset) is None:
            found.append(f"methods.{method} follows the raw discriminator, but the builder of models.{name} returns "
                         f"no critic; set models.{name}.logit_from: {{model: <a configured model with a critic>, "
                         f"source: <its source>}}, or drop {method} for it (overrides rows)")
        elif kind == "finetuned" and density_ratio(config, name)["kind"] == "logistic":
            found.append(f"methods.{method} follows the fine-tuned discriminator, but the builder of models.{name} "
                         f"returns no critic to fine-tune; set models.{name}.density_ratio: {{kind: corrector, "
                         "base_model: <a configured model with a critic>}}")
    return found[:1]  # the first says what to do for all


def _checked(name: str, block: dict, weights_sha: str, dataset: str, root: Path) -> dict:
    """The probe's verdict for one model on one dataset: from the cache, else from the subprocess."""
    shape = sample_shape(dataset)
    cache_key = json.dumps([block["builder"], weights_sha, block.get("code_sha256"), shape])
    cache_file = root / CACHE
    cached = _read_cache(cache_file)
    if block.get("code_sha256") and cache_key in cached:
        return cached[cache_key]
    cmd = [sys.executable, "-c", PROBE, block["builder"], block["weights"], name, dataset, json.dumps(shape)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"models.{name}.builder: checking {block['builder']} took over "
                                      f"{PROBE_TIMEOUT_S} s; make the builder build its nets without heavy work"}
    except (ValueError, IndexError):
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"ok": False, "error": f"models.{name}.builder: the check of {block['builder']} ended without a "
                                      f"verdict ({tail}); run python -c '{PROBE}' to see why"}
    if result["ok"] and block.get("code_sha256"):  # successes only: a fixed environment is checked again
        cached[cache_key] = result
        write_json(cache_file, cached)
    return result


def _read_cache(path: Path) -> dict:
    try:
        found = read_json(path)
        return found if isinstance(found, dict) else {}
    except Exception:  # a missing or damaged cache is only a slower plan
        return {}
