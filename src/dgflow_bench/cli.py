"""`dgflow-bench <stage>`: one sub-command per pipeline stage. Each reads its inputs, a JSON of resolved
parameters (`--params '{...}'`, `--params @file.json` or `--params @<output>.config.json`) and writes its
outputs atomically, with the resolved config beside them. Snakemake rules are one line each into these
commands."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import __version__
from .progress import log

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


PARAMS_HELP = ("resolved parameters: a JSON object, @file.json, or @<output>.config.json (the file written "
               "beside every output; its 'params' are used)")
# top-level keys each stage reads, checked before any work so that a wrong file fails with the key's name
REQUIRED_KEYS = {"data": ("seed",), "train": ("seed", "arch", "recipe"), "finetune": ("seed", "density_ratio"),
                 "refine": ("method", "refine"), "evaluate": ("labels", "metrics")}
INPUTS = ("data", "model_file", "disc", "logit_model_file", "base_model_file", "samples", "metrics")


class SidecarParams(dict):
    """The params of an output's .config.json, remembering which stage wrote it."""

    def __init__(self, params: dict, stage: str):
        super().__init__(params)
        self.stage = stage


def _params(text: str) -> dict:
    source = "--params"
    if text.startswith("@"):
        source = text[1:]
        try:
            text = Path(source).read_text()
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"cannot read {source}: {exc.strerror or exc}")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"{source} is not valid JSON ({exc}); pass a JSON object or @file.json")
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"{source} must hold a JSON object")
    if "stage" in value and "params" in value:  # a sidecar: {"stage", "dgflow_bench", "params", ...}
        if not isinstance(value["params"], dict):
            raise argparse.ArgumentTypeError(f"{source}: 'params' must be a JSON object")
        return SidecarParams(value["params"], value["stage"])
    return value


def params_problem(stage: str, params: dict) -> str | None:
    """Why ``params`` cannot serve ``stage``: another stage's config, or a key the stage reads is missing."""
    if isinstance(params, SidecarParams) and params.stage != stage:
        return f"--params is the config of a {params.stage!r} output, not of a {stage!r} one"
    missing = [key for key in REQUIRED_KEYS.get(stage, ()) if key not in params]
    if missing:
        return (f"--params lacks {', '.join(map(repr, missing))}; pass the resolved parameters, e.g. "
                f"--params @<output>.config.json of an earlier {stage} output")
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dgflow-bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    p = {name: sub.add_parser(name, help=text, description=text) for name, text in STAGES.items()}
    for name, sp in p.items():
        sp.add_argument("--params", type=_params, required=True, help=PARAMS_HELP)
        if name in ("train", "finetune", "refine"):
            sp.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
            sp.add_argument("--threads", type=int, default=1, help="torch CPU threads (fixed for determinism)")
        if name != "resolve-config":
            sp.add_argument("--no-progress", action="store_true", help="hide progress bars")
        if name not in ("resolve-config", "report"):
            sp.add_argument("--provenance", default=None,
                            help="hash of the parameters of everything upstream (the workflow passes it); sealed "
                                 "with the output's SHA-256 into its .config.json")
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
    p["refine"].add_argument("--logit-model-file", default=None,
                             help="model file whose critic is the raw discriminator (models.<model>.logit_from)")
    p["refine"].add_argument("--data", default=None,
                             help="the data file, for a method that fits something on held-out real samples (MH-GAN)")
    p["refine"].add_argument("--out", required=True)
    p["evaluate"].add_argument("--samples", required=True)
    p["evaluate"].add_argument("--data", required=True)
    p["evaluate"].add_argument("--out", required=True)
    p["report"].add_argument("--suite", required=True)
    p["report"].add_argument("--metrics", nargs="+", required=True)
    p["report"].add_argument("--outputs", type=json.loads, required=True,
                             help="JSON {name: [files]}: the files to write, as the suite's report declares them "
                                  "(the workflow passes the rule's own outputs)")
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

        refine.run(args.dataset, args.model_file, args.disc, args.params, args.out, args.device, progress,
                   logit_model_file=args.logit_model_file, data=args.data)
    elif args.stage == "evaluate":
        from .stages import evaluate

        evaluate.run(args.samples, args.data, args.params, args.out, progress)
    elif args.stage == "report":
        from .stages import report

        report.run(args.suite, args.metrics, args.params, args.outputs)
    elif args.stage == "resolve-config":
        from .io import write_json

        write_json(args.out, args.params)


def _inputs(args: argparse.Namespace) -> list[str]:
    paths = [getattr(args, name, None) for name in INPUTS]
    return [p for v in paths if v for p in ([v] if isinstance(v, str) else v)]


def _listing(paths: list[str], at_most: int = 6) -> str:
    # a report reads every metrics file of its suite: name a few, count the rest
    if len(paths) <= at_most:
        return " ".join(paths)
    return f"{' '.join(paths[:at_most - 1])} and {len(paths) - at_most + 1} more"


def _outputs(args: argparse.Namespace) -> list[str]:
    from .io import config_path_for

    out = []
    if getattr(args, "out", None):
        out.append(args.out)
        if config_path_for(args.out).exists():  # not every stage writes one (resolve-config does not)
            out.append(str(config_path_for(args.out)))
    if isinstance(getattr(args, "outputs", None), dict):
        out += [path for paths in args.outputs.values() for path in paths]
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    problem = params_problem(args.stage, args.params)
    if problem:
        print(f"dgflow-bench {args.stage}: error: {problem}", file=sys.stderr)
        return 2  # a usage error, as argparse's own
    from .errors import CheckpointError, RefinementDiverged, TrainingInterrupted

    inputs = _inputs(args)
    log(f"stage {args.stage}: reading {_listing(inputs)}" if inputs else f"stage {args.stage}: starting")
    start = time.monotonic()
    try:
        from .io import config_path_for, seal, verify_file

        for path in inputs:  # a damaged input is named before any work
            verify_file(path)
        dispatch(args)
        if hasattr(args, "provenance") and config_path_for(args.out).exists():
            seal(args.out, args.provenance)
    except TrainingInterrupted as exc:
        print(f"dgflow-bench {args.stage}: {exc}", file=sys.stderr)
        return 143  # 128 + SIGTERM: the scheduler sees a terminated job; a rerun resumes
    except (CheckpointError, RefinementDiverged, ValueError, FileNotFoundError) as exc:
        print(f"dgflow-bench {args.stage}: error: {exc}", file=sys.stderr)
        return 1
    log(f"stage {args.stage}: wrote {_listing(_outputs(args))} in {time.monotonic() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
