"""Where each intermediate of the workflow lives: the output patterns of the stage table (stage_table.py),
relative to the working directory."""

from __future__ import annotations

from .io import config_path_for

DATA = "results/data/{dataset}.npz"
MODEL = "results/models/{dataset}/{model}/{source}/model.pt"
TRAINED_MODEL = "results/models/{dataset}/{model}/trained/model.pt"
DISC = "results/models/{dataset}/{model}/{source}/disc-finetuned.pt"
SAMPLES = "results/samples/{dataset}/{model}/{source}/{method}.npz"
METRICS = "results/metrics/{dataset}/{model}/{source}/{method}.json"


def sidecar(pattern: str) -> str:
    """The resolved-config sidecar of an output pattern (io.config_path_for, as a rule pattern string)."""
    return str(config_path_for(pattern))
