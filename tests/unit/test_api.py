"""The Python API (dgflow_bench.api): its documented example beats its base sample on a case with a known answer;
it gives the pipeline's numbers bit for bit (refine/driver.RefinementRun into a snapshots file); its parameter
errors are the config's for the same mistakes; missing inputs, pipeline-only knobs and divergences are refused
or reported as the pipeline does; it is deterministic, picks its device with the runtime helper and writes no
file unless asked."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from dgflow_bench import api
from dgflow_bench.catalog import METHODS, SUITES
from dgflow_bench.config import ConfigError, validate
from dgflow_bench.io import derive_seed
from dgflow_bench.refine.driver import RefinementRun
from dgflow_bench.runtime import resolve_device, seeded_generator
from dgflow_bench.snapshots import open_snapshots

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "api_2d.py"
N, BATCH, SEED = 40, 16, 7  # three batches: each draws its noise from its own seed, as the pipeline's


def _mlp(seed: int, out: int) -> torch.nn.Module:
    net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, out))
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=rng))
    return net.eval()


GENERATOR, CRITIC = _mlp(1, 2), _mlp(2, 1)


def _config_block(block: dict) -> dict:
    """The config's validated methods.m block (defaults filled)."""
    config = validate({"datasets": {"25gaussians": {}}, "models": {"wgan-gp": {"datasets": ["25gaussians"]}},
                       "methods": {"m": block}})
    return config["methods"]["m"]


def test_example_refines_toward_the_known_answer(capsys):
    spec = importlib.util.spec_from_file_location("api_2d", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    kl = {row: np.array(values) for row, values in example.main(seeds=range(3)).items()}
    printed = capsys.readouterr().out
    assert "KL(sample || target)" in printed and "dgflow-kl" in printed and "network passes" in printed
    base, flow, ddls, floor = kl["base"], kl["dgflow-kl"], kl["ddls"], kl["exact draws of p"]
    # measured: base 2.12 ± 0.05, dgflow-kl 0.15 ± 0.003, ddls 0.0015 ± 0.0008 (5 seeds): margins far past the noise
    assert base.mean() - flow.mean() > 10 * (base.std() + flow.std()) and (flow < 0.25).all()
    assert (ddls < 0.02).all() and abs(ddls.mean() - floor.mean()) < 0.01  # DDLS samples the target itself


PIPELINE_CASES = {
    "dgflow": {"kind": "dgflow", "steps": 6, "snapshot_every": 2},
    "dgflow-data": {"kind": "dgflow", "space": "data", "f": "JS", "eta": 0.05, "steps": 4, "snapshot_every": 2},
    "dot": {"kind": "dot", "steps": 5, "snapshot_every": 2, "k_eff_scope": "run"},
    "ddls": {"kind": "ddls", "steps": 5, "snapshot_every": 5},
    "base": {"kind": "base"},
    "drs": {"kind": "drs", "calibration_size": 30, "burn_in": 100, "max_proposals_per_sample": 12},
    "mh-gan": {"kind": "mh-gan", "k": 12, "snapshot_at": [4], "calibration_size": 30},
}


@pytest.mark.parametrize("case", sorted(PIPELINE_CASES))
def test_api_gives_the_pipelines_numbers_bit_for_bit(tmp_path, case):
    block = PIPELINE_CASES[case]
    params = METHODS[block["kind"]].from_config(_config_block(block))
    real = torch.randn(60, 2, generator=torch.Generator().manual_seed(3))
    cpu = torch.device("cpu")
    pipeline_params = params
    if params.real_samples:  # as stages/refine.py fits it: its rows, the fit's derived seed
        rng = seeded_generator(derive_seed(SEED, "fit", params.kind), cpu)
        pipeline_params = params.prepare(real[:params.real_samples], GENERATOR, CRITIC, rng, prior="normal",
                                         latent_dim=2)
    common = {"seed": SEED, "n_samples": N, "batch_size": BATCH, "divergence_bound": 10, "seeds": 1}
    run = RefinementRun(SUITES["toy2d"].modality, GENERATOR, CRITIC, "normal", 2, common, "default", cpu, case)
    run.write(str(tmp_path / "run.npz"), pipeline_params, progress=False)

    ours = api.refine(block, api.draw_latents(N, 2, "normal", SEED), GENERATOR, CRITIC, seed=SEED, device="cpu",
                      real=real, batch_size=BATCH)
    with open_snapshots(tmp_path / "run.npz") as theirs:
        assert sorted(ours.snapshots) == list(theirs.steps)
        for step in theirs.steps:
            np.testing.assert_array_equal(ours.snapshots[step].numpy(), theirs.read(step))
        np.testing.assert_array_equal(ours.latents.numpy(), theirs.latents)
        if theirs.final_latents is None:
            assert ours.final_latents is None
        else:
            np.testing.assert_array_equal(ours.final_latents.numpy(), theirs.final_latents)
    assert ours.diverged is None and ours.device == "cpu"
    assert set(ours.cost["network_evaluations_per_sample"]) >= {"generator_forward", "discriminator_backward", "total"}
    assert ours.cost["wall_s"] > 0 and "cpu_s_per_sample" in ours.cost
    assert list(tmp_path.iterdir()) == [tmp_path / "run.npz"]  # the API wrote nothing


def test_cost_is_the_counted_passes_per_sample():
    result = api.refine({"kind": "dgflow", "steps": 6}, api.draw_latents(N, 2), GENERATOR, CRITIC, device="cpu")
    # each step: G and d forward and backward; the final snapshot: one G forward
    assert result.cost["network_evaluations_per_sample"]["total"] == 4 * 6 + 1
    assert result.cost["evaluations_per_sample_by_step"][-1] == {"step": 6, "evaluations": 25.0}
    assert result.info["network_evaluations"]["discriminator_backward"] == 6 * N


@pytest.mark.parametrize("block", [{"eta": -1}, {"etaa": 0.1}, {"f": "chi2"}, {"steps": 2.5},
                                   {"kind": "dgflw"}, {"eta": float("inf")}])
def test_parameter_errors_are_the_configs(block):
    block = {"kind": "dgflow", **block}
    with pytest.raises(ConfigError) as config_error:
        _config_block(block)
    line = config_error.value.args[0].splitlines()[-1].strip()
    message = re.sub(r"^methods\.m(\.|: )?", "", line)  # the config's words after its key path
    with pytest.raises(ValueError) as api_error:
        api.method_params(**block)
    assert message.split(": ", 1)[-1] in str(api_error.value)
    key = re.match(r"^methods\.m\.(\w+)", line)
    if key:
        assert f"parameter {key.group(1)}" in str(api_error.value) or key.group(1) == "kind"
    if "etaa" in line:
        assert "its parameters are" in str(api_error.value) and " eta," in str(api_error.value)


def test_defaults_are_the_configs():
    for kind in METHODS:
        assert api.method_params(kind) == METHODS[kind].from_config(_config_block({"kind": kind}))
    given = {"kind": "dot", "betas": [0.5, 0.99], "lr": 0.1}
    assert api.method_params("dot", betas=(0.5, 0.99), lr=np.float64(0.1)) == \
        METHODS["dot"].from_config(_config_block(given))
    with pytest.raises(ValueError, match="parameter lr"):  # a hand-built object meets the config's bounds too
        api.refine(METHODS["dot"](lr=-1.0), api.draw_latents(N, 2), GENERATOR, CRITIC, device="cpu")


def test_missing_inputs_and_pipeline_knobs_are_refused():
    z0 = api.draw_latents(N, 2)
    with pytest.raises(ValueError, match=r"drs needs real samples \(its calibration 'isotonic'.*pass real="):
        api.refine("drs", z0, GENERATOR, CRITIC, device="cpu")
    with pytest.raises(ValueError, match=r"its chains start at them\): pass real=.*, or set start='base'$"):
        api.refine({"kind": "mh-gan", "calibration": "none"}, z0, GENERATOR, CRITIC, device="cpu")
    with pytest.raises(ValueError, match="real holds 10 samples, drs needs 30 .*calibration_size"):
        api.refine({"kind": "drs", "calibration_size": 30}, z0, GENERATOR, CRITIC, device="cpu",
                   real=torch.zeros(10, 2))
    with pytest.raises(ValueError, match="spectral_norm='frozen' sets a mode .* leave spectral_norm unset"):
        api.refine({"kind": "dgflow", "spectral_norm": "frozen"}, z0, GENERATOR, CRITIC, device="cpu")
    with pytest.raises(ValueError, match="batch_size .*refine.batch_size.*minimum of 2"):
        api.refine("base", z0, GENERATOR, CRITIC, device="cpu", batch_size=1)
    assert api.refine({"kind": "drs", "calibration": "none", "burn_in": 10}, z0, GENERATOR, CRITIC,
                      device="cpu").samples.shape == (N, 2)  # no fit, no real samples needed


def test_same_seed_same_numbers_other_seed_other_noise():
    z0 = api.draw_latents(N, 2, "normal", 3)
    method = api.method_params("dgflow", gamma=0.5, steps=4)
    one, two = (api.refine(method, z0, GENERATOR, CRITIC, seed=3, device="cpu") for _ in range(2))
    other = api.refine(method, z0, GENERATOR, CRITIC, seed=4, device="cpu")
    assert torch.equal(one.samples, two.samples) and torch.equal(one.base, other.base)
    assert not torch.equal(one.samples, other.samples)


def test_device_is_the_pipelines_choice(monkeypatch):
    result = api.refine("base", api.draw_latents(N, 2), GENERATOR, CRITIC)  # device auto
    assert result.device == str(resolve_device("auto"))
    if torch.cuda.is_available():  # a GPU machine: it runs there, networks moved, samples back on the CPU
        assert result.device == "cuda" and result.samples.device.type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")  # the helper refine() asks picks CUDA when present
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        api.refine("base", api.draw_latents(N, 2), GENERATOR, CRITIC, device="cuda")


def test_divergence_is_cut_or_raised_as_the_pipeline_does():
    def explode(x):  # d = |x|^2 / 2: the flow x <- (1 + eta) x leaves 10 x the base range after ~25 steps
        return 0.5 * (x ** 2).sum(1)

    z0 = api.draw_latents(N, 2)
    method = {"kind": "dgflow", "eta": 0.1, "gamma": 0.0, "steps": 40, "snapshot_every": 5}
    cut = api.refine(method, z0, None, explode, device="cpu")
    assert cut.diverged["step"] == 25 and cut.diverged["kept_until_step"] == 20
    assert max(cut.snapshots) == 20 and all(torch.isfinite(x).all() for x in cut.snapshots.values())
    with pytest.raises(api.DivergenceAt, match="diverged at step 25"):
        api.refine(method, z0, None, explode, device="cpu", on_divergence="raise")


def test_save_writes_the_pipelines_snapshots_file(tmp_path):
    result = api.refine({"kind": "ddls", "steps": 4, "snapshot_every": 2}, api.draw_latents(N, 2), GENERATOR,
                        CRITIC, device="cpu")
    path = result.save(tmp_path / "ddls.npz")
    with open_snapshots(path) as saved:
        assert list(saved.steps) == [0, 2, 4]
        np.testing.assert_array_equal(saved.read(4), result.samples.numpy())
        np.testing.assert_array_equal(saved.final_latents, result.final_latents.numpy())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddls.npz"]
