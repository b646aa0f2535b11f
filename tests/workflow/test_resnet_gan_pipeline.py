"""SN-ResNet-GAN as a registered image model and the d_phi + d_lambda density-ratio corrector as the
`finetuned` discriminator of the DAG: config defaults and cross-checks, the builds at 32 / 48 px, the
corrected discriminator's save / load round trip through the finetune stage (forward = d_phi + d_lambda,
d_phi bit-identical to the base model's critic). The preset end to end: tests/workflow/test_image_families.py."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch


from dgflow_bench.cli import main as cli_main
from dgflow_bench.config import ConfigError, finetune_params, validate
from dgflow_bench.models.dcgan import SNDCGANDiscriminator
from dgflow_bench.models.store import load_model_file, save_model_file
from dgflow_bench.catalog import MODELS
from dgflow_bench.stages import finetune, train
from dgflow_bench.models.corrected import CorrectedLogit
from dgflow_bench.training.corrector import train_corrector, zero_last_layer

TINY_ARCH = {"g_ch": 16, "d_ch": 16}
METHODS = {"base": {"kind": "base"}, "flow": {"kind": "dgflow", "discriminator": "finetuned"}}


def config_with(models: dict, datasets=("cifar10",), methods=METHODS) -> dict:
    return {"datasets": {d: {} for d in datasets}, "models": models, "methods": methods}


def resnet_and_base(**resnet) -> dict:
    return config_with({"sn-resnet-gan": {"datasets": ["cifar10"], **resnet},
                        "sn-dcgan-ns": {"datasets": ["cifar10"]}})


def test_registry_entry_and_schema_defaults():
    entry = MODELS["sn-resnet-gan"]
    assert (entry.suite, entry.loss, entry.prior, entry.default_latent_dim) == ("images", "hinge", "normal", 128)
    config = validate(resnet_and_base())
    spec = config["models"]["sn-resnet-gan"]
    assert spec["arch"] == {"z_dim": 128, "g_ch": 256, "d_ch": 128, "d_down_blocks": 1, "d_plain_blocks": 2}
    assert spec["train"] == {"iterations": 50000, "critic_steps": 5, "batch_size": 64, "lr": 2e-4,
                             "betas": [0.0, 0.9], "gp_weight": 0, "lr_decay": "linear", "checkpoint_every": 1000}
    assert spec["density_ratio"] == {"kind": "corrector", "base_model": "sn-dcgan-ns", "base_source": "trained",
                                     "steps": 5000, "batch_size": 64, "lr": 1e-4, "betas": [0.5, 0.999],
                                     "checkpoint_every": 500, "validation_size": 2000, "eval_every": 250,
                                     "use_published": True}
    # every other image model keeps the logistic fine-tune of its own critic
    assert config["models"]["sn-dcgan-ns"]["density_ratio"] == {"kind": "logistic"}


def test_finetune_params_follow_the_estimator():
    config = validate({**resnet_and_base(), "finetune": {"steps": 7}})
    corrector = finetune_params(config, "cifar10", "sn-resnet-gan", "trained")
    assert corrector["density_ratio"]["kind"] == "corrector" and "steps" not in corrector  # not the logistic block
    logistic = finetune_params(config, "cifar10", "sn-dcgan-ns", "trained")
    assert logistic["steps"] == 7 and logistic["density_ratio"] == {"kind": "logistic"}
    assert corrector["seed"] != logistic["seed"]


@pytest.mark.parametrize("models, fragment", [
    ({"sn-resnet-gan": {"datasets": ["cifar10"]}}, "models.sn-dcgan-ns is not configured"),
    ({"sn-resnet-gan": {"datasets": ["cifar10", "stl10-48"]}, "sn-dcgan-ns": {"datasets": ["cifar10"]}},
     "models.sn-dcgan-ns does not list 'stl10-48'"),
])
def test_corrector_without_its_base_fails_validation(models, fragment):
    with pytest.raises(ConfigError) as info:
        validate(config_with(models, datasets=("cifar10", "stl10-48")))
    message = str(info.value)
    assert message.startswith("models.sn-resnet-gan.density_ratio:") and fragment in message
    assert "models.sn-dcgan-ns.datasets" in message and "{kind: logistic}" in message  # the two fixes


def test_corrector_base_model_and_source_are_checked():
    bad_model = resnet_and_base(density_ratio={"kind": "corrector", "base_model": "sn-dcgan"})
    with pytest.raises(ConfigError, match="density_ratio.base_model is 'sn-dcgan', not a registered model"):
        validate(bad_model)
    bad_source = resnet_and_base(density_ratio={"kind": "corrector", "base_source": "dot-pretrained"})
    with pytest.raises(ConfigError, match=r"base_source is 'dot-pretrained', but models.sn-dcgan-ns.sources"):
        validate(bad_source)
    with pytest.raises(ConfigError, match="Additional properties are not allowed \\('steps'"):
        validate(resnet_and_base(density_ratio={"kind": "logistic", "steps": 3}))  # logistic reads `finetune`


def test_no_finetuned_method_needs_no_base():
    config = validate(config_with({"sn-resnet-gan": {"datasets": ["cifar10"]}}, methods={"base": {"kind": "base"}}))
    assert config["models"]["sn-resnet-gan"]["density_ratio"]["kind"] == "corrector"


@pytest.mark.parametrize("size", [32, 48])
def test_builds_follow_the_data_size(size):
    spec = validate(resnet_and_base(arch=TINY_ARCH))["models"]["sn-resnet-gan"]
    generator, critic = MODELS["sn-resnet-gan"].build(spec["arch"], {"image_size": size, "channels": 3}).values()
    x = generator(torch.randn(2, 128))
    assert x.shape == (2, 3, size, size) and critic(x).shape == (2,)
    assert generator.spec["bottom_width"] == size // 8


def write_images(path, size: int, n: int = 40, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8)
    np.savez(path, train=images, heldout=images[:8])
    return str(path)


def test_train_stage_runs_at_48px(tmp_path):
    spec = validate(config_with({"sn-resnet-gan": {"datasets": ["stl10-48"], "arch": TINY_ARCH}},
                                datasets=("stl10-48",), methods={"base": {"kind": "base"}}))["models"]["sn-resnet-gan"]
    recipe = {**spec["train"], "iterations": 2, "batch_size": 4, "critic_steps": 2}
    out = tmp_path / "model.pt"
    train.run("stl10-48", "sn-resnet-gan", write_images(tmp_path / "d.npz", 48), {"arch": spec["arch"],
              "recipe": recipe, "seed": 5}, str(out), str(tmp_path / "state.pt"), "cpu", progress=False)
    loaded = load_model_file(out)
    assert loaded["latent"] == {"prior": "normal", "dim": 128}
    assert loaded["generator"](torch.randn(3, 128)).shape == (3, 3, 48, 48)


def test_zeroing_a_spectral_norm_last_layer_of_a_copy():
    torch.manual_seed(0)
    d_phi = SNDCGANDiscriminator(ch=16)
    d_lambda = copy.deepcopy(d_phi)
    x = torch.randn(4, 3, 32, 32)
    before = d_phi.eval()(x)
    zero_last_layer(d_lambda)
    assert torch.equal(d_lambda.eval()(x), torch.zeros(4))  # SN's W / sigma would have kept it non-zero
    assert d_lambda.spec["plain_last_layer"] and "plain_last_layer" not in d_phi.spec
    assert torch.equal(d_phi(x), before)  # the original's parametrized class is left intact


def test_corrector_checkpoint_resumes_bit_identical(tmp_path):
    def run(steps, checkpoint):
        torch.manual_seed(0)
        d_phi = SNDCGANDiscriminator(ch=8)
        corrected = CorrectedLogit(d_phi, copy.deepcopy(d_phi))
        stats = train_corrector(corrected, lambda z: torch.tanh(z.view(-1, 3, 32, 32)),
                                real_batch=lambda n, g: torch.rand(n, 3, 32, 32, generator=g) * 2 - 1,
                                latent_batch=lambda n, g: torch.randn(n, 3 * 32 * 32, generator=g), steps=steps,
                                batch_size=4, lr=1e-3, betas=(0.5, 0.999), rng=torch.Generator().manual_seed(1),
                                progress=False, checkpoint_path=str(checkpoint), fingerprint="same",
                                checkpoint_every=4)
        return corrected.corrector.state_dict(), stats

    straight, _ = run(8, tmp_path / "a.pt")
    run(4, tmp_path / "b.pt")  # "killed" after step 4: its checkpoint is what a rerun finds
    resumed, stats = run(8, tmp_path / "b.pt")
    assert [h["step"] for h in stats["history"]] == [4, 8]  # step 4's entry came from the checkpoint
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


@pytest.fixture(scope="module")
def corrector_run(tmp_path_factory):
    """The finetune stage with the corrector on tiny SN-ResNet-GAN / SN-DCGAN (NS) model files."""
    tmp = tmp_path_factory.mktemp("corrector")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module-scoped: set up before conftest's per-test single-thread fixture
    config = validate(resnet_and_base(arch=TINY_ARCH, density_ratio={"kind": "corrector", "steps": 8,
                                                                     "batch_size": 4, "lr": 1e-3}))
    config["models"]["sn-dcgan-ns"]["arch"].update(TINY_ARCH)
    files = {}
    for model in ("sn-resnet-gan", "sn-dcgan-ns"):
        torch.manual_seed(len(model))
        generator, critic = MODELS[model].build(config["models"][model]["arch"], {"image_size": 32}).values()
        files[model] = str(tmp / f"{model}.pt")
        save_model_file(files[model], generator=generator, critic=critic,
                        latent=MODELS[model].latent(config["models"][model]["arch"]))
    data = write_images(tmp / "data.npz", 32)
    params = finetune_params(config, "cifar10", "sn-resnet-gan", "trained")
    out = tmp / "disc-finetuned.pt"
    finetune.run("cifar10", files["sn-resnet-gan"], data, params, str(out), "cpu", progress=False,
                 base_model_file=files["sn-dcgan-ns"])
    torch.set_num_threads(threads)
    return {"out": out, "files": files, "data": data, "params": params, "tmp": tmp}


def test_corrected_discriminator_round_trip(corrector_run):
    loaded = load_model_file(corrector_run["out"])
    d = loaded["critic"]
    d_phi_file = load_model_file(corrector_run["files"]["sn-dcgan-ns"])["critic"]
    assert isinstance(d, CorrectedLogit) and loaded["meta"]["kind"] == "corrector"
    assert loaded["meta"]["final"]["step"] == 8
    # d_phi is the base model's critic, bit for bit (incl. spectral-norm vectors), frozen and in eval mode
    saved_phi = d.base.state_dict()
    for key, value in d_phi_file.state_dict().items():
        assert torch.equal(saved_phi[key], value), key
    assert not any(p.requires_grad for p in d.base.parameters())
    d.train()
    assert not d.base.training
    d.eval()
    x = torch.rand(6, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        total, phi, lam = d(x), d_phi_file(x), d.corrector(x)
    torch.testing.assert_close(total, phi + lam, rtol=0, atol=1e-6)
    assert lam.abs().mean() > 0  # the correction was trained away from its zero start
    assert d.spec["corrector"]["plain_last_layer"]


def test_zero_corrector_steps_give_d_phi_exactly(corrector_run):
    params = copy.deepcopy(corrector_run["params"])
    params["density_ratio"]["steps"] = 0  # the official SN-ResNet-GAN setting: d_phi alone
    out = corrector_run["tmp"] / "steps0.pt"
    finetune.run("cifar10", corrector_run["files"]["sn-resnet-gan"], corrector_run["data"], params, str(out), "cpu",
                 progress=False, base_model_file=corrector_run["files"]["sn-dcgan-ns"])
    x = torch.rand(5, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(load_model_file(out)["critic"](x),
                           load_model_file(corrector_run["files"]["sn-dcgan-ns"])["critic"](x))


def test_cli_corrector_needs_the_base_model_file(corrector_run, capsys):
    rc = cli_main(["finetune", "--dataset", "cifar10", "--model-file", corrector_run["files"]["sn-resnet-gan"],
                   "--data", corrector_run["data"], "--params", json.dumps(corrector_run["params"]),
                   "--out", str(corrector_run["tmp"] / "x.pt"), "--device", "cpu", "--no-progress"])
    assert rc == 1 and "needs --base-model-file" in capsys.readouterr().err
