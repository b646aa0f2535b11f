"""`dgflow-bench <stage>`: one sub-command per pipeline stage. Each reads its inputs, a JSON of resolved
parameters (`--params '{...}'` or `--params @file.json`) and writes its outputs atomically, with the
resolved config beside them. Snakemake rules are one line each into these commands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

STAGES = {
    "data": "build a dataset's train and held-out arrays",
    "train": "train a base GAN (resumable, full-state checkpoints)",
    "import-checkpoint": "import published weights (download + SHA-256, or a local folder)",
    "finetune": "build the density-ratio discriminator: logistic fine-tune, or d_phi + d_lambda corrector",
    "refine": "refine samples with one method (DGflow, DOT, DDLS, base) from the shared latents",
    "evaluate": "compute the suite's metrics at every snapshot",
    "report": "write the suite's tables and figures",
    "resolve-config": "write the validated, default-filled config",
}


def _params(text: str) -> dict:
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"--params is not valid JSON ({exc}); pass a JSON object or @file.json")
    if not isinstance(value, dict):
        raise SystemExit("--params must be a JSON object")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dgflow-bench", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    p = {name: sub.add_parser(name, help=text, description=text) for name, text in STAGES.items()}
    for name, sp in p.items():
        sp.add_argument("--params", type=_params, default={}, help="resolved parameters: JSON or @file.json")
        if name in ("train", "finetune", "refine"):
            sp.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
            sp.add_argument("--threads", type=int, default=1, help="torch CPU threads (fixed for determinism)")
        if name != "resolve-config":
            sp.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p["data"].add_argument("--dataset", required=True)
    p["data"].add_argument("--out", required=True)
    for name in ("train", "finetune", "refine"):
        p[name].add_argument("--dataset", required=True)
    p["train"].add_argument("--model", required=True)
    p["train"].add_argument("--data", required=True)
    p["train"].add_argument("--out", required=True)
    p["train"].add_argument("--state", required=True, help="full-state checkpoint path (resumed if present)")
    p["import-checkpoint"].add_argument("--dataset", required=True)
    p["import-checkpoint"].add_argument("--model", required=True)
    p["import-checkpoint"].add_argument("--source", required=True)
    p["import-checkpoint"].add_argument("--out", required=True)
    p["finetune"].add_argument("--model-file", required=True)
    p["finetune"].add_argument("--data", required=True)
    p["finetune"].add_argument("--out", required=True)
    p["finetune"].add_argument("--base-model-file", default=None,
                               help="model file whose critic is the frozen d_phi (density_ratio kind 'corrector')")
    p["finetune"].add_argument("--state", default=None,
                               help="corrector only: full-state checkpoint path (resumed if present)")
    p["refine"].add_argument("--model-file", required=True)
    p["refine"].add_argument("--disc", default=None, help="fine-tuned discriminator file, if the method uses it")
    p["refine"].add_argument("--out", required=True)
    p["evaluate"].add_argument("--samples", required=True)
    p["evaluate"].add_argument("--data", required=True)
    p["evaluate"].add_argument("--out", required=True)
    p["report"].add_argument("--suite", required=True)
    p["report"].add_argument("--metrics", nargs="+", required=True)
    p["report"].add_argument("--tables-stem", required=True,
                             help="e.g. results/tables/toy2d; images: a prefix, _fid and _is are appended")
    p["report"].add_argument("--figures-dir", help="figures folder (toy2d, images)")
    p["report"].add_argument("--samples-out", help="sample-lines markdown file (text)")
    p["resolve-config"].add_argument("--out", required=True)
    return parser


def dispatch(args: argparse.Namespace) -> None:
    progress = not getattr(args, "no_progress", False)
    if hasattr(args, "threads"):
        from .runtime import set_threads

        set_threads(args.threads)
    if args.stage == "data":
        from .stages import data

        data.run(args.dataset, args.params, args.out)
    elif args.stage == "train":
        from .stages import train

        train.run(args.dataset, args.model, args.data, args.params, args.out, args.state, args.device, progress)
    elif args.stage == "import-checkpoint":
        from .stages import import_checkpoint

        import_checkpoint.run(args.dataset, args.model, args.source, args.params, args.out)
    elif args.stage == "finetune":
        from .stages import finetune

        finetune.run(args.dataset, args.model_file, args.data, args.params, args.out, args.device, progress,
                     base_model_file=args.base_model_file, state=args.state)
    elif args.stage == "refine":
        from .stages import refine

        refine.run(args.dataset, args.model_file, args.disc, args.params, args.out, args.device, progress)
    elif args.stage == "evaluate":
        from .stages import evaluate

        evaluate.run(args.samples, args.data, args.params, args.out, progress)
    elif args.stage == "report":
        from .stages import report

        report.run(args.suite, args.metrics, args.params, args.tables_stem, args.figures_dir, args.samples_out)
    elif args.stage == "resolve-config":
        from .io import write_json

        write_json(args.out, args.params)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .models.chainer_npz import CheckpointError
    from .refine.common import RefinementDiverged
    from .training.loop import TrainingInterrupted

    try:
        dispatch(args)
    except TrainingInterrupted as exc:
        print(f"dgflow-bench {args.stage}: {exc}", file=sys.stderr)
        return 143  # 128 + SIGTERM: the scheduler sees a terminated job; a rerun resumes
    except (CheckpointError, RefinementDiverged, ValueError, FileNotFoundError) as exc:
        print(f"dgflow-bench {args.stage}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
