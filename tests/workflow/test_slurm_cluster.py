"""The tiny 2-D suite through snakemake's SLURM executor on a real one-node SLURM cluster on this machine
(scripts/slurm/up.sh, torn down by scripts/slurm/down.sh): every job goes through sbatch, the fake GPU
is requested for the train jobs, the table equals a local run's, and a failing job fails the run
(instead of hanging) with the rule's log intact.

Opt-in: runs only with DGFLOW_BENCH_SLURM_TEST=1 (.ci/run sets it), since it changes the machine: it
apt-installs munge and Debian's slurm packages, writes /etc/slurm and starts munged/slurmctld/slurmd. Needs
root and snakemake-executor-plugin-slurm too; skips with the reason otherwise, or when Debian's slurm
packages cannot be installed."""

from __future__ import annotations

import fcntl
import importlib.util
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO
from fixtures.workflow import tiny_config, write_config

OPT_IN = "DGFLOW_BENCH_SLURM_TEST"
# a module-level skip: no fixture (cluster, lock file, local run) is set up without the opt-in
pytestmark = [pytest.mark.slurm,
              pytest.mark.skipif(os.environ.get(OPT_IN) != "1",
                                 reason=f"set {OPT_IN}=1 to run it (apt-installs slurm, writes /etc/slurm, "
                                        "starts daemons)")]

UP = REPO / "scripts" / "slurm" / "up.sh"
DOWN = REPO / "scripts" / "slurm" / "down.sh"
PROFILE = REPO / "workflow" / "profiles" / "slurm-local"
EXIT_CANNOT_INSTALL = 3  # up.sh: the packages are missing and cannot be installed
LOCAL_TIMEOUT = 900
SLURM_TIMEOUT = 900  # 19 small jobs, two at a time on 2 cores, each a fresh snakemake + torch process
CLUSTER_TIMEOUT = 600  # up.sh, including an apt-get install
# The cluster is machine-wide (/etc/slurm/slurm.conf, ports 6817/6818): test sessions take turns on it.
LOCAL_RULES = {"resolved_config", "report_toy2d", "report_text", "report_images"}  # Snakefile `localrules`
LOCK = Path(os.environ.get("DGFLOW_SLURM_LOCK", "/tmp/dgflow-slurm.lock"))
LOCK_WAIT = int(os.environ.get("DGFLOW_SLURM_LOCK_WAIT_S", "1800"))


def cluster_config(dot_source: dict) -> dict:
    """The tiny suite cut to one dataset and three methods (19 jobs): every stage and both model sources
    still go through SLURM, in a third of the time (each job is a fresh snakemake + torch process)."""
    config = tiny_config(dot_source)
    config["datasets"].pop("swissroll")
    config["models"]["wgan-gp"]["datasets"] = ["25gaussians"]
    config["methods"] = {k: v for k, v in config["methods"].items() if k in ("base", "dgflow-kl", "dot")}
    # the config's resource table sizes the jobs: small, so memory never holds a job back on 2 cores
    config["resources"] = {stage: {"mem_mb": 500, "runtime": 15} for stage in (
        "data", "train", "import_checkpoint", "finetune_discriminator", "refine", "evaluate", "report",
        "resolved_config")}
    return config


def job_env() -> dict[str, str]:
    """The environment for snakemake, which sbatch passes on to the jobs (--export=ALL): the jobs run
    `dgflow-bench` from PATH, so this interpreter's bin folder (the venv's) comes first. No SLURM_*
    variables from a surrounding allocation, no user profile."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.pop("SNAKEMAKE_PROFILE", None)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "/usr/bin:/bin")])
    return env


def run(cmd: list[str], timeout_s: int, **kwargs) -> subprocess.CompletedProcess:
    """cmd under `timeout -k 30`, so a hung process tree is killed even if Python's timeout is not reached."""
    return subprocess.run(["timeout", "-k", "30", str(timeout_s), *cmd], capture_output=True, text=True,
                          timeout=timeout_s + 60, **kwargs)


def snakemake(workdir: Path, *args: str, timeout_s: int) -> tuple[subprocess.CompletedProcess, float]:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory",
           str(workdir), "--configfile", str(workdir / "config.yaml"), *args]
    start = time.monotonic()
    proc = run(cmd, timeout_s, env=job_env(), cwd=workdir)
    return proc, time.monotonic() - start


def slurm_snakemake(workdir: Path, timeout_s: int = SLURM_TIMEOUT):
    return snakemake(workdir, "--executor", "slurm", "--workflow-profile", str(PROFILE), timeout_s=timeout_s)


def job_stats(output: str) -> dict[str, int]:
    """The `Job stats` table snakemake prints before running, as {rule: count}, without `all`."""
    counts = {}
    for line in output.split("Job stats:", 1)[1].splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m or m.group(1) == "total":
            break
        counts[m.group(1)] = int(m.group(2))
    counts.pop("all", None)
    return counts


def tail(proc: subprocess.CompletedProcess, n: int = 4000) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-n:]}\n--- stderr\n{proc.stderr[-n:]}"


def exclusive_lock(path: Path, wait_s: int) -> int:
    """An flock on path, waited for up to wait_s (another session's test runs on the cluster); the fd is
    not inherited by children, so the daemons up.sh starts do not keep holding it."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                pytest.skip(f"another test session has held the local SLURM cluster ({path}) for over {wait_s}s")
            time.sleep(5)


@pytest.fixture(scope="module")
def slurm_cluster():
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.skip("snakemake-executor-plugin-slurm is not installed (pip install snakemake-executor-plugin-slurm)")
    if os.geteuid() != 0:
        pytest.skip("the local SLURM cluster needs root (it writes /etc/slurm and starts munged, slurmctld, slurmd)")
    lock = exclusive_lock(LOCK, LOCK_WAIT)
    try:
        start = time.monotonic()
        proc = run(["bash", str(UP)], CLUSTER_TIMEOUT)
        if proc.returncode == EXIT_CANNOT_INSTALL:
            reason = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            pytest.skip(f"SLURM cannot be installed here: {reason}")
        assert proc.returncode == 0, f"scripts/slurm/up.sh failed: {tail(proc)}"
        print(f"\nscripts/slurm/up.sh: {time.monotonic() - start:.1f} s")
        yield Path(proc.stdout.strip().splitlines()[-1])
    finally:
        try:
            down = run(["bash", str(DOWN)], 120)
            assert down.returncode == 0, f"scripts/slurm/down.sh failed: {tail(down)}"
        finally:
            os.close(lock)  # releases the flock


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, dot_format_source):
    workdir = tmp_path_factory.mktemp("local")
    write_config(workdir, cluster_config(dot_format_source))
    proc, seconds = snakemake(workdir, "--cores", "2", timeout_s=LOCAL_TIMEOUT)
    assert proc.returncode == 0, tail(proc)
    print(f"\ntiny suite, local executor (--cores 2): {seconds:.0f} s")
    return workdir, proc


def squeue_jobs(job_ids: list[str]) -> dict[str, tuple[str, str]]:
    """{slurm job id: (state, comment)}; the plugin puts rule and wildcards in the comment. Finished jobs
    stay visible for MinJobAge (600 s in up.sh's slurm.conf)."""
    proc = run(["squeue", "-h", "-t", "all", "-j", ",".join(job_ids), "-o", "%i|%T|%k"], 60)
    assert proc.returncode == 0, tail(proc)
    return {i: (state, comment) for i, state, comment in
            (line.split("|", 2) for line in proc.stdout.splitlines() if line.strip())}


def test_tiny_suite_through_slurm_matches_local_run(slurm_cluster, local_run, dot_format_source, tmp_path):
    local_dir, local_proc = local_run
    write_config(tmp_path, cluster_config(dot_format_source))
    proc, seconds = slurm_snakemake(tmp_path)
    assert proc.returncode == 0, tail(proc)
    print(f"\ntiny suite, SLURM executor (one-node cluster): {seconds:.0f} s")
    output = proc.stdout + proc.stderr

    # same numbers as the local run
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "results/tables/toy2d.csv"),
                                  pd.read_csv(local_dir / "results/tables/toy2d.csv"))

    # every job of the DAG went through sbatch: one submission and one SLURM log per job, per rule, except
    # that refine + evaluate pairs travel in bundles of three (group "refinement", group-components 3)
    counts = job_stats(output)
    assert counts == job_stats(local_proc.stdout + local_proc.stderr)
    # (the Snakefile's localrules -- resolved config, reports -- run on the submitting host)
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", output)
    ungrouped = {rule: n for rule, n in counts.items()
                 if rule not in ("refine", "evaluate") and rule not in LOCAL_RULES}
    assert len(submitted) == sum(ungrouped.values()) + math.ceil(counts["refine"] / 3), counts  # bundles of 3
    assert LOCAL_RULES & set(counts) == {"resolved_config", "report_toy2d"}
    logs = tmp_path / ".snakemake" / "slurm_logs"
    for rule, n in ungrouped.items():
        assert len(list((logs / f"rule_{rule}").rglob("*.log"))) == n, rule
    assert len(list((tmp_path / "results/logs/evaluate").rglob("*.log"))) == counts["evaluate"]

    # SLURM's own view: all completed, one job per rule instance
    jobs = squeue_jobs(submitted)
    assert set(jobs) == set(submitted)
    assert {state for state, _ in jobs.values()} == {"COMPLETED"}, jobs
    per_rule = {rule: sum(comment == f"rule_{rule}" or comment.startswith(f"rule_{rule}_wildcards_")
                          for _, comment in jobs.values()) for rule in ungrouped}
    assert per_rule == ungrouped
    assert len(jobs) - sum(per_rule.values()) == math.ceil(counts["refine"] / 3)  # the bundles

    # the profile's fake GPU request reached the scheduler for the GPU stages (train, and refine + evaluate
    # bundles), one GPU each; a bundle of k runs asks for one GPU and the sum of its runs' runtimes
    bundles = 0
    for job_id, (_, comment) in jobs.items():
        show = run(["scontrol", "show", "job", job_id], 60).stdout
        gpus = re.search(r"TresPerJob=\S*gpu:(\d+)", show)
        is_bundle = not any(comment == f"rule_{r}" or comment.startswith(f"rule_{r}_wildcards_") for r in ungrouped)
        assert (gpus.group(1) if gpus else None) == ("1" if is_bundle or comment.startswith("rule_train_") else None), (comment, show)
        if is_bundle:
            bundles += 1
            hours, minutes = map(int, re.search(r"TimeLimit=(\d+):(\d+):00", show).groups())
            assert 60 * hours + minutes in {k * 2 * 15 for k in (1, 2, 3)}, show  # refine + evaluate, 15 each
    assert bundles == math.ceil(counts["refine"] / 3)


def test_failing_job_fails_the_run(slurm_cluster, dot_format_source, tmp_path):
    # the import job fails on a checkpoint that is not an npz archive (its SHA-256 is the one the config gives,
    # so the plan-time checks pass and the job itself fails): the plugin must see the FAILED job through
    # squeue and end the run with an error (not poll forever), keeping the rule's log and the SLURM log
    from dgflow_bench.io import sha256_file

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for path in Path(dot_format_source["local_dir"]).iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    broken = folder / "G_25gaussians_WGAN-GP.npz"
    broken.write_bytes(b"not an npz archive")
    config = cluster_config(dot_format_source)
    config["sources"]["dot-pretrained"] = {
        "local_dir": str(folder), "sha256": {**dot_format_source["sha256"], broken.name: sha256_file(broken)}}
    config["models"]["wgan-gp"]["sources"] = ["dot-pretrained"]
    write_config(tmp_path, config)
    proc, _ = slurm_snakemake(tmp_path, timeout_s=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode not in (0, 124, 137), tail(proc)
    assert re.search(r"SLURM-job '\d+' failed", output), tail(proc)
    log = (tmp_path / "results/logs/import/25gaussians/wgan-gp/dot-pretrained.log").read_text()
    assert broken.name in log
    assert list((tmp_path / ".snakemake/slurm_logs/rule_import_checkpoint").rglob("*.log"))
    assert not (tmp_path / "results/tables").exists()
