"""Would a longer logistic fine-tune make the 2-D d a ratio estimator? (docs/rejection-audit.md, "Verdict")

Fine-tunes the raw critic of a finished run's model with the pipeline's own loop (training/density_ratio.py
finetune_logistic; no held-out selection: the last weights) for ``--steps`` at ``--lr``, then scores it as
benchmarks/density_ratio_audit.py scores the pipeline's d: the logistic loss on fresh points, the Platt and
isotonic fits, and MH-GAN chains (K = 640 from G(z0)) with each calibration, with the same seeds.

    python benchmarks/finetune_probe.py --results results --dataset 25gaussians --steps 5000 --lr 1e-3
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import torch

from dgflow_bench.runtime import array_sampler
from dgflow_bench.training.density_ratio import finetune_logistic
from density_ratio_audit import (CHAINS, K, N_FIT, SEED, calibrations, energy_distance, generate, high_quality_fraction,
                                 latent_sampler, load_model_file, mh_chains, mode_shares, sample_toy2d, scores,
                                 target_weights, training_rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default="results")
    parser.add_argument("--dataset", default="25gaussians", choices=["25gaussians", "swissroll"])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    ds, data_file = args.dataset, Path(args.results) / "data" / f"{args.dataset}.npz"
    model = load_model_file(Path(args.results) / "models" / ds / "wgan-gp" / "trained" / "model.pt")
    gen, latent = model["generator"].requires_grad_(False), model["latent"]
    d = copy.deepcopy(model["critic"]).train().requires_grad_(True)
    with np.load(data_file, allow_pickle=False) as data:
        train = torch.as_tensor(data["train"])
    finetune_logistic(d, gen, real_batch=array_sampler(train), steps=args.steps, batch_size=256, lr=args.lr,
                      latent_batch=latent_sampler(latent["prior"], latent["dim"], torch.device("cpu")),
                      betas=(0.5, 0.9), rng=torch.Generator().manual_seed(0), progress=False)
    d.eval().requires_grad_(False)
    rng = np.random.default_rng(SEED)
    real = sample_toy2d(ds, 20_000, rng).astype(np.float64)
    reference = sample_toy2d(ds, 5_000, rng).astype(np.float64)
    fake = generate(gen, latent, 20_000, SEED + 1)
    d_real, d_fake = scores(d, real), scores(d, fake)
    print(f"{ds}: {args.steps} steps at lr {args.lr:g}: logistic loss on fresh points "
          f"{np.mean(np.logaddexp(0, -d_real)) + np.mean(np.logaddexp(0, d_fake)):.3f} (chance 1.386)")
    cal = calibrations(scores(d, training_rows(data_file, N_FIT, SEED + 4)), scores(d, generate(gen, latent, N_FIT, SEED + 5)))
    starts = generate(gen, latent, CHAINS, SEED + 6)
    props = generate(gen, latent, K * CHAINS, SEED + 7).reshape(K, CHAINS, 2)
    log_u = np.log(rng.uniform(size=(K, CHAINS)))
    d_start, d_prop = scores(d, starts), scores(d, props.reshape(-1, 2)).reshape(K, CHAINS)
    print(f"  base energy {1e3 * energy_distance(starts, reference, unbiased=True):.2f}e-3")
    for name, (fn, facts) in cal.items():
        final = mh_chains(fn(d_start), fn(d_prop), log_u)
        xs = np.where((final < 0)[:, None], starts, props[np.maximum(final, 0), np.arange(CHAINS)])
        line = (f"  {name:9s} chains energy {1e3 * energy_distance(xs, reference, unbiased=True):7.2f}e-3 "
                f"HQ {100 * high_quality_fraction(xs, ds):.1f} %")
        if ds == "25gaussians":
            shares, off = mode_shares(fake, target_weights(fn(d_fake)))
            line += f"  target: TV to 1/25 {0.5 * np.abs(shares / shares.sum() - 1 / 25).sum():.3f}, off-mode {off:.3f}"
        print(line, facts, flush=True)


if __name__ == "__main__":
    main()
