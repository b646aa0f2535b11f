"""Shared fixtures. Published checkpoints come from $DGFLOW_BENCH_CHECKPOINTS (default ../shared/checkpoints
relative to the repository); tests that need them skip with the reason where the folder is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fixtures.toy2d import write_dot_format_checkpoints

REPO = Path(__file__).resolve().parents[1]


def checkpoints_root() -> Path:
    return Path(os.environ.get("DGFLOW_BENCH_CHECKPOINTS", REPO.parent / "shared" / "checkpoints"))


@pytest.fixture(scope="session")
def dot2d_dir() -> Path:
    folder = checkpoints_root() / "dot-2d"
    if not (folder / "G_25gaussians_WGAN-GP.npz").exists():
        if os.environ.get("DGFLOW_BENCH_REQUIRE_CHECKPOINTS") == "1":  # CI: these tests must run
            pytest.fail(f"DGFLOW_BENCH_REQUIRE_CHECKPOINTS=1 but {folder} lacks DOT's checkpoints")
        pytest.skip(f"DOT's published 2-D checkpoints not found in {folder}; set DGFLOW_BENCH_CHECKPOINTS "
                    "to the folder holding dot-2d/")
    return folder


@pytest.fixture(scope="session")
def dot_format_source(tmp_path_factory) -> dict:
    """A `sources.dot-pretrained` block over small DOT-format files the test session writes itself: the
    workflow tests run the import path in a fresh clone without the published files."""
    return write_dot_format_checkpoints(tmp_path_factory.mktemp("dot-format"))


@pytest.fixture(autouse=True)
def _single_thread():
    """One intra-op thread: for the small tensors of the tests, extra threads only add scheduler latency
    (a lot of it on a busy 2-core machine), and results are bit-stable only for a fixed count."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def pytest_collection_modifyitems(config, items):
    """The SLURM test last: once it has installed SLURM's client tools, every later `snakemake` start pays
    ~9 s while the SLURM executor plugin queries a cluster (sacct / squeue) for its help text."""
    items.sort(key=lambda item: item.get_closest_marker("slurm") is not None)
