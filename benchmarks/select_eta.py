"""The stated rule behind the step sizes of the 2-D suite's DGflow and DDLS rows, as a script anyone can rerun.

The official DGflow release has no 2-D configuration, so the 2-D step sizes are ours, and a fine-tuned
density-ratio estimator of sharp modes has far steeper gradients than a 1-Lipschitz critic, so one step size
does not fit both. The rule: for each DGflow / DDLS method of a finished run, refine VALIDATION samples
(latents of their own seeds, never the evaluation latents) with each step size of one fixed grid, and score
each by the change of the (unbiased) energy distance to VALIDATION real points (rows of the training array,
never the evaluation held-out split) from that of the unrefined validation sample.

The score is noisy: one draw of 2,000 points moves it by about as much as the gaps between neighbouring step
sizes (docs/rejection-audit.md, "How noisy the step-size rule is"). So each candidate is scored on ``--draws``
independent draws (each its own latents, validation rows and refinement noise; every candidate sees the same
draws, so differences between candidates are paired), and the statistic is the mean change over the draws,
with its paired standard error against the chosen candidate. A method's config holds one step size for every
dataset, so the rule takes the candidate whose WORST mean change over the datasets is lowest; a candidate
whose worst mean is within two paired standard errors of the best one's is a tie, and ties go to the
smallest step (the one that changes the samples least). Nothing here reads the evaluation sample or the tables.

    python benchmarks/select_eta.py --results results --config config.yaml

prints, per method, every candidate's mean change ± its paired standard error against the chosen step on each
dataset, and the chosen step size; ``--json`` also writes the per-draw changes.
"""

from __future__ import annotations

import argparse
import json
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
DRAWS, N, TIE_SE = 8, 2000, 2.0  # draws of N validation points; a gap under TIE_SE paired standard errors ties


def validation_reals(data_file: Path, n: int, seed: int) -> np.ndarray:
    with np.load(data_file, allow_pickle=False) as data:
        train = data["train"]
    return train[np.random.default_rng(seed).choice(len(train), n, replace=False)]


def energy_changes(folder: Path, method: dict, real: np.ndarray, n: int, draw: int = 0) -> dict:
    """{step size: validation energy of the refined sample - that of the unrefined one} on validation draw
    ``draw`` (draw 0: the latents and noise of the single-draw rule before it averaged draws)."""
    model = load_model_file(folder / "model.pt")
    generator = model["generator"].requires_grad_(False)
    finetuned = method.get("discriminator") == "finetuned"
    logit = (load_model_file(folder / "disc-finetuned.pt") if finetuned else model)["critic"].requires_grad_(False)
    z0 = sample_latents(model["latent"]["prior"], n, model["latent"]["dim"], VALIDATION_SEED + draw)
    with torch.no_grad():
        base = energy_distance(generator(z0).numpy(), real, unbiased=True)
    key = STEP_KEYS[method["kind"]]
    scores = {}
    for value in GRID:
        params = {**method, key: value}
        result = METHODS[method["kind"]].from_config(params).run(z0, generator, logit,
                                                                 torch.Generator().manual_seed(1 + draw),
                                                                 prior=model["latent"]["prior"])
        final = result.snapshots[max(result.snapshots)].numpy()
        scores[params[key]] = energy_distance(final, real, unbiased=True) - base
    return scores


def select(changes: dict) -> tuple[float, dict]:
    """The rule on {run: array (draws, candidates)} of changes: (chosen step, facts per run and candidate)."""
    worst = np.max([c.mean(0) for c in changes.values()], axis=0)  # per candidate, over the runs
    best = int(np.argmin(worst))
    worst_run = [max(changes, key=lambda r: changes[r][:, i].mean()) for i in range(len(GRID))]

    def paired_se(run: str, i: int, j: int) -> float:
        diff = changes[run][:, i] - changes[run][:, j]
        return float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("nan")

    # ties with the best: the gap of worst means within TIE_SE paired standard errors (taken on the run
    # where the candidate is worst); the smallest tied step wins
    tied = [i for i in range(len(GRID)) if worst[i] - worst[best] <= TIE_SE * paired_se(worst_run[i], i, best)]
    chosen = min(tied, key=lambda i: GRID[i]) if tied else best
    facts = {run: {GRID[i]: (float(c[:, i].mean()), paired_se(run, i, chosen)) for i in range(len(GRID))}
             for run, c in changes.items()}
    return GRID[chosen], {"per_run": facts, "worst": dict(zip(GRID, worst.tolist())), "tied": [GRID[i] for i in tied],
                          "lowest_worst": GRID[best]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default="results", help="results folder of a finished run")
    parser.add_argument("--config", default="config.yaml", help="the config that made it")
    parser.add_argument("--n", type=int, default=N, help="validation samples per draw")
    parser.add_argument("--draws", type=int, default=DRAWS, help="independent validation draws per candidate")
    parser.add_argument("--methods", default=None, help="comma-separated method names (default: every DGflow / DDLS row)")
    parser.add_argument("--json", default=None, help="also write every per-draw change here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = validate(yaml.safe_load(Path(args.config).read_text()))
    results = Path(args.results)
    toy_runs = [r for r in runs(config) if DATASETS[r[0]].suite == "toy2d"]
    reals = {(d, k): validation_reals(results / "data" / f"{d}.npz", args.n, seed=VALIDATION_SEED + k)
             for d, _, _ in toy_runs for k in range(args.draws)}
    wanted = None if args.methods is None else set(args.methods.split(","))
    record = {}
    for name, method in config["methods"].items():
        if method["kind"] not in STEP_KEYS or (wanted is not None and name not in wanted):
            continue
        key = STEP_KEYS[method["kind"]]
        changes = {f"{d}/{m}/{s}": np.array([list(energy_changes(results / "models" / d / m / s, method,
                                                                 reals[d, k], args.n, k).values())
                                             for k in range(args.draws)]) for d, m, s in toy_runs}
        chosen, facts = select(changes)
        record[name] = {"chosen": chosen, "configured": method[key], **facts,
                        "changes": {r: c.tolist() for r, c in changes.items()}}
        print(f"{name}: {key} {method[key]:g} -> {chosen:g} (worst mean validation energy change "
              f"{1e3 * facts['worst'][chosen]:+.3f}e-3 over {args.draws} draws of {args.n}; lowest worst mean at "
              f"{facts['lowest_worst']:g}; tied within {TIE_SE:g} paired SE: {', '.join(f'{t:g}' for t in facts['tied'])})",
              flush=True)
        for run, per in facts["per_run"].items():
            print(f"    {run:28s} " + "  ".join(f"{k:g}: {1e3 * m:+.2f}±{1e3 * se:.2f}" if k != chosen else
                                                 f"{k:g}: {1e3 * m:+.2f}" for k, (m, se) in per.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
