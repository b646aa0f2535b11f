"""Estimated GPU time of an image preset, from counted FLOPs (no GPU needed; none was available to us).

    python benchmarks/gpu_estimate.py presets/images-paper.yaml [--tflops 20 50]

For every job of the preset it counts the forward FLOPs of the real networks (torch.utils.flop_counter on
one sample, CPU) and multiplies them by what the job does:
- train: per generator iteration, ``critic_steps`` x (G forward + D forward on real and fake + D backward,
  plus for WGAN-GP the gradient penalty's forward and double backward) + one G and D forward and backward;
- finetune: ``steps`` x batch x (G forward + D forward and backward on real and fake);
- refine: base = one G forward per sample; a flow = ``steps`` x (G and d forward + backward) per sample,
  d doubled when a corrector is added;
- evaluate: InceptionV3 forward on every snapshot, twice with the pytorch-fid cross-check.
A backward pass is counted as twice its forward. The hours assume the stated sustained rate (effective
TFLOP/s, not the GPU's peak), so they are an estimate to plan with, not a measurement.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from dgflow_bench.catalog import DATASETS, MODELS  # noqa: E402
from dgflow_bench.config import corrector_base, raw_logit_from, run_settings, uses_finetuned, validate  # noqa: E402
from dgflow_bench.data.image_rows import IMAGE_DATASETS  # noqa: E402
from dgflow_bench.preflight import resolve_paths  # noqa: E402


def forward_flops(net: torch.nn.Module, x: torch.Tensor) -> float:
    net.eval()  # BatchNorm with one sample
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(x)
    return float(counter.get_total_flops())


def inception_flops() -> float:
    from torchvision.models import inception_v3

    net = inception_v3(weights=None, aux_logits=False, init_weights=False)
    return forward_flops(net, torch.zeros(1, 3, 299, 299))


def network_flops(model: str, dataset: str, config: dict) -> tuple[float, float, float]:
    """(G, d, training nets) forward FLOPs per sample. d is the model's own critic, or for a model without one
    the critic of the model it borrows (logit_from / the corrector's base); the training nets are the rest
    (a VAE's encoder, a kernel GAN's feature critic, a GAN's critic)."""
    size = IMAGE_DATASETS[dataset].resolution
    arch = config["models"][model].get("arch", {})
    nets = MODELS[model].build(arch, {"channels": 3, "image_size": size})
    latent = MODELS[model].latent(arch)
    image = torch.zeros(1, 3, size, size)
    g = forward_flops(nets["generator"], torch.zeros(1, latent["dim"]))
    others = sum(forward_flops(net, image) for role, net in nets.items() if role != "generator")
    if "critic" in nets:
        return g, forward_flops(nets["critic"], image), others
    lender = raw_logit_from(config, model, dataset) or corrector_base(config, model, dataset)
    lender_size = IMAGE_DATASETS[lender["dataset"]].resolution  # the STL10 32 px rows borrow a 48 px critic
    lent = MODELS[lender["model"]].build(config["models"][lender["model"]].get("arch", {}),
                                         {"channels": 3, "image_size": lender_size})
    return g, forward_flops(lent["critic"], torch.zeros(1, 3, lender_size, lender_size)), others


def job_flops(config: dict) -> dict[str, list[tuple[str, float]]]:
    """{stage: [(job, FLOPs)]} for the image runs of ``config``."""
    jobs: dict[str, list[tuple[str, float]]] = defaultdict(list)
    inception = inception_flops()
    evaluate = config["evaluate"]
    for (dataset, model), spec in ((dm, config["models"][dm[1]]) for dm in _pairs(config)):
        settings = run_settings(config, dataset, model)  # with this run's overrides
        # every refinement seed (refine.seeds) refines and scores its own n samples
        n = settings["refine"]["n_samples"] * settings["refine"].get("seeds", 1)
        g, d, trained_nets = network_flops(model, dataset, config)
        name = f"{dataset}/{model}"
        train = spec["train"]
        gp = 4 * trained_nets if getattr(MODELS[model], "loss", None) == "wgan-gp" or train.get("gp_weight") else 0.0
        # critic updates (a likelihood model has none) and one update of everything else
        per_iteration = (train.get("critic_steps", 0) * (g + 6 * trained_nets + gp)
                         + 3 * (g + trained_nets) * (2 if model == "glow" else 1))  # glow: encode + decode
        jobs["train"].append((name, train["iterations"] * train["batch_size"] * per_iteration))
        if any(uses_finetuned(config, model, m) for m in config["methods"]):
            ft = config["finetune"]
            jobs["finetune"].append((name, ft["steps"] * ft["batch_size"] * (g + 6 * d)))
        corrected = spec.get("density_ratio", {}).get("kind") == "corrector"
        for method, mspec in settings["methods"].items():
            steps = mspec.get("steps", 0)
            d_here = 2 * d if corrected and uses_finetuned(config, model, method) else d
            jobs["refine"].append((f"{name}/{method}", n * (g + 3 * steps * (g + d_here))))
            snapshots = 1 + (steps // mspec["snapshot_every"] if steps else 0)
            passes = 2 if evaluate.get("pytorch_fid_crosscheck") else 1
            jobs["evaluate"].append((f"{name}/{method}", n * snapshots * passes * inception))
    return jobs


def _pairs(config: dict) -> list[tuple[str, str]]:
    return [(dataset, model) for model, spec in config["models"].items() for dataset in spec["datasets"]
            if DATASETS[dataset].suite == "images"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset")
    parser.add_argument("--tflops", type=float, nargs=2, default=(20.0, 50.0), metavar=("LOW", "HIGH"),
                        help="sustained effective TFLOP/s assumed (default 20 50)")
    args = parser.parse_args(argv)
    preset = Path(args.preset)
    config = validate(resolve_paths(yaml.safe_load(preset.read_text()), preset.parent))
    jobs = job_flops(config)
    low, high = args.tflops
    hours = lambda flops, rate: flops / (rate * 1e12) / 3600  # noqa: E731
    print(f"== {preset}: estimated GPU time at {low:g}-{high:g} effective TFLOP/s (counted FLOPs, not measured)")
    total = 0.0
    for stage, rows in jobs.items():
        flops = sum(f for _, f in rows)
        total += flops
        largest = max(rows, key=lambda r: r[1])
        print(f"  {stage:9s} {len(rows):3d} jobs  {flops / 1e15:10.1f} PFLOP  {hours(flops, high):6.1f}-"
              f"{hours(flops, low):6.1f} h   (largest: {largest[0]}, {hours(largest[1], high) * 60:.1f}-"
              f"{hours(largest[1], low) * 60:.1f} min)")
    print(f"  total               {total / 1e15:10.1f} PFLOP  {hours(total, high):6.1f}-{hours(total, low):6.1f} h")


if __name__ == "__main__":
    main()
