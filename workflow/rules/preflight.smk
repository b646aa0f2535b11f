# Checks made while the job graph is built, so a dry run (`snakemake -n`) already fails on them: external
# inputs, and intermediates deleted or damaged by hand. Plus the report's keep-aside on failure.
import shutil
import sys

from dgflow_bench.config import ConfigError
from dgflow_bench.preflight import damaged_intermediates, external_input_errors, setting_lines

KEPT_REPORT = "results/.kept-report"
PREVIOUS_REPORT = "results/previous-report"  # a failed run's predecessors, never under the output names
# Snakemake modes that run no job (housekeeping, reports, listings): the checks only warn there, so a missing
# input never blocks --unlock, --report or --delete-all-output.
_NO_JOBS = ("--unlock", "--report", "--delete-all-output", "--delete-temp-output", "--cleanup-metadata", "--cm",
            "--lint", "--list", "-l", "--summary", "-S", "--detailed-summary", "-D", "--dag", "--rulegraph",
            "--filegraph", "--touch", "-t", "--archive", "--containerize", "--export-cwl")


def _complain(message):
    if any(arg.split("=")[0] in _NO_JOBS or arg.startswith("--list-") for arg in sys.argv[1:]):
        print(f"dgflow-bench: warning: {message}", file=sys.stderr)
        return
    raise ConfigError(message)


def _preflight():
    """Intermediates to rebuild (deleted by hand: Snakemake would not remake them while their dependants
    exist); raises ConfigError for missing external inputs and damaged files it cannot safely remake."""
    if not workflow.is_main_process:  # cluster jobs re-read the Snakefile; the submitting process checked
        return []
    errors = external_input_errors(config)
    if errors:
        _complain("external inputs the configured runs need are missing or wrong:\n  " + "\n  ".join(errors))
    damaged = damaged_intermediates(config)
    present = {path: why for path, why in damaged.items() if os.path.exists(path)}
    if present:
        lines = [f"{path}: {why}" for path, why in sorted(present.items())]
        _complain("damaged intermediates:\n  " + "\n  ".join(lines) + "\nFix: delete them (rm "
                  + " ".join(sorted(present)) + ") and rerun: they are rebuilt with everything made from them.")
    for path, why in sorted(damaged.items()):
        print(f"dgflow-bench: rebuilding {path} ({why}) and what is made from it", file=sys.stderr)
    return sorted(damaged)


REBUILD = _preflight()


def _announce_settings():
    """Which rows reproduce the authors' settings and which are variants, before the job list (dry runs too)."""
    if workflow.is_main_process and not any(arg.split("=")[0] in _NO_JOBS for arg in sys.argv[1:]):
        for line in setting_lines(config):
            print(f"dgflow-bench: {line}", file=sys.stderr)


_announce_settings()


def report_files():
    return [t for t in final_targets() if t.startswith(("results/tables/", "results/figures/"))]


def keep_report_aside():
    """Copies of the current tables and figures: Snakemake deletes a job's outputs before it runs and after it
    fails, so without them a failed report would leave no table at all."""
    shutil.rmtree(KEPT_REPORT, ignore_errors=True)
    for path in report_files():
        if os.path.exists(path):
            os.makedirs(os.path.dirname(os.path.join(KEPT_REPORT, path)), exist_ok=True)
            shutil.copy2(path, os.path.join(KEPT_REPORT, path))


def restore_kept_report():
    """Keep the previous tables and figures a failed run removed aside, under results/previous-report/, never
    under the output names: Snakemake records metadata for the failed job, so a file put back there would pass
    as the new config's output and the next run would say "Nothing to be done" over the old table."""
    for path in report_files():
        kept = os.path.join(KEPT_REPORT, path)
        if not os.path.exists(path) and os.path.exists(kept):
            aside = os.path.join(PREVIOUS_REPORT, os.path.relpath(path, "results"))
            os.makedirs(os.path.dirname(aside), exist_ok=True)
            os.replace(kept, aside)
    shutil.rmtree(KEPT_REPORT, ignore_errors=True)
    # a run that failed again, with no table to keep, leaves the ones an earlier failure put aside
    kept_aside = [os.path.join(PREVIOUS_REPORT, os.path.relpath(path, "results")) for path in report_files()]
    kept_aside = [path for path in kept_aside if os.path.exists(path)]
    if kept_aside:
        print(f"\ndgflow-bench: the run failed before its tables and figures were rebuilt; the previous run's are "
              f"kept in {PREVIOUS_REPORT}/ (made from an earlier config, not current; the next run rebuilds the "
              f"tables): {', '.join(kept_aside)}", file=sys.stderr)


def drop_kept_report():
    """After a run that succeeded: its tables are current, so no older copy is left to be mistaken for them."""
    shutil.rmtree(KEPT_REPORT, ignore_errors=True)
    shutil.rmtree(PREVIOUS_REPORT, ignore_errors=True)
