# Checks made while the job graph is built, so a dry run (`snakemake -n`) already fails on them: external
# inputs, and intermediates deleted or damaged by hand. Plus the report's keep-aside on failure.
import shutil
import sys

from dgflow_bench.config import ConfigError
from dgflow_bench.preflight import damaged_intermediates, external_input_errors, setting_lines

KEPT_REPORT = "results/.kept-report"
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
    """Put back the previous tables and figures a failed run removed, dated 1970 so the next run rebuilds them."""
    restored = []
    for path in report_files():
        kept = os.path.join(KEPT_REPORT, path)
        if not os.path.exists(path) and os.path.exists(kept):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            shutil.copy2(kept, path)
            os.utime(path, (0, 0))
            restored.append(path)
    shutil.rmtree(KEPT_REPORT, ignore_errors=True)
    if restored:
        print(f"\ndgflow-bench: the run failed; the previous run's tables and figures are back in place (they are "
              f"stale and rebuilt by the next run): {', '.join(restored)}", file=sys.stderr)


def drop_kept_report():
    shutil.rmtree(KEPT_REPORT, ignore_errors=True)
