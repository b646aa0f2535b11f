"""Refinement throughput on the 2-D networks: particle-steps per second for each method, and the cost of
one DGflow latent step relative to its floor (one forward of G and D plus one backward to the latents),
both measured in the same run. Target: ratio <= 1.3.

    python benchmarks/bench_refine.py [--particles 2000] [--steps 25] [--threads 1] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from dgflow_bench.config import validate
from dgflow_bench.models.mlp import build_critic, build_generator
from dgflow_bench.catalog import METHODS
from dgflow_bench.runtime import resolve_device

METHOD_BLOCKS = {
    "dgflow-kl (latent)": {"kind": "dgflow", "f": "KL", "space": "latent"},
    "dgflow-kl (data)": {"kind": "dgflow", "f": "KL", "space": "data", "eta": 0.001},
    "dot (latent, sgd)": {"kind": "dot", "space": "latent", "optimizer": "sgd"},
    "dot (data, adam)": {"kind": "dot", "space": "data"},
    "ddls": {"kind": "ddls"},
}


def resolved(block: dict, steps: int) -> dict:
    config = validate({"datasets": {"25gaussians": {}}, "models": {"wgan-gp": {"datasets": ["25gaussians"]}},
                       "methods": {"m": {**block, "steps": steps, "snapshot_every": steps}}})
    return config["methods"]["m"]


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    samples = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def floor_loop(z0, G, D, steps: int) -> None:
    z = z0
    for _ in range(steps):
        z = z.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(D(G(z)).sum(), z)
        z = z + 0.0 * grad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--particles", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    torch.manual_seed(0)
    G = build_generator(hidden=256).to(device).requires_grad_(False)
    D = build_critic(hidden=512).to(device).requires_grad_(False)
    z0 = (torch.rand(args.particles, 2, generator=torch.Generator().manual_seed(1)) * 2 - 1).to(device)
    print(f"device={device} threads={args.threads} particles={args.particles} steps={args.steps} "
          f"(paper-size 2-D nets: G 2-256x3-2, D 2-512x3-1)")

    floor = timed(lambda: floor_loop(z0, G, D, args.steps), args.repeats)
    rows = []
    for name, block in METHOD_BLOCKS.items():
        params = resolved(block, args.steps)
        typed = METHODS[params["kind"]].from_config(params)
        seconds = timed(lambda: typed.run(z0, G, D, torch.Generator(device=device).manual_seed(0), prior="uniform"),
                        args.repeats)
        rows.append((name, seconds, args.particles * args.steps / seconds))
    print(f"{'method':22s} {'seconds':>9s} {'particle-steps/s':>17s}")
    for name, seconds, rate in rows:
        print(f"{name:22s} {seconds:9.4f} {rate:17.0f}")
    dgflow_latent = rows[0][1]
    print(f"{'floor (G+D fwd, bwd)':22s} {floor:9.4f} {args.particles * args.steps / floor:17.0f}")
    print(f"DGflow latent step / floor = {dgflow_latent / floor:.3f}  (target <= 1.3)")


if __name__ == "__main__":
    main()
