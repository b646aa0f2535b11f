"""environment.yml and pyproject.toml list the same dependencies with the same version bounds, so conda users
get what pip users get; requires-python admits no Python without tarfile's extraction filters."""

from __future__ import annotations

import re

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from conftest import REPO

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

CONDA_NAMES = {"torch": "pytorch"}  # PyPI name -> conda-forge name
ENV_ONLY = {"python", "pip"}  # the interpreter and the installer; extras are checked as dependencies
# tarfile's extractall(filter=...): first release with it -> the release before, per minor version
FILTERS = {"3.10.12": "3.10.11", "3.11.4": "3.11.3"}


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def conda_env() -> dict[str, SpecifierSet]:
    """{PyPI-style name: version bounds} of environment.yml, conda and pip: entries alike."""
    deps = yaml.safe_load((REPO / "environment.yml").read_text())["dependencies"]
    pypi_name = {conda: pypi for pypi, conda in CONDA_NAMES.items()}
    out = {}
    for dep in deps:
        for entry in dep["pip"] if isinstance(dep, dict) else [dep]:
            assert not entry.startswith("-"), f"environment.yml: no pip options such as {entry!r}"
            name, spec = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", entry).groups()
            name = pypi_name.get(name, name)
            assert name not in out, f"{name} listed twice in environment.yml"
            out[name] = SpecifierSet(spec)
    return out


def test_environment_matches_pyproject():
    env = conda_env()
    python = lowest(env["python"])  # the markers as for the environment's Python
    wanted = {}
    extras = [text for group in pyproject()["optional-dependencies"].values() for text in group]
    for text in pyproject()["dependencies"] + extras:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({"python_version": f"{python.major}.{python.minor}"}):
            wanted[req.name] = req.specifier
    for name, spec in wanted.items():
        conda = CONDA_NAMES.get(name, name)
        assert name in env, f"environment.yml lacks {conda}{spec}"
        assert env[name] == spec, f"environment.yml has {conda}{env[name]}, pyproject.toml {name}{spec}"
    extra = set(env) - set(wanted) - ENV_ONLY
    assert not extra, f"environment.yml lists {sorted(extra)}, which pyproject.toml does not"


def lowest(spec: SpecifierSet) -> Version:
    bounds = [Version(s.version) for s in spec if s.operator in (">=", "==")]
    assert bounds, f"no lower bound in {spec}"
    return max(bounds)


def test_requires_python_has_tarfile_filters():
    spec = SpecifierSet(pyproject()["requires-python"])
    for first, last_without in FILTERS.items():
        assert spec.contains(first) and not spec.contains(last_without), (spec, first)
    assert not spec.contains("3.9.99")


def test_environment_python_is_allowed():
    python = lowest(conda_env()["python"])
    assert SpecifierSet(pyproject()["requires-python"]).contains(python)


def test_conda_environment_gets_the_package_from_the_checkout():
    """`--sdm conda` builds environment.yml elsewhere; its post-deploy script installs this checkout, whose
    path the Snakefile exports."""
    script = (REPO / "environment.post-deploy.sh").read_text()
    assert 'pip install --no-deps -e "${DGFLOW_BENCH_SOURCE' in script
    assert "os.environ.update(DGFLOW_BENCH_SOURCE=workflow.basedir)" in (REPO / "Snakefile").read_text()
