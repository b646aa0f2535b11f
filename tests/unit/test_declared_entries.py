"""A config block with `kind:` declares its own dataset or model (catalog.declare): it is registered under the
block's name at plan time and, through DGFLOW_BENCH_DECLARED, in every job; a built-in name is never replaced,
an unknown kind is named with the registered ones, and a name declared again follows its new block."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dgflow_bench import catalog
from dgflow_bench.catalog import DATASETS, declare, declared_blocks
from dgflow_bench.registry import DATASET_KINDS, DeclaredKind
from dgflow_bench.suites.base import DatasetEntry


def _points_entry(name: str, block: dict) -> DatasetEntry:
    return DatasetEntry("toy2d", lambda params, seed, out: {"declared": name, "size": block["size"]},
                        {"type": "object", "properties": {"kind": {"const": "toy-points"}, "size": {"type": "integer"}}})


@pytest.fixture()
def toy_kind():
    DATASET_KINDS.register("toy-points", DeclaredKind({}, _points_entry, "a test's kind"))
    yield
    DATASET_KINDS.unregister("toy-points")
    for name in ("my-points",):
        DATASETS.unregister(name)
        catalog._declared.pop(("datasets", name), None)


def test_a_declared_dataset_is_registered_under_its_block_name(toy_kind):
    config = {"datasets": {"my-points": {"kind": "toy-points", "size": 3}, "25gaussians": {}}, "models": {}}
    assert declared_blocks(config) == {"datasets": {"my-points": {"kind": "toy-points", "size": 3}}, "models": {}}
    declare(config)
    assert DATASETS["my-points"].suite == "toy2d"
    assert DATASETS["my-points"].write({}, 0, "")["size"] == 3
    declare(config)  # the same block again: the same entry
    first = DATASETS["my-points"]
    declare(config)
    assert DATASETS["my-points"] is first
    config["datasets"]["my-points"]["size"] = 5  # a new block: rebuilt from it
    declare(config)
    assert DATASETS["my-points"].write({}, 0, "")["size"] == 5


def test_a_built_in_name_or_an_unknown_kind_is_refused(toy_kind):
    with pytest.raises(ValueError, match=r"datasets\.25gaussians: .*built-in dataset; give yours another name"):
        declare({"datasets": {"25gaussians": {"kind": "toy-points", "size": 1}}})
    with pytest.raises(ValueError, match=r"datasets\.my-points\.kind: unknown dataset kind 'nope'; registered: .*"
                                         r"toy-points"):
        declare({"datasets": {"my-points": {"kind": "nope"}}})


def test_jobs_declare_from_the_environment(toy_kind, tmp_path):
    """A job imports catalog in a fresh process: the variable the Snakefile sets declares the same entries (the
    kind itself comes from an extension module, as a user's would)."""
    (tmp_path / "toy_kind_ext.py").write_text(
        "from dgflow_bench.registry import DATASET_KINDS, DeclaredKind\n"
        "from dgflow_bench.suites.base import DatasetEntry\n"
        "DATASET_KINDS.register('toy-points', DeclaredKind({}, lambda n, b: DatasetEntry('toy2d', None, {}), 'x'))\n")
    env = {**os.environ, catalog.EXTENSIONS_VARIABLE: "toy_kind_ext",
           catalog.DECLARED_VARIABLE: json.dumps({"datasets": {"my-points": {"kind": "toy-points"}}}),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    code = "from dgflow_bench.catalog import DATASETS; print(DATASETS['my-points'].suite)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "toy2d"
