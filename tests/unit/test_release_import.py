"""Source `dgflow-release`: the DGflow release's v1.0 generators and correctors import exactly.

The files are written here by reference modules that follow clear-nus/DGflow torch_models.py (CNNDecoder and
the old-hook SN-DCGAN discriminator), so their key names are the release's, not copies of our nets' keys;
the imported nets must compute the same functions."""

from __future__ import annotations

import hashlib
import urllib.error

import pytest
import torch
from torch import nn

from dgflow_bench.catalog import SUITES
from dgflow_bench.errors import CheckpointError
from dgflow_bench.models import release_import
from dgflow_bench.models.corrected import upsample_bilinear
from fixtures.release import ReleaseDecoder, write_release

IMPORTER = SUITES["images"].importers["dgflow-release"]


def test_the_release_files_are_named_as_its_configs_load_them():
    assert release_import.release_filenames("cifar10", "ocfgan-gp") == {
        "generator": "OCFGAN_CIFAR.pth", "corrector": "OCFGAN_CIFAR_DRC.pth"}
    assert release_import.release_filenames("stl10-32", "vae")["corrector"] == "VAE_STL_DRC.pth"
    assert release_import.RELEASE_URL == "https://github.com/clear-nus/DGflow/releases/download/v1.0"
    assert release_import.corrector_input_size("stl10-32") == 48
    assert release_import.corrector_input_size("cifar10") is None
    assert IMPORTER.files("cifar10", "vae", {"release_sha256": {"VAE_CIFAR.pth": "AB" * 32}}) == (
        {"generator": "VAE_CIFAR.pth", "corrector": "VAE_CIFAR_DRC.pth"}, {"VAE_CIFAR.pth": "ab" * 32})
    with pytest.raises(ValueError, match="stl10-32"):
        IMPORTER.files("stl10-48", "mmdgan", {})


@pytest.mark.parametrize("dataset, model, z_dim", [("cifar10", "mmdgan", 32), ("stl10-32", "vae", 64)])
def test_import_loads_the_generator_exactly_and_checks_the_corrector(tmp_path, dataset, model, z_dim):
    reference, _ = write_release(tmp_path, dataset, model, z_dim)
    imported = IMPORTER.load(dataset, model, {"local_dir": str(tmp_path)}, tmp_path / "download")
    assert imported.critic is None and imported.latent == {"prior": "normal", "dim": z_dim}
    assert set(imported.files) == {"generator", "corrector"}
    for role, name in release_import.release_filenames(dataset, model).items():
        record = imported.files[role]
        assert record["sha256"] == hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
        assert record["file"] == str(tmp_path / name) and not record["sha256_checked"]
    generator = imported.generator
    assert not generator.training and generator.spec["z_dim"] == z_dim
    z = torch.randn(5, z_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = generator(z)
        assert ours.shape == (5, 3, 32, 32)  # 32 px on STL10 too: the release saves samples with resize=False
        torch.testing.assert_close(ours, reference.eval()(z, resize=False), rtol=0, atol=1e-6)
        if dataset == "stl10-32":  # what the release's 48 px discriminators read
            torch.testing.assert_close(upsample_bilinear(48)(ours), reference(z), rtol=0, atol=1e-6)
        # dgflow.py never calls .eval(): BatchNorm on batch statistics must agree as well
        torch.testing.assert_close(generator.train()(z), reference.train()(z, resize=False), rtol=0, atol=1e-6)


@pytest.mark.parametrize("dataset", ["cifar10", "stl10-32"])
def test_the_corrector_is_the_same_function_as_the_old_spectral_norm_module(tmp_path, dataset):
    _, reference = write_release(tmp_path, dataset, "ocfgan-gp")
    ours = release_import.load_release_corrector({"local_dir": str(tmp_path)}, dataset, "ocfgan-gp")
    assert not ours.training and ours.spec["spectral_norm"] and ours.image_size == (48 if dataset == "stl10-32" else 32)
    x = torch.rand(4, 3, ours.image_size, ours.image_size, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with torch.no_grad():  # eval mode: both divide by u . W v of the stored u, v, no power iteration
        torch.testing.assert_close(ours(x), reference.eval()(x).squeeze(1), rtol=1e-5, atol=1e-6)


def test_a_corrector_of_the_other_dataset_is_named(tmp_path):
    write_release(tmp_path, "cifar10", "mmdgan")
    (tmp_path / "MMDGAN_CIFAR_DRC.pth").rename(tmp_path / "MMDGAN_STL_DRC.pth")
    with pytest.raises(CheckpointError, match="reads 32 px images.*stl10-32 reads 48 px"):
        release_import.load_release_corrector(tmp_path / "MMDGAN_STL_DRC.pth", "stl10-32", "mmdgan")


def test_a_foreign_generator_fails_naming_the_file_and_the_keys(tmp_path):
    reference, _ = write_release(tmp_path, "cifar10", "vae", z_dim=64)
    state = reference.state_dict()
    state["main.pyramid-256-128-convt.weight"] = state["main.pyramid-256-128-convt.weight"][:, :100]
    state["main.extra.weight"] = state.pop("main.final-64-3-convt.weight")
    torch.save(state, tmp_path / "VAE_CIFAR.pth")
    with pytest.raises(CheckpointError) as err:
        IMPORTER.load("cifar10", "vae", {"local_dir": str(tmp_path)}, tmp_path)
    message = str(err.value)
    assert "VAE_CIFAR.pth" in message and "missing main.final-64-3-convt.weight" in message
    assert "unexpected main.extra.weight" in message and "(256, 100, 4, 4)" in message
    torch.save(ReleaseDecoder(32, nn.Tanh()), tmp_path / "VAE_CIFAR.pth")  # a whole pickled module
    with pytest.raises(CheckpointError, match="weights_only=True"):
        IMPORTER.load("cifar10", "vae", {"local_dir": str(tmp_path)}, tmp_path)


def test_sha256_from_the_config_is_checked(tmp_path):
    write_release(tmp_path)
    good = hashlib.sha256((tmp_path / "MMDGAN_CIFAR.pth").read_bytes()).hexdigest()
    imported = IMPORTER.load("cifar10", "mmdgan", {"local_dir": str(tmp_path),
                                                   "release_sha256": {"MMDGAN_CIFAR.pth": good.upper()}}, tmp_path)
    assert imported.files["generator"]["sha256_checked"] and imported.files["generator"]["sha256"] == good
    with pytest.raises(CheckpointError, match=r"SHA-256.*sources\.dgflow-release\.release_sha256"):
        IMPORTER.load("cifar10", "mmdgan", {"local_dir": str(tmp_path),
                                            "release_sha256": {"MMDGAN_CIFAR_DRC.pth": "0" * 64}}, tmp_path)


def test_a_missing_file_names_the_folder_and_the_key(tmp_path):
    write_release(tmp_path)
    (tmp_path / "MMDGAN_CIFAR_DRC.pth").unlink()
    with pytest.raises(CheckpointError, match=rf"{tmp_path}.*lacks MMDGAN_CIFAR_DRC\.pth.*"
                                              r"sources\.dgflow-release\.local_dir"):
        IMPORTER.load("cifar10", "mmdgan", {"local_dir": str(tmp_path)}, tmp_path / "download")
    assert not (tmp_path / "download").exists(), "a local_dir is never downloaded into or around"


def test_without_local_dir_the_files_are_downloaded_from_the_release(tmp_path, monkeypatch):
    server = tmp_path / "server"
    server.mkdir()
    write_release(server, "cifar10", "vae", z_dim=64)
    asked = []

    def fake_fetch(url, dest, timeout=60.0):
        asked.append(url)
        if "offline" in url:
            raise urllib.error.URLError("no route")
        dest.parent.mkdir(parents=True, exist_ok=True)  # as io.download's atomic_path does
        dest.write_bytes((server / url.rsplit("/", 1)[1]).read_bytes())
        return dest

    monkeypatch.setattr("dgflow_bench.models.checkpoint_downloads.fetch", fake_fetch)
    imported = IMPORTER.load("cifar10", "vae", {"local_dir": None}, tmp_path / "cache")
    assert asked == [f"{release_import.RELEASE_URL}/VAE_CIFAR.pth", f"{release_import.RELEASE_URL}/VAE_CIFAR_DRC.pth"]
    assert imported.files["generator"]["file"] == str(tmp_path / "cache" / "VAE_CIFAR.pth")
    IMPORTER.load("cifar10", "vae", {}, tmp_path / "cache")
    assert len(asked) == 2, "a cached copy is not downloaded again"
    with pytest.raises(CheckpointError, match=r"could not download .*sources\.dgflow-release\.local_dir"):
        IMPORTER.load("cifar10", "vae", {"release_url": "https://offline.example"}, tmp_path / "other")


@pytest.mark.parametrize("model, message", [("glow", "no Glow weights.*source: trained"),
                                            ("sn-dcgan-hinge", "only for.*use source 'trained'")])
def test_models_the_release_lacks_are_named(tmp_path, model, message):
    with pytest.raises(CheckpointError, match=message):
        IMPORTER.load("cifar10", model, {"local_dir": str(tmp_path)}, tmp_path)
    with pytest.raises(ValueError, match=message):
        IMPORTER.files("cifar10", model, {})


def test_the_config_accepts_the_source():
    from dgflow_bench.config import validate

    config = validate({"datasets": {"cifar10": {}},
                       "models": {"mmdgan": {"datasets": ["cifar10"], "sources": ["dgflow-release"]},
                                  "sn-dcgan-ns": {"datasets": ["cifar10"]}},
                       "methods": {"a": {"kind": "base"}},
                       "sources": {"dgflow-release": {"local_dir": "/ckpt"}}})
    assert config["sources"]["dgflow-release"] == {
        "local_dir": "/ckpt", "release_url": release_import.RELEASE_URL, "release_sha256": {}}


def test_the_import_stage_writes_a_model_file_that_reloads(tmp_path):
    from dgflow_bench.models.store import load_model_file
    from dgflow_bench.stages import import_checkpoint

    reference, _ = write_release(tmp_path, "cifar10", "ocfgan-gp")
    out = tmp_path / "models" / "cifar10_ocfgan-gp_dgflow-release.pt"
    import_checkpoint.run("cifar10", "ocfgan-gp", "dgflow-release", {"local_dir": str(tmp_path)}, str(out))
    loaded = load_model_file(out)
    assert "critic" not in loaded and loaded["latent"] == {"prior": "normal", "dim": 32}
    assert loaded["meta"]["files"]["corrector"]["file"] == str(tmp_path / "OCFGAN_CIFAR_DRC.pth")
    z = torch.randn(3, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded["generator"](z), reference.eval()(z), rtol=0, atol=1e-6)


def _finetune_release_model(tmp_path, use_published: bool):
    """The VAE imported from the release, its corrector stage run against a d_phi model file of 32 px."""
    from dgflow_bench.data.images import prepare_image_dataset
    from dgflow_bench.models.dcgan import SNDCGANDiscriminator
    from dgflow_bench.models.store import load_model_file, save_model_file
    from dgflow_bench.stages import finetune, import_checkpoint
    from fixtures.images import make_cifar

    tmp_path.mkdir(exist_ok=True)
    _, reference = write_release(tmp_path, "cifar10", "vae", z_dim=64)
    model_file = tmp_path / "vae.pt"
    import_checkpoint.run("cifar10", "vae", "dgflow-release", {"local_dir": str(tmp_path)}, str(model_file))
    d_phi_file = tmp_path / "d_phi.pt"
    torch.manual_seed(0)
    save_model_file(d_phi_file, critic=SNDCGANDiscriminator(bottom_width=4, ch=8, spectral_norm=True))
    prepare_image_dataset("cifar10", make_cifar(tmp_path / "cifar").parent, tmp_path / "data.npz", seed=0)
    estimator = {"kind": "corrector", "base_model": "sn-dcgan-ns", "base_source": "dot-pretrained", "steps": 2,
                 "batch_size": 4, "lr": 1e-3, "betas": [0.5, 0.999], "checkpoint_every": 10, "validation_size": 8,
                 "eval_every": 1, "use_published": use_published}
    out = tmp_path / f"disc-{use_published}.pt"
    finetune.run("cifar10", str(model_file), str(tmp_path / "data.npz"), {"density_ratio": estimator, "seed": 0},
                 str(out), "cpu", progress=False, base_model_file=str(d_phi_file), state=str(tmp_path / "state.pt"))
    return load_model_file(out), load_model_file(d_phi_file)["critic"], reference.eval()


def test_an_imported_model_is_corrected_by_its_published_corrector(tmp_path):
    loaded, d_phi, reference = _finetune_release_model(tmp_path, use_published=True)
    d = loaded["critic"]
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():  # d = d_phi + the release's corrector, unchanged by the (zero-step) stage
        torch.testing.assert_close(d(x), d_phi(x).reshape(-1) + reference(x).reshape(-1), rtol=1e-5, atol=1e-5)
    assert loaded["meta"]["published_corrector"]["file"] == str(tmp_path / "VAE_CIFAR_DRC.pth")
    assert [h["step"] for h in loaded["meta"]["history"]] == [0]  # scored on the held-out data, not trained
    # use_published: false trains our own d_lambda (its last layer starts at zero: d starts at d_phi)
    ours = _finetune_release_model(tmp_path / "ours", use_published=False)[0]
    assert "published_corrector" not in ours["meta"] and ours["meta"]["history"][-1]["step"] == 2


def test_a_published_corrector_needs_the_d_phi_it_was_trained_against():
    from dgflow_bench.config import ConfigError, validate

    config = {"datasets": {"cifar10": {}},
              "models": {"vae": {"datasets": ["cifar10"], "sources": ["dgflow-release"]},
                         "sn-dcgan-ns": {"datasets": ["cifar10"], "sources": ["trained", "dot-pretrained"]}},
              "methods": {"flow": {"kind": "dgflow"}}}
    with pytest.raises(ConfigError, match="base_source: dot-pretrained.*or models.vae.density_ratio.use_published"):
        validate(config)
    config["models"]["vae"]["density_ratio"] = {"kind": "corrector", "base_source": "dot-pretrained"}
    assert validate(config)["models"]["vae"]["density_ratio"]["use_published"] is True
    config["models"]["vae"]["density_ratio"] = {"kind": "corrector", "use_published": False}
    validate(config)
