"""Every failure of a stage is one or two sentences naming the file or key and the fix, never a traceback on
the console (issue 25): each error class is run through the real CLI entry point."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from dgflow_bench import cli
from dgflow_bench.config import ConfigError, load_config_file, validate

TRAIN = {"arch": {"generator": {"hidden": 8, "depth": 2}, "critic": {"hidden": 8, "depth": 2}},
         "recipe": {"iterations": 20, "critic_steps": 1, "batch_size": 16, "lr": 1e-3, "betas": [0.5, 0.9],
                    "gp_weight": 10, "checkpoint_every": 10, "lr_decay": "linear"},
         "seed": 11}
DATA = {"n_train": 200, "n_heldout": 50, "seed": 1}
MINIMAL = {"datasets": {"swissroll": {}}, "models": {"wgan-gp": {"datasets": ["swissroll"]}},
           "methods": {"flow": {"kind": "dgflow"}}}


def run_cli(*args: str, stderr=subprocess.PIPE) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dgflow_bench.cli", *args], stdout=subprocess.PIPE, stderr=stderr,
                          text=True, timeout=300)


def train_args(data: Path, tmp: Path, state: Path) -> list[str]:
    return ["train", "--dataset", "swissroll", "--model", "wgan-gp", "--data", str(data), "--params",
            json.dumps(TRAIN), "--out", str(tmp / "model.pt"), "--state", str(state), "--device", "cpu",
            "--threads", "1", "--no-progress"]


def assert_sentence(stderr: str, *needles: str) -> None:
    assert "Traceback" not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("dgflow-bench ") and ": error: " in last, stderr
    for needle in needles:
        assert needle in last, (needle, stderr)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "swissroll.npz"
    assert cli.main(["data", "--dataset", "swissroll", "--params", json.dumps(DATA), "--out", str(out)]) == 0
    return out


def test_disk_full_is_a_sentence(tmp_path, monkeypatch, capsys):
    from dgflow_bench import io as dgio

    @contextlib.contextmanager
    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
        yield  # pragma: no cover

    monkeypatch.setattr(dgio, "atomic_path", full)
    out = tmp_path / "swissroll.npz"
    rc = cli.main(["data", "--dataset", "swissroll", "--params", json.dumps(DATA), "--out", str(out)])
    assert rc == 1
    assert_sentence(capsys.readouterr().err, "no space left on the device", str(out), "Free some disk space")


def test_hostile_tar_is_a_sentence(tmp_path, monkeypatch, capsys):
    from dgflow_bench.data.text import ensure_corpus

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    tarball = downloads / "corpus.tar"  # already "downloaded": the stage goes straight to extraction
    with tarfile.open(tarball, "w") as archive:
        member = tarfile.TarInfo("../x")
        member.size = 3
        archive.addfile(member, io.BytesIO(b"abc"))

    monkeypatch.setattr(cli, "dispatch", lambda args: ensure_corpus(None, "https://example.org/corpus.tar", downloads))
    rc = cli.main(["data", "--dataset", "swissroll", "--params", json.dumps(DATA), "--out", str(tmp_path / "o.npz")])
    assert rc == 1 and not (tmp_path / "x").exists()
    assert_sentence(capsys.readouterr().err, str(tarball), "'../x'", "delete it and rerun",
                    "datasets.billion-words.root")


def test_damaged_training_state_names_the_file(tmp_path, data_file):
    state = tmp_path / "train-state.pt"
    state.write_bytes(b"PK\x03\x04" + b"\x00" * 60)  # a truncated zip, as a kill -9 on a copy might leave
    proc = run_cli(*train_args(data_file, tmp_path, state))
    assert proc.returncode == 1
    assert_sentence(proc.stderr, str(state), "delete it to start the training over", f"rm {state}")


def test_object_array_npz_names_the_file(tmp_path):
    bad = tmp_path / "swissroll.npz"
    np.savez(bad, train=np.array([{"a": 1}, None], dtype=object), heldout=np.zeros((2, 2)))
    proc = run_cli(*train_args(bad, tmp_path, tmp_path / "state.pt"))
    assert proc.returncode == 1
    assert_sentence(proc.stderr, str(bad), "object array", "Delete it and rerun")


def test_traceback_stays_in_the_log(tmp_path, data_file):
    """stderr a regular file (the rules run `... 2> {log}`): the log keeps the traceback, ending with the
    sentence; DGFLOW_BENCH_DEBUG / --debug are the way to see it on a terminal."""
    state = tmp_path / "train-state.pt"
    state.write_bytes(b"garbage")
    log = tmp_path / "train.log"
    with open(log, "w") as fh:
        proc = run_cli(*train_args(data_file, tmp_path, state), stderr=fh)
    text = log.read_text()
    assert proc.returncode == 1 and "Traceback" in text
    assert "delete it to start the training over" in text.strip().splitlines()[-1]
    proc = run_cli("--debug", *train_args(data_file, tmp_path, state))
    assert proc.returncode == 1 and "Traceback" in proc.stderr


def test_python_tag_in_yaml_names_file_and_tag(tmp_path):
    config = tmp_path / "evil.yaml"
    config.write_text("datasets:\n  swissroll: !!python/object:os.system {}\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(config)
    message = str(info.value)
    assert str(config) in message and "tag:yaml.org,2002:python/object:os.system" in message
    assert "line 2" in message and "remove the tag" in message


def test_unregistered_dataset_names_the_key_path():
    config = {**MINIMAL, "models": {"wgan-gp": {"datasets": ["moons"]}}}
    with pytest.raises(ConfigError) as info:
        validate(config, source="configs/mine.yaml")
    message = str(info.value)
    assert message.startswith("configs/mine.yaml: ")
    assert "models.wgan-gp.datasets[0] is 'moons', not a registered dataset" in message
    assert "swissroll" in message and "25gaussians" in message


def test_schema_errors_name_the_config_file_and_key_path():
    config = {**MINIMAL, "models": {"wgan-gp": {"datasets": ["swissroll", 3]}}}
    with pytest.raises(ConfigError) as info:
        validate(config, source="configs/mine.yaml")
    message = str(info.value)
    assert message.startswith("configs/mine.yaml: invalid config") and "models.wgan-gp.datasets[1]" in message


def test_snakemake_names_the_configfile_and_the_key(tmp_path):
    """Through the workflow: the --configfile and the key path, and neither a Snakefile line nor a traceback."""
    config = tmp_path / "mine.yaml"
    config.write_text("datasets:\n  swissroll: {}\nmodels:\n  wgan-gp:\n    datasets: [moons]\n"
                      "methods:\n  flow: {kind: dgflow}\n")
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--snakefile",
                           str(repo / "Snakefile"), "--directory", str(tmp_path), "--configfile", str(config)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    said = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "mine.yaml: models.wgan-gp.datasets[0] is 'moons', not a registered dataset" in said
    assert "Traceback" not in said and "Snakefile" not in said
    assert not (tmp_path / "results").exists()


def test_a_python_tag_stops_snakemake_and_check_config_names_line_and_tag(tmp_path):
    """Snakemake reads a --configfile before the Snakefile runs, and says only 'not valid JSON or YAML': nothing
    runs, and `dgflow-bench check-config` (the docs' next step for that message) names the file, line and tag."""
    config = tmp_path / "evil.yaml"
    config.write_text("datasets:\n  swissroll: !!python/object:os.system {}\nmodels: {}\nmethods: {}\n")
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--snakefile",
                           str(repo / "Snakefile"), "--directory", str(tmp_path), "--configfile", str(config)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode != 0 and "not valid JSON or YAML" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()
    proc = run_cli("check-config", str(config))
    assert proc.returncode == 1
    assert_sentence(proc.stderr, f"{config} (line 2)", "python/object:os.system", "remove the tag")


def test_check_config_runs_the_planners_checks(tmp_path):
    """The same sentences the workflow gives, without Snakemake: schema key paths, missing external inputs, an
    unreadable file; a good config lists what it configures."""
    config = tmp_path / "mine.yaml"
    config.write_text("datasets:\n  swissroll: {}\nmodels:\n  wgan-gp:\n    datasets: [moons]\n"
                      "methods:\n  flow: {kind: dgflow}\n")
    proc = run_cli("check-config", str(config))
    assert proc.returncode == 1
    assert f"{config}: models.wgan-gp.datasets[0] is 'moons', not a registered dataset" in proc.stderr
    config.write_text("datasets:\n  cifar10: {root: no-such-folder}\nmodels:\n  sn-dcgan-hinge:\n"
                      "    datasets: [cifar10]\nmethods:\n  base: {kind: base}\n")
    proc = run_cli("check-config", str(config))
    assert proc.returncode == 1 and "external inputs" in proc.stderr
    assert str(tmp_path / "no-such-folder") in proc.stderr  # resolved against the config file's folder
    proc = run_cli("check-config", str(tmp_path / "absent.yaml"))
    assert_sentence(proc.stderr, "cannot read", "absent.yaml", "pass the path of a config file")
    proc = run_cli("check-config", str(Path(__file__).resolve().parents[2] / "config.yaml"))
    assert proc.returncode == 0 and "valid: 2 dataset x model runs" in proc.stdout, proc.stderr
