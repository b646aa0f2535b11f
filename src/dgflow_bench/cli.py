"""`dgflow-bench <stage>`: one sub-command per pipeline stage. Each reads its inputs, a JSON of resolved
parameters (`--params '{...}'`, `--params @file.json` or `--params @<output>.config.json`) and writes its
outputs atomically, with the resolved config beside them. The sub-commands and their arguments come from the
stage table (stage_table.py), as the Snakemake rules that call them do."""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import stat
import sys
import time
import traceback
from pathlib import Path

from . import __version__
from .progress import log
from .stage_table import BY_COMMAND, STAGES

DEBUG_VARIABLE = "DGFLOW_BENCH_DEBUG"  # set (not 0): a failing stage prints its traceback too
CHECK_CONFIG = "check-config"  # not a stage: what the planner checks, for one config file, before Snakemake
CHECK_HELP = ("check a config file as the workflow will (YAML, schema, keys, external inputs) and name the file, "
              "the line or key and the fix of every problem; for a message Snakemake gives without them")
PARAMS_HELP = ("resolved parameters: a JSON object, @file.json, or @<output>.config.json (the file written "
               "beside every output; its 'params' are used)")


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
    missing = [key for key in BY_COMMAND[stage].required_keys if key not in params]
    if missing:
        return (f"--params lacks {', '.join(map(repr, missing))}; pass the resolved parameters, e.g. "
                f"--params @<output>.config.json of an earlier {stage} output")
    return None


def build_parser() -> argparse.ArgumentParser:
    """One sub-command per stage of the stage table, with the arguments it declares."""
    parser = argparse.ArgumentParser(prog="dgflow-bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help=f"print the traceback of a failure (as {DEBUG_VARIABLE}=1 does)")
    sub = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    check = sub.add_parser(CHECK_CONFIG, help=CHECK_HELP, description=CHECK_HELP)
    check.add_argument("configfile", help="the config file, as passed to snakemake --configfile")
    for stage in STAGES.values():
        sp = sub.add_parser(stage.command, help=stage.help, description=stage.help)
        sp.add_argument("--params", type=_params, required=True, help=PARAMS_HELP)
        if stage.device:
            sp.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
            sp.add_argument("--threads", type=int, default=1, help="torch CPU threads (fixed for determinism)")
        if stage.progress:
            sp.add_argument("--no-progress", action="store_true", help="hide progress bars")
        if stage.sealed:
            sp.add_argument("--provenance", default=None,
                            help="hash of the parameters of everything upstream (the workflow passes it); sealed "
                                 "with the output's SHA-256 into its .config.json")
        for name in stage.cli_wildcards:
            sp.add_argument(f"--{name}", required=True)
        for edge in stage.inputs:
            sp.add_argument(edge.flag, dest=edge.role, required=edge.when is None, default=None,
                            nargs="+" if edge.many else None, help=edge.help or None)
        if stage.output is not None:
            sp.add_argument("--out", required=True)
        for option in stage.options:
            sp.add_argument(option.flag, required=option.required, default=None, help=option.help or None,
                            **({"type": option.type} if option.type else {}))
    return parser


def dispatch(args: argparse.Namespace) -> None:
    """Calls the stage's run() with the parsed arguments, each by its dest (the table's role names)."""
    if hasattr(args, "threads"):
        from .runtime import set_threads

        set_threads(args.threads)
    run = importlib.import_module(f"{__package__}.stages.{BY_COMMAND[args.stage].module}").run
    given = {**vars(args), "progress": not getattr(args, "no_progress", False)}
    accepted = inspect.signature(run).parameters
    run(**{name: value for name, value in given.items() if name in accepted})


def _inputs(args: argparse.Namespace) -> list[str]:
    paths = [getattr(args, edge.role, None) for edge in BY_COMMAND[args.stage].inputs]
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


def _wants_traceback(args: argparse.Namespace) -> bool:
    """--debug or DGFLOW_BENCH_DEBUG=1 asks for it; else only when stderr is a regular file, i.e. the job's log
    (the rules run `... 2> {log}`), so a terminal or a pipe shows the sentence alone."""
    if getattr(args, "debug", False) or os.environ.get(DEBUG_VARIABLE, "") not in ("", "0"):
        return True
    try:
        return stat.S_ISREG(os.fstat(sys.stderr.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):  # a replaced sys.stderr (pytest's capture) has no file
        return False


def check_config(path: str) -> int:
    from .config import ConfigError
    from .preflight import check_config_file

    try:
        lines = check_config_file(path)
    except ConfigError as exc:
        print(f"dgflow-bench {CHECK_CONFIG}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"dgflow-bench {CHECK_CONFIG}: error: cannot read {path} ({exc.strerror or exc}); pass the path of "
              "a config file", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.stage == CHECK_CONFIG:
        return check_config(args.configfile)
    problem = params_problem(args.stage, args.params)
    if problem:
        print(f"dgflow-bench {args.stage}: error: {problem}", file=sys.stderr)
        return 2  # a usage error, as argparse's own
    from .errors import TrainingInterrupted, describe

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
    except Exception as exc:  # every failure a sentence; the traceback only where it is wanted
        if _wants_traceback(args):
            traceback.print_exc(file=sys.stderr)
        print(f"dgflow-bench {args.stage}: error: {describe(exc, inputs)}", file=sys.stderr)
        return 1
    log(f"stage {args.stage}: wrote {_listing(_outputs(args))} in {time.monotonic() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
