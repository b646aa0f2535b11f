"""Provenance hashes: each output's identity is a hash of the resolved parameters of everything that made it
(data -> model -> discriminator -> refinement -> metrics -> report). Each rule passes its hash as a param, so
Snakemake reruns a job whenever any upstream knob changed, even when the upstream job itself failed and left
nothing behind; the hash is also sealed into the output's sidecar (io.seal)."""

from __future__ import annotations

import hashlib
import json

from . import config as dg
from .catalog import DATASETS, SOURCES


def digest(obj) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def data(config: dict, dataset: str) -> str:
    return digest({"data": dg.data_params(config, dataset)})


def model(config: dict, dataset: str, name: str, source: str) -> str:
    if SOURCES[source].trained:
        return digest({"data": data(config, dataset), "train": dg.train_params(config, dataset, name)})
    return digest({"import": dg.import_params(config, source, name), "source": source, "dataset": dataset})


def discriminator(config: dict, dataset: str, name: str, source: str) -> str:
    parts = {"model": model(config, dataset, name, source), "data": data(config, dataset),
             "finetune": dg.finetune_params(config, dataset, name, source)}
    base = dg.corrector_base(config, name, dataset)
    if base is not None:
        parts["base"] = model(config, base["dataset"], base["model"], base["source"])
    return digest(parts)


def refinement(config: dict, dataset: str, name: str, source: str, method: str) -> str:
    parts = {"model": model(config, dataset, name, source),
             "refine": dg.refine_params(config, method, dataset, name)}
    if dg.uses_finetuned(config, name, method):
        parts["discriminator"] = discriminator(config, dataset, name, source)
    elif dg.follows_raw(config, name, method) and dg.raw_logit_from(config, name, dataset):
        borrowed = dg.raw_logit_from(config, name, dataset)
        parts["logit_model"] = model(config, borrowed["dataset"], borrowed["model"], borrowed["source"])
    if dg.reads_real_data(config, method, dataset, name):
        parts["data"] = data(config, dataset)
    return digest(parts)


def metrics(config: dict, dataset: str, name: str, source: str, method: str) -> str:
    return digest({"refinement": refinement(config, dataset, name, source, method), "data": data(config, dataset),
                   "evaluate": dg.evaluate_params(config, dataset, name, source, method)})


def report(config: dict, suite: str) -> str:
    runs = [(d, m, s) for d, m, s in dg.runs(config) if DATASETS[d].suite == suite]
    return digest({"metrics": [metrics(config, d, m, s, method) for d, m, s in runs
                               for method in dg.run_methods(config, d, m)],
                   "report": dg.report_params(config, suite)})
