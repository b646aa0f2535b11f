"""What a cheaper 2-D training recipe costs in base-model quality: the evidence behind the default suite's
training length. Each candidate is the config's WGAN-GP recipe with some knobs changed; both 2-D datasets
train in parallel (one thread each, as in `snakemake --cores 2`) through the real `dgflow-bench train`
stage, and each model is scored on a VALIDATION draw: 2,000 samples from latents of their own seed, against
2,000 rows of the training array (never the evaluation latents or the held-out split).

    python benchmarks/training_recipes.py [--config config.yaml] [--only default,batch128]

prints, per candidate: seconds per dataset, ms per iteration, and HQ % (4 sigma), modes covered (25Gaussians)
and the unbiased energy distance (1e-3) per dataset.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from dgflow_bench.config import data_params, train_params, validate
from dgflow_bench.metrics.toy2d import energy_distance, high_quality_fraction, modes_covered
from dgflow_bench.models.store import load_model_file
from dgflow_bench.refine.common import sample_latents
from select_eta import validation_reals  # the same validation rows rule (a script beside this one)

DATASETS = ("25gaussians", "swissroll")
VALIDATION_SEED = 987_655  # not refine.seed (the evaluation latents) nor select_eta's
# name -> (arch changes, recipe changes) on top of the config's model block
CANDIDATES = {
    "default": ({}, {}),
    "iterations4000": ({}, {"iterations": 4000}),
    "batch128-iterations4000": ({}, {"batch_size": 128, "iterations": 4000}),
    "critic1-iterations6000": ({}, {"critic_steps": 1, "iterations": 6000}),
    "critic1-batch128": ({}, {"critic_steps": 1, "batch_size": 128}),
    "depth2-iterations5000": ({"depth": 2}, {"iterations": 5000}),
}


def candidate_params(config: dict, dataset: str, arch_change: dict, recipe_change: dict) -> dict:
    params = train_params(config, dataset, "wgan-gp")
    params["arch"] = {role: {**spec, **arch_change} for role, spec in params["arch"].items()}
    params["recipe"] = {**params["recipe"], **recipe_change, "checkpoint_every": 10**9}  # no checkpoint I/O
    return params


def train_both(folder: Path, config: dict, change: tuple[dict, dict]) -> dict[str, float]:
    """Train both datasets at once; return each one's wall seconds."""
    procs, started = {}, time.perf_counter()
    for dataset in DATASETS:
        params = candidate_params(config, dataset, *change)
        procs[dataset] = subprocess.Popen(
            [sys.executable, "-m", "dgflow_bench.cli", "train", "--dataset", dataset, "--model", "wgan-gp",
             "--data", str(folder.parent / f"{dataset}.npz"), "--params", json.dumps(params),
             "--out", str(folder / f"{dataset}.pt"), "--state", str(folder / f"{dataset}.state.pt"),
             "--device", "cpu", "--threads", "1", "--no-progress"], stderr=subprocess.DEVNULL)
    seconds = {}
    for dataset, proc in procs.items():
        if proc.wait() != 0:
            raise SystemExit(f"training {dataset} failed (exit {proc.returncode})")
        seconds[dataset] = time.perf_counter() - started
    return seconds


def score(model_file: Path, data_file: Path, dataset: str, n: int = 2000) -> dict[str, float]:
    model = load_model_file(model_file)
    z = sample_latents(model["latent"]["prior"], n, model["latent"]["dim"], VALIDATION_SEED)
    with torch.no_grad():
        x = model["generator"](z).double().numpy()
    real = validation_reals(data_file, n, VALIDATION_SEED)
    out = {"hq_pct": 100 * high_quality_fraction(x, dataset),
           "energy_1e-3": 1e3 * energy_distance(x, real, unbiased=True)}
    if dataset == "25gaussians":
        out["modes"] = modes_covered(x)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--only", default=",".join(CANDIDATES), help=f"comma-separated of {list(CANDIDATES)}")
    parser.add_argument("--workdir", default=None, help="keep the models here (default: a temp folder)")
    args = parser.parse_args()
    config = validate(yaml.safe_load(Path(args.config).read_text()))
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="dgflow-recipes-"))
    for dataset in DATASETS:
        if not (workdir / f"{dataset}.npz").exists():
            subprocess.run([sys.executable, "-m", "dgflow_bench.cli", "data", "--dataset", dataset, "--params",
                            json.dumps(data_params(config, dataset)), "--out", str(workdir / f"{dataset}.npz")],
                           check=True, stderr=subprocess.DEVNULL)
    for name in args.only.split(","):
        if name not in CANDIDATES:
            raise SystemExit(f"unknown candidate {name!r}; choose from {list(CANDIDATES)}")
        folder = workdir / name
        folder.mkdir(exist_ok=True)
        seconds = train_both(folder, config, CANDIDATES[name])
        iterations = candidate_params(config, DATASETS[0], *CANDIDATES[name])["recipe"]["iterations"]
        cells = []
        for dataset in DATASETS:
            s = score(folder / f"{dataset}.pt", workdir / f"{dataset}.npz", dataset)
            cells.append(f"{dataset}: " + " ".join(f"{k} {v:.1f}" if k != "modes" else f"modes {v}"
                                                   for k, v in s.items()))
        print(f"{name}: {max(seconds.values()):.0f} s ({1e3 * max(seconds.values()) / iterations:.0f} ms / iteration)"
              f" | " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
