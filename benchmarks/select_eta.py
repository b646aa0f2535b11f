"""The stated rule behind the step sizes of the 2-D suite's DGflow and DDLS rows, as a script anyone can rerun.

The official DGflow release has no 2-D configuration, so the 2-D step sizes are ours, and a fine-tuned
density-ratio estimator of sharp modes has far steeper gradients than a 1-Lipschitz critic, so one step size
does not fit both. The rule: for each DGflow / DDLS method of a finished run, refine a VALIDATION sample
(latents of their own seed, never the evaluation latents) with each step size of one fixed grid, and score each by the change of the (unbiased) energy distance to VALIDATION real points (rows of the
training array, never the evaluation held-out split) from that of the unrefined validation sample. A method's
config holds one step size for every dataset, so the rule takes the candidate whose WORST change over the
datasets is lowest. Nothing here reads the evaluation sample or the tables.

    python benchmarks/select_eta.py --results results --config config.yaml

prints, per method, the validation change of every candidate on each dataset and the chosen step size.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import yaml

from dgflow_bench.config import runs, validate
from dgflow_bench.metrics.toy2d import energy_distance
from dgflow_bench.models.store import load_model_file
from dgflow_bench.refine.common import sample_latents
from dgflow_bench.catalog import DATASETS, METHODS

GRID = (0.03, 0.01, 0.003, 0.001, 0.0003, 0.0001)  # the same candidates for every row: the rule is a fixed point
STEP_KEYS = {"dgflow": "eta", "ddls": "eps"}
VALIDATION_SEED = 987_654  # latents of their own: not refine.seed, the evaluation latents' seed


def validation_reals(data_file: Path, n: int, seed: int) -> np.ndarray:
    with np.load(data_file, allow_pickle=False) as data:
        train = data["train"]
    return train[np.random.default_rng(seed).choice(len(train), n, replace=False)]


def energy_changes(folder: Path, method: dict, real: np.ndarray, n: int) -> dict:
    """{step size: validation energy of the refined sample - that of the unrefined one}."""
    model = load_model_file(folder / "model.pt")
    generator = model["generator"].requires_grad_(False)
    finetuned = method.get("discriminator") == "finetuned"
    logit = (load_model_file(folder / "disc-finetuned.pt") if finetuned else model)["critic"].requires_grad_(False)
    z0 = sample_latents(model["latent"]["prior"], n, model["latent"]["dim"], VALIDATION_SEED)
    with torch.no_grad():
        base = energy_distance(generator(z0).numpy(), real, unbiased=True)
    key = STEP_KEYS[method["kind"]]
    scores = {}
    for value in GRID:
        params = {**method, key: value}
        result = METHODS[method["kind"]].from_config(params).run(z0, generator, logit, torch.Generator().manual_seed(1),
                                                                 prior=model["latent"]["prior"])
        final = result.snapshots[max(result.snapshots)].numpy()
        scores[params[key]] = energy_distance(final, real, unbiased=True) - base
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default="results", help="results folder of a finished run")
    parser.add_argument("--config", default="config.yaml", help="the config that made it")
    parser.add_argument("--n", type=int, default=2000, help="validation samples")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = validate(yaml.safe_load(Path(args.config).read_text()))
    results = Path(args.results)
    toy_runs = [r for r in runs(config) if DATASETS[r[0]].suite == "toy2d"]
    reals = {d: validation_reals(results / "data" / f"{d}.npz", args.n, seed=VALIDATION_SEED) for d, _, _ in toy_runs}
    for name, method in config["methods"].items():
        if method["kind"] not in STEP_KEYS:
            continue
        per_run = {f"{d}/{m}/{s}": energy_changes(results / "models" / d / m / s, method, reals[d], args.n)
                   for d, m, s in toy_runs}
        worst = {c: max(scores[c] for scores in per_run.values()) for c in next(iter(per_run.values()))}
        best = min(worst, key=worst.get)
        print(f"{name}: {STEP_KEYS[method['kind']]} {method[STEP_KEYS[method['kind']]]:g} -> {best:g} "
              f"(worst validation energy change {1e3 * worst[best]:+.2f}e-3)")
        for run, scores in per_run.items():
            print(f"    {run:40s} " + "  ".join(f"{k:g}: {1e3 * v:+.2f}e-3" for k, v in scores.items()))


if __name__ == "__main__":
    main()
