"""The text suite (Billion Words, character level): the WGAN-GP language model's CNN GAN, JS-n metrics
(metrics/ngram_js.py) and the JS table + sample lines of report/text.py."""

from __future__ import annotations

from ..registry import DATASETS, MODELS, SUITES
from ..training.family import GanFamily
from ..report.cost import cost_figure_paths
from .base import DatasetEntry, Modality, Report, Suite

NAME = "text"


def _data_info(arrays: dict) -> dict:
    return {"vocab_size": int(len(arrays["vocab"])), "seq_len": int(arrays["train"].shape[1])}


def _load_train(train):
    import numpy as np
    import torch

    # int16 halves the memory of 10M x 32 token ids; vocabularies stay below 32,768
    return torch.from_numpy(np.asarray(train).astype(np.int16))


def _one_hot(batch, data_info: dict):
    import torch

    return torch.nn.functional.one_hot(batch.long(), data_info["vocab_size"]).float()


def _to_storage(x, storage: str = "default"):
    import numpy as np

    # generated text is the argmax of the per-position softmax
    return x.detach().argmax(dim=-1).cpu().numpy().astype(np.uint16)


MODALITY = Modality(data_info=_data_info, load_train=_load_train, to_model_input=_one_hot, to_storage=_to_storage)


def _billion_words(params: dict, seed: int, out: str) -> dict:
    from pathlib import Path

    from ..data.text import ensure_corpus, prepare_text_dataset

    root = ensure_corpus(params.get("root"), params["url"], Path(out).parent / "download", params.get("sha256"))
    return prepare_text_dataset(root, out, max_lines=params["max_lines"], heldout_lines=params["heldout_lines"],
                                seed=seed, vocab_size=params["vocab_size"])


def _check_root(spec: dict, key: str) -> None:
    from ..data.text import find_training_shards

    find_training_shards(spec["root"])


def _charcnn_pair(arch: dict, info: dict) -> tuple:
    from ..models.text_cnn import CharCNNCritic, CharCNNGenerator

    shape = {"seq_len": info["seq_len"], "vocab_size": info["vocab_size"], "dim": arch["dim"],
             "n_blocks": arch["n_blocks"]}
    return CharCNNGenerator(z_dim=arch["z_dim"], **shape), CharCNNCritic(**shape)


def _metrics():
    from ..metrics import text_suite

    return text_suite


def _official(config: dict, dataset: str, model: str, source: str, method: str) -> dict:
    from ..settings.official import compare_text

    return compare_text(config, dataset, model, source, method)


def _outputs(runs: list[tuple[str, str, str]]) -> dict[str, list[str]]:
    tables = {ext: [f"results/tables/text_js.{ext}"] for ext in ("csv", "md", "tex")}
    return {**tables, "samples": ["results/tables/text_samples.md"], "cost": cost_figure_paths(NAME, runs)}


def _build(metric_files: list[str], params: dict, outputs: dict[str, list[str]]) -> None:
    from ..report.text import build

    build(metric_files, params, outputs["csv"][0][: -len(".csv")], outputs["samples"][0], outputs["cost"])


SUITES.register(NAME, Suite(
    name=NAME, modality=MODALITY, metrics=_metrics, evaluate_keys=("js_orders", "js_reference"),
    report=Report(_outputs, _build, captions={"csv": "text_table.rst", "samples": "text_samples.rst",
                                              "cost": "cost.rst"}),
    official=_official,
))
DATASETS.register("billion-words", DatasetEntry(NAME, _billion_words, {"$ref": "#/definitions/text_dataset"},
                                                check_root=_check_root))
MODELS.register("wgan-gp-charcnn", GanFamily(NAME, {"$ref": "#/definitions/charcnn_gan"}, "normal", 128,
                                             loss="wgan-gp", networks=_charcnn_pair))
