"""How noisy each statistic of the 2-D table is (docs/rejection-audit.md, "The noise of the 2-D table").

Two sources, measured apart on a finished run:

1. the samples: the base model's 2,000 samples from ``--draws`` independent latent draws, each scored
   against one fixed reference of 5,000 exact data draws (the table's setting: n = 2,000 samples against
   the 5,000-point held-out split);
2. the reference: one fixed sample scored against ``--draws`` / 3 independent references of 5,000 points (the
   table uses one held-out split for every row, so this part moves every row together and never shows in
   a ±);

and, from the run's own metrics files, the spread over its seeds of each row and of each row's paired
difference to the base row (the seeds are shared, so a row minus base cancels the latents' common part).
Fresh exact draws only: the evaluation held-out split is not read.

    python benchmarks/metric_noise.py --results results

prints one line per dataset and statistic.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from dgflow_bench.data.toy2d import sample_toy2d
from dgflow_bench.metrics.toy2d import compute_toy2d_metrics
from dgflow_bench.models.store import load_model_file
from dgflow_bench.refine.common import sample_latents

SEED = 424_242  # latents and exact data draws of their own


def _short(key: str) -> str:
    return key.split("_")[0] if not key.startswith("modes") else "modes"


def sampling_noise(results: Path, dataset: str, draws: int) -> dict:
    model = load_model_file(results / "models" / dataset / "wgan-gp" / "trained" / "model.pt")
    gen, latent = model["generator"].requires_grad_(False), model["latent"]
    rng = np.random.default_rng(SEED)
    fixed_ref = sample_toy2d(dataset, 5000, rng)
    with torch.no_grad():  # one latent stream, cut into draws of 2,000 (the energy's spread has a long right tail)
        z = sample_latents(latent["prior"], 2000 * draws, latent["dim"], SEED)
        samples = [x.numpy() for x in gen(z).split(2000)]
    by_samples = [compute_toy2d_metrics(dataset, x, fixed_ref) for x in samples]
    by_reference = [compute_toy2d_metrics(dataset, samples[0], sample_toy2d(dataset, 5000, rng)) for _ in range(draws // 3)]
    out = {}
    for key in by_samples[0]:
        values = np.array([m[key] for m in by_samples])
        out[_short(key)] = {"std_over_sample_draws": float(np.std(values, ddof=1)),
                            "sample_draws_5_50_95": np.percentile(values, [5, 50, 95]).tolist(),
                            "std_over_reference_draws": float(np.std([m[key] for m in by_reference], ddof=1))}
    return out


def seed_spread(results: Path, dataset: str) -> dict:
    """Median over the rows of the run's std over seeds: of the row itself and of row - base."""
    folder = results / "metrics" / dataset / "wgan-gp" / "trained"
    rows = {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json") if not p.name.endswith(".config.json")}
    final = {name: [seed[-1] for seed in m["per_seed"]] for name, m in rows.items()}
    base = final.pop("base")
    out = {}
    for key in (k for k in base[0] if k != "step"):
        row_std = [np.std([s[key] for s in seeds], ddof=1) for seeds in final.values()]
        diff_std = [np.std([s[key] - b[key] for s, b in zip(seeds, base)], ddof=1) for seeds in final.values()]
        out[_short(key)] = {"row_std_median": float(np.median(row_std)), "row_minus_base_std_median": float(np.median(diff_std)),
                            "seeds": len(base), "rows": len(final)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default="results", help="results folder of a finished default-suite run")
    parser.add_argument("--draws", type=int, default=90, help="independent sample draws (a third as many reference draws)")
    parser.add_argument("--json", default=None, help="also write the numbers here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    report = {}
    for dataset in ("25gaussians", "swissroll"):
        report[dataset] = {"sampling": sampling_noise(Path(args.results), dataset, args.draws),
                           "run_seeds": seed_spread(Path(args.results), dataset)}
        for stat, noise in report[dataset]["sampling"].items():
            spread = report[dataset]["run_seeds"].get(stat, {})
            print(f"{dataset:12s} {stat:8s} samples {noise['std_over_sample_draws']:.4g}  reference "
                  f"{noise['std_over_reference_draws']:.4g}  run: row {spread.get('row_std_median', float('nan')):.4g}"
                  f"  row-base {spread.get('row_minus_base_std_median', float('nan')):.4g}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
