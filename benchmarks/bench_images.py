"""Image-suite figures on the DCGAN (chainer-gan-lib layout: DCGAN generator + SN-DCGAN discriminator, 32 px).

1. DGflow step cost: seconds per step of the real refinement function (its typed parameters' run(), default
   parameters from the config schema) on a batch of latents, divided by its floor: one forward of G and D plus
   one backward to the latents, the least any latent-space gradient method needs. Both are timed over --steps
   steps, median of --repeats (interleaved with each other) after a warm-up, and divided by --steps. DGflow's
   time also holds the fixed cost of a run (one G forward for the step-0 snapshot and one for the final one),
   which weighs more the fewer steps are timed, so a second ratio leaves out the start-up cost (a steps=0 run,
   timed the same way). On CPU the ratios are also given in CPU time of this process, which other users of a
   shared machine disturb less than wall time. Target: ratio <= 1.3 (full width, batch 500).
2. Refine-stage memory: `dgflow-bench refine` run as a child process for each N in --rss-samples, with the
   same --params (built like config.refine_params from a validated config) except n_samples, on a model file
   of random weights (width --rss-width; narrow nets make any growth with N stand out more, not less). Prints
   wall time, the child's peak RSS (os.wait4) and the output size. Target: peak RSS of the largest N within
   10% of the smallest.

    python benchmarks/bench_images.py [--batch 500] [--steps 3] [--repeats 3] [--threads 1] [--device auto]
        [--width 512] [--rss-width 32] [--rss-samples 2000 20000] [--rss-steps N] [--only step|rss]

--width / --rss-width set g_ch = d_ch (multiple of 8; --width defaults to the schema's 512, --rss-width to 32).
On a laptop CPU use a smaller --width and/or --batch for a quick look; the target figures are full width at batch 500.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from dgflow_bench.config import refine_params, validate
from dgflow_bench.models.store import save_model_file
from dgflow_bench.refine.common import sample_latents
from dgflow_bench.refine.network_modes import set_generator_bn_mode, thermalise_spectral_norm
from dgflow_bench.catalog import METHODS, MODELS
from dgflow_bench.runtime import resolve_device, seeded_generator

MODEL, DATASET, METHOD = "sn-dcgan-hinge", "cifar10", "dgflow"
DATA_INFO = {"image_size": 32}


def validated_config(width: int | None, n_samples: int, batch_size: int, steps: int | None = None) -> dict:
    arch = {} if width is None else {"g_ch": width, "d_ch": width}
    method = {"kind": METHOD} if steps is None else {"kind": METHOD, "steps": steps}
    return validate({"datasets": {DATASET: {}}, "models": {MODEL: {"datasets": [DATASET], "arch": arch}},
                     "methods": {METHOD: method}, "refine": {"n_samples": n_samples, "batch_size": batch_size}})


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(timings: dict, repeats: int, device: torch.device) -> dict:
    """{name: (median wall s, median CPU s of this process)} for each callable; one warm-up each, then the
    repeats interleaved (a, b, c, a, b, c, ...) so that load from other users of the machine hits them alike."""
    samples = {name: [] for name in timings}
    for fn in timings.values():
        fn()  # warm-up
    for _ in range(repeats):
        for name, fn in timings.items():
            sync(device)
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            sync(device)
            samples[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return {name: tuple(statistics.median(s[i] for s in runs) for i in (0, 1)) for name, runs in samples.items()}


def floor_steps(z0: torch.Tensor, G, D, steps: int) -> None:
    """One forward of G and D and one backward to the latents per step."""
    z = z0
    for _ in range(steps):
        z = z.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(D(G(z)).sum(), z)
        z = z + 0.0 * grad


def bench_step(args, device: torch.device) -> dict:
    config = validated_config(args.width, args.batch, args.batch, args.steps)
    arch, refine = config["models"][MODEL]["arch"], config["refine"]
    params = config["methods"][METHOD]
    start_only = {**params, "steps": 0}
    torch.manual_seed(0)
    G, D = MODELS[MODEL].build(arch, DATA_INFO).values()
    G, D = G.to(device).requires_grad_(False), D.to(device).requires_grad_(False)
    set_generator_bn_mode(G, refine["generator_bn"])  # as the refine stage prepares the nets
    thermalise_spectral_norm(D, refine["sn_power_iterations"])
    latent = MODELS[MODEL].latent(arch)
    z0 = sample_latents(latent["prior"], args.batch, latent["dim"], refine["seed"]).to(device)

    def dgflow(p):
        typed = METHODS[METHOD].from_config({k: v for k, v in p.items() if k != "kind"})
        return lambda: typed.run(z0, G, D, seeded_generator(refine["seed"] + 1, device), prior=latent["prior"])

    method_keys = ("f", "space", "eta", "gamma", "steps", "snapshot_every", "discriminator")
    print(f"[step] device={device} threads={torch.get_num_threads()} batch={args.batch} steps={args.steps} "
          f"repeats={args.repeats} arch={arch} generator_bn={refine['generator_bn']} "
          f"params={ {k: params[k] for k in method_keys} }", flush=True)
    timed = median_seconds({"dgflow": dgflow(params), "start_up": dgflow(start_only),
                            "floor": lambda: floor_steps(z0, G, D, args.steps)}, args.repeats, device)
    out = {"width": arch["g_ch"]}
    for clock, i in (("wall", 0), ("cpu", 1)):
        dgflow_total, start_up, floor_total = (timed[k][i] for k in ("dgflow", "start_up", "floor"))
        out[clock] = {"dgflow": dgflow_total / args.steps, "start_up": start_up,
                      "dgflow_net": (dgflow_total - start_up) / args.steps, "floor": floor_total / args.steps}
    return out


def refine_command(model_file: Path, params: dict, out: Path, args) -> list[str]:
    """workflow/rules/refine.smk's shell line; the critic stands in for the fine-tuned discriminator file."""
    exe = Path(sys.executable).with_name("dgflow-bench")
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "dgflow_bench.cli"]
    return [*base, "refine", "--dataset", DATASET, "--model-file", str(model_file), "--disc", str(model_file),
            "--params", json.dumps(params), "--out", str(out), "--device", args.device,
            "--threads", str(args.threads)]


def run_child(command: list[str], log: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one child process, read from its own rusage (os.wait4)."""
    start = time.perf_counter()
    with log.open("w") as sink:
        child = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"refine exited {child.returncode}:\n{log.read_text()[-2000:]}")
    peak_bytes = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)  # Linux reports KiB
    return wall, peak_bytes / 2**20


def bench_rss(args, workdir: Path) -> list[dict]:
    sizes = sorted(args.rss_samples)
    configs = {n: validated_config(args.rss_width, n, args.batch, args.rss_steps) for n in sizes}
    params = {n: refine_params(cfg, METHOD, DATASET, MODEL) for n, cfg in configs.items()}
    for n in sizes:  # the runs differ in n_samples only
        other = {**params[n], "refine": {**params[n]["refine"], "n_samples": params[sizes[0]]["refine"]["n_samples"]}}
        assert other == params[sizes[0]], "params differ in more than n_samples"
    arch = configs[sizes[0]]["models"][MODEL]["arch"]
    torch.manual_seed(0)
    G, D = MODELS[MODEL].build(arch, DATA_INFO).values()
    model_file = workdir / "model.pt"
    save_model_file(model_file, generator=G, critic=D, latent=MODELS[MODEL].latent(arch),
                    meta={"note": "random weights (benchmarks/bench_images.py)"})
    shown = {k: v for k, v in params[sizes[0]].items() if k != "refine"}
    print(f"[rss] arch={arch} (random weights) batch={args.batch} threads={args.threads} device={args.device} "
          f"params={json.dumps(shown)}", flush=True)
    rows = []
    for n in sizes:
        out = workdir / f"samples-{n}.npz"
        wall, peak_mb = run_child(refine_command(model_file, params[n], out, args), workdir / f"refine-{n}.log")
        rows.append({"n": n, "wall": wall, "peak_mb": peak_mb, "out_mb": out.stat().st_size / 2**20})
        print(f"[rss] N={n}: {wall:.1f} s, peak RSS {peak_mb:.1f} MB, output {rows[-1]['out_mb']:.1f} MB", flush=True)
        if not args.keep:
            out.unlink()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=500, help="latents per batch (both parts)")
    parser.add_argument("--steps", type=int, default=3, help="DGflow / floor steps per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (here and in the children)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    parser.add_argument("--width", type=int, default=None, help="g_ch = d_ch for part 1 (default: schema's)")
    parser.add_argument("--rss-width", type=int, default=32, help="g_ch = d_ch of the part-2 model file")
    parser.add_argument("--rss-samples", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--rss-steps", type=int, default=None, help="DGflow steps in part 2 (default: schema's)")
    parser.add_argument("--only", choices=("step", "rss"), default=None)
    parser.add_argument("--keep", action="store_true", help="keep the part-2 work folder and outputs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)

    step = bench_step(args, device) if args.only != "rss" else None
    rows = []
    if args.only != "step":
        workdir = Path(tempfile.mkdtemp(prefix="bench_images-"))
        rows = bench_rss(args, workdir)
        if args.keep:
            print(f"[rss] kept {workdir}")
        else:
            for path in workdir.iterdir():
                path.unlink()
            workdir.rmdir()

    print("\n== summary ==")
    if step:
        full = " (full chainer-gan-lib width)" if step["width"] == 512 else " (NARROW, not the target size)"
        print(f"1. DGflow step / floor, width {step['width']}{full}, batch {args.batch}, {args.steps} steps, "
              f"{args.threads} thread(s), {device}")
        # CPU time of this process: less sensitive to other users' load on a shared machine (CPU devices only)
        for clock in ("wall", "cpu") if device.type == "cpu" else ("wall",):
            t = step[clock]
            print(f"   [{clock} clock] dgflow/step {t['dgflow']:.4f} s (start-up left out {t['dgflow_net']:.4f} s, "
                  f"start-up {t['start_up']:.4f} s), floor/step {t['floor']:.4f} s")
            print(f"   [{clock} clock] ratio = {t['dgflow'] / t['floor']:.3f}  (start-up left out: "
                  f"{t['dgflow_net'] / t['floor']:.3f})  target <= 1.3")
    if rows:
        print(f"2. refine stage peak RSS, width {args.rss_width}, batch {args.batch}")
        print(f"   {'N':>7s} {'wall s':>8s} {'peak RSS MB':>12s} {'output MB':>10s}")
        for row in rows:
            print(f"   {row['n']:7d} {row['wall']:8.1f} {row['peak_mb']:12.1f} {row['out_mb']:10.1f}")
        ratio = rows[-1]["peak_mb"] / rows[0]["peak_mb"]
        print(f"   peak RSS N={rows[-1]['n']} / N={rows[0]['n']} = {ratio:.3f}  target <= 1.10")


if __name__ == "__main__":
    main()
