"""The README stays a front door, and docs/configuration.md is what scripts/config_reference.py makes of the
current schema (the docs site is built with `mkdocs build --strict` in .ci/run)."""

from __future__ import annotations

import importlib.util
import re

from conftest import REPO

README_MAX_LINES = 200  # issue 24: everything else lives in docs/
# JSON-schema keywords the config schema uses; any other key in a schema node is a typo or, in a YAML flow
# mapping, the tail of a description cut at an unquoted comma ({description: a, b, ...} makes `b` a key)
KEYWORDS = {"$schema", "$ref", "title", "description", "type", "default", "enum", "const", "pattern", "minimum",
            "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "items", "minItems", "maxItems",
            "uniqueItems", "properties", "additionalProperties", "required", "minProperties", "propertyNames",
            "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "definitions"}


def config_reference():
    spec = importlib.util.spec_from_file_location("config_reference", REPO / "scripts" / "config_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_is_short():
    lines = (REPO / "README.md").read_text().count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES}): move detail to docs/"


def test_readme_keeps_the_two_commands():
    text = (REPO / "README.md").read_text()
    assert "pip install -e . && snakemake --cores all" in text
    assert 'pip install -e ".[test]" && pytest' in text


def test_readme_and_results_page_show_one_measurement():
    """The default suite's measured block is in the README and in docs/results.md: replace both at once."""
    block = re.compile(r"<!-- default-suite:begin -->.*?<!-- default-suite:end -->", re.S)
    readme = block.findall((REPO / "README.md").read_text())
    results = block.findall((REPO / "docs" / "results.md").read_text())
    assert len(readme) == len(results) == 1, "one default-suite block in README.md and one in docs/results.md"
    assert readme == results, "README.md and docs/results.md differ between the default-suite markers"


def test_configuration_reference_is_current():
    page = REPO / "docs" / "configuration.md"
    assert page.read_text() == config_reference().render(), (
        "docs/configuration.md is stale: run `python scripts/config_reference.py` and commit it")


def test_schema_nodes_hold_only_keywords():
    from dgflow_bench.config import load_schema

    bad = []

    def walk(node, path):
        if isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{path}[{i}]")
        if not isinstance(node, dict):
            return
        bad.extend(f"{path}: {key!r}" for key in set(node) - KEYWORDS)
        for key, child in node.items():
            if key in ("properties", "definitions"):
                for name, sub in child.items():
                    walk(sub, f"{path}.{name}")
            elif key not in ("default", "enum", "const"):  # values, not schemas
                walk(child, f"{path}/{key}")

    walk(load_schema(), "schema")
    assert not bad, f"schema keys that are no JSON-schema keyword (quote a description holding a comma): {bad}"


INCLUDE = re.compile(r"<!-- include: (?P<path>\S+) -->\n```[\w-]*\n(?P<body>.*?)```\n", re.S)


def included_blocks():
    """(page, path, body) of every ``<!-- include: PATH -->`` code block of the docs."""
    for page in sorted((REPO / "docs").glob("*.md")):
        for match in INCLUDE.finditer(page.read_text()):
            yield page.name, match["path"], match["body"]


def test_included_files_are_shown_as_they_are():
    """A code block marked `<!-- include: examples/... -->` is that file, byte for byte: the examples the docs
    show are the files the tests run (tests/unit/test_api.py, tests/workflow/test_brought_model.py), so the
    page cannot drift from the code. Regenerate a block by pasting the file."""
    blocks = list(included_blocks())
    assert blocks, "no <!-- include: ... --> block in docs/"
    stale = [f"{page}: {path}" for page, path, body in blocks if (REPO / path).read_text() != body]
    assert not stale, f"docs blocks that differ from their files (paste the file again): {stale}"
