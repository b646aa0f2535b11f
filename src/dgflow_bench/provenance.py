"""Provenance hashes: each output's identity is the hash of its job's resolved parameters and of the
provenance of every file the job reads (the stage table's input edges: data -> model -> discriminator ->
refinement -> metrics -> report), so it follows every upstream knob. Each rule passes its hash as a param, so
Snakemake reruns a job whenever any upstream knob changed, even when the upstream job itself failed and left
nothing behind; the hash is also sealed into the output's sidecar (io.seal)."""

from __future__ import annotations

import hashlib
import json

from .stage_table import STAGES, Stage, edge_jobs, model_maker, producer_job


def digest(obj) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def parts(config: dict, stage: Stage, wildcards: dict, _memo: dict | None = None) -> dict:
    """What a job's hash covers: its stage, wildcards and params, and {role: hash (or hashes)} of its inputs."""
    memo = {} if _memo is None else _memo
    hashes = {}
    for edge in stage.inputs:
        jobs = edge_jobs(config, edge, wildcards)
        if jobs is not None:
            found = [of(config, producer, names, memo) for producer, names in jobs]
            hashes[edge.role] = found if edge.many else found[0]
    return {"stage": stage.name, "wildcards": wildcards, "params": stage.params(config, wildcards),
            "inputs": hashes}


def of(config: dict, stage: Stage, wildcards: dict, _memo: dict | None = None) -> str:
    """The provenance hash of one job (a report's reads each upstream job's once: ``_memo``)."""
    memo = {} if _memo is None else _memo
    key = (stage.name, tuple(sorted(wildcards.items())))
    if key not in memo:
        memo[key] = digest(parts(config, stage, wildcards, memo))
    return memo[key]


# the hashes by what they identify (tests, scripts)

def data(config: dict, dataset: str) -> str:
    return of(config, STAGES["data"], {"dataset": dataset})


def model(config: dict, dataset: str, name: str, source: str) -> str:
    return of(config, *producer_job(model_maker, {"dataset": dataset, "model": name, "source": source}))


def discriminator(config: dict, dataset: str, name: str, source: str) -> str:
    return of(config, STAGES["finetune_discriminator"], {"dataset": dataset, "model": name, "source": source})


def refinement(config: dict, dataset: str, name: str, source: str, method: str) -> str:
    return of(config, STAGES["refine"], {"dataset": dataset, "model": name, "source": source, "method": method})


def metrics(config: dict, dataset: str, name: str, source: str, method: str) -> str:
    return of(config, STAGES["evaluate"], {"dataset": dataset, "model": name, "source": source, "method": method})


def report(config: dict, suite: str) -> str:
    return of(config, STAGES["report"], {"suite": suite})
