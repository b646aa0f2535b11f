"""The `dot-pretrained` source of the image DCGANs, and the STL10 32 px dataset.

DOT's image checkpoints cannot be downloaded here (nor anywhere public), so the tests write npz files in
Chainer's key layout from torch DCGANs with known random weights, under DOT's file names, and check that the
import stage reproduces the original nets' outputs, records the files' hashes, and explains every missing or
wrong file. One tiny Snakemake run refines an imported SN-DCGAN end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from dgflow_bench.config import validate
from dgflow_bench.data.images import bilinear_uint8
from dgflow_bench.io import config_path_for, sha256_file
from dgflow_bench.models.chainer_dcgan import GENERATOR_BATCHNORMS, SN_DISCRIMINATOR_LINKS, WGAN_TO_SN_NAMES
from dgflow_bench.models.chainer_npz import CheckpointError
from dgflow_bench.models.dcgan import DCGANGenerator, SNDCGANDiscriminator, set_exact_spectral_norm
from dgflow_bench.models.store import load_model_file
from dgflow_bench.catalog import DATASETS
from dgflow_bench.stages import import_checkpoint
from fixtures.images import N_STL, make_cifar, make_stl, stl_images
from fixtures.workflow import snakemake, write_config

CH = 16  # narrow nets; the importer reads z_dim, ch and bottom width from the files' shapes
DOT_NAMES = {  # (model, dataset) -> DOT's train_GAN.py names at DGflow's iteration
    ("sn-dcgan-hinge", "cifar10"): "DCGAN_{}_CIFAR_SNGAN_Hinge_150001.npz",
    ("sn-dcgan-ns", "stl10-48"): "DCGAN_{}_STL48_SNGAN_NonSaturating_150001.npz",
    ("wgan-gp-dcgan", "cifar10"): "DCGAN_{}_CIFAR_WGAN-GP_Wasserstein_150001.npz",
    ("wgan-gp-dcgan", "stl10-48"): "DCGAN_{}_STL48_WGAN-GP_Wasserstein_150001.npz",
}


def randomised(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every parameter and BN statistic drawn at random, so that a wrongly mapped key changes the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in [*net.named_parameters(), *net.named_buffers()]:
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) * 2 + 0.2)
            elif name.endswith("num_batches_tracked"):
                t.fill_(777)
            elif t.is_floating_point():
                t.copy_(torch.randn(t.shape, generator=g) * (0.2 if "weight" in name else 0.1))
    return net.eval()


def save_chainer_generator(G: DCGANGenerator, path) -> None:
    """chainer serializers.save_npz's keys for chainer-gan-lib's DCGANGenerator."""
    arrays = {}
    for link in ("l0", "dc1", "dc2", "dc3", "dc4"):
        arrays[f"{link}/W"], arrays[f"{link}/b"] = getattr(G, link).weight, getattr(G, link).bias
    for link in GENERATOR_BATCHNORMS:
        bn = getattr(G, link)
        arrays.update({f"{link}/gamma": bn.weight, f"{link}/beta": bn.bias, f"{link}/avg_mean": bn.running_mean,
                       f"{link}/avg_var": bn.running_var, f"{link}/N": bn.num_batches_tracked})
    np.savez(path, **{k: v.detach().numpy() for k, v in arrays.items()})


def save_chainer_discriminator(D: SNDCGANDiscriminator, path) -> None:
    """SNDCGANDiscriminator keys (raw W plus the persistent ``u``) or WGANDiscriminator keys (no SN)."""
    arrays = {}
    if D.spec["spectral_norm"]:
        for link in SN_DISCRIMINATOR_LINKS:
            layer = getattr(D, link)
            arrays[f"{link}/W"] = layer.parametrizations.weight.original
            arrays[f"{link}/u"] = layer.parametrizations.weight[0]._u[None]
            arrays[f"{link}/b"] = layer.bias
    else:
        for chainer_name, attr in WGAN_TO_SN_NAMES.items():
            arrays[f"{chainer_name}/W"], arrays[f"{chainer_name}/b"] = getattr(D, attr).weight, getattr(D, attr).bias
    np.savez(path, **{k: v.detach().numpy() for k, v in arrays.items()})


def write_dot_files(folder, model: str, dataset: str, seed: int = 0) -> tuple[DCGANGenerator, SNDCGANDiscriminator]:
    """DOT's G and D files for (model, dataset) in ``folder``; returns the torch nets they hold."""
    bw = {"cifar10": 4, "stl10-48": 6}[dataset]
    G = randomised(DCGANGenerator(z_dim=128, bottom_width=bw, ch=CH), seed)
    D = randomised(SNDCGANDiscriminator(bottom_width=bw, ch=CH, spectral_norm=model != "wgan-gp-dcgan"), seed + 1)
    folder.mkdir(parents=True, exist_ok=True)
    name = DOT_NAMES[(model, dataset)]
    save_chainer_generator(G, folder / name.format("G"))
    save_chainer_discriminator(D, folder / name.format("D"))
    return G, D


def source_params(**overrides) -> dict:
    """The schema's defaults of sources.dot-pretrained, with ``overrides``."""
    config = validate({"datasets": {"cifar10": {}}, "models": {"sn-dcgan-hinge": {"datasets": ["cifar10"]}},
                       "sources": {"dot-pretrained": overrides}, "methods": {"base": {"kind": "base"}}})
    return config["sources"]["dot-pretrained"]


@pytest.mark.parametrize("model, dataset", sorted(DOT_NAMES))
def test_import_reproduces_the_original_nets(tmp_path, model, dataset):
    G, D = write_dot_files(tmp_path / "dot", model, dataset)
    out = tmp_path / "run" / "model.pt"
    import_checkpoint.run(dataset, model, "dot-pretrained", source_params(local_dir=str(tmp_path / "dot")), str(out))

    loaded = load_model_file(out)
    assert loaded["latent"] == {"prior": "normal", "dim": 128}
    z = torch.randn(5, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        x = G(z)
        torch.testing.assert_close(loaded["generator"](z), x, rtol=0, atol=1e-6)
        if D.spec["spectral_norm"]:
            set_exact_spectral_norm(D)  # the importer divides by the exact sigma of Chainer's raw W
        torch.testing.assert_close(loaded["critic"](x), D(x), rtol=1e-5, atol=1e-5)
    assert loaded["critic"].spec["spectral_norm"] == (model != "wgan-gp-dcgan")
    assert loaded["generator"].image_size == {"cifar10": 32, "stl10-48": 48}[dataset]

    # no SHA-256 is published: the hash seen is recorded, and said to be unchecked
    resolved = json.loads(config_path_for(out).read_text())
    for role, kind in (("generator", "G"), ("critic", "D")):
        path = tmp_path / "dot" / DOT_NAMES[(model, dataset)].format(kind)
        assert resolved["files"][role] == {"file": str(path), "sha256": sha256_file(path), "sha256_checked": False}


def test_configured_sha256_and_prior_are_used(tmp_path):
    write_dot_files(tmp_path / "dot", "sn-dcgan-hinge", "cifar10")
    g_name = DOT_NAMES[("sn-dcgan-hinge", "cifar10")].format("G")
    good = sha256_file(tmp_path / "dot" / g_name)
    params = source_params(local_dir=str(tmp_path / "dot"), image_sha256={g_name: good},
                           image_latent_prior="uniform")
    out = tmp_path / "model.pt"
    import_checkpoint.run("cifar10", "sn-dcgan-hinge", "dot-pretrained", params, str(out))
    assert load_model_file(out)["latent"] == {"prior": "uniform", "dim": 128}
    files = json.loads(config_path_for(out).read_text())["files"]
    assert files["generator"]["sha256_checked"] and not files["critic"]["sha256_checked"]

    params["image_sha256"] = {g_name: "0" * 64}
    with pytest.raises(CheckpointError, match=rf"{g_name} has SHA-256 {good}.*sources\.dot-pretrained\.image_sha256"):
        import_checkpoint.run("cifar10", "sn-dcgan-hinge", "dot-pretrained", params, str(tmp_path / "again.pt"))


def test_missing_file_names_folder_file_key_and_where_to_get_it(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError) as err:
        import_checkpoint.run("stl10-48", "sn-dcgan-ns", "dot-pretrained",
                              source_params(local_dir=str(tmp_path / "empty")), str(tmp_path / "model.pt"))
    msg = str(err.value)
    for needle in (str(tmp_path / "empty"), "DCGAN_G_STL48_SNGAN_NonSaturating_150001.npz",
                   "sources.dot-pretrained.local_dir", "github.com/AkinoriTanaka-phys/DOT", "train_GAN.py"):
        assert needle in msg
    assert not (tmp_path / "model.pt").exists()

    with pytest.raises(CheckpointError, match=r"sources\.dot-pretrained\.local_dir.*train_GAN\.py"):
        import_checkpoint.run("cifar10", "sn-dcgan-ns", "dot-pretrained", source_params(), str(tmp_path / "m.pt"))


def test_file_name_pattern_and_iteration_come_from_the_config(tmp_path):
    G, _ = write_dot_files(tmp_path / "dot", "wgan-gp-dcgan", "cifar10")
    for kind in "GD":
        old = tmp_path / "dot" / DOT_NAMES[("wgan-gp-dcgan", "cifar10")].format(kind)
        old.rename(tmp_path / "dot" / f"{kind}-{old.name.split('_')[3]}-CIFAR-it90000.npz")
    params = source_params(local_dir=str(tmp_path / "dot"), image_files="<role>-<mode>-<data>-it<iteration>.npz",
                           image_iteration=90000)
    import_checkpoint.run("cifar10", "wgan-gp-dcgan", "dot-pretrained", params, str(tmp_path / "model.pt"))
    with torch.no_grad():
        z = torch.randn(3, 128)
        torch.testing.assert_close(load_model_file(tmp_path / "model.pt")["generator"](z), G(z), rtol=0, atol=1e-6)

    params["image_files"] = "<role>_<epoch>.npz"
    with pytest.raises(CheckpointError, match=r"sources\.dot-pretrained\.image_files.*unknown.*epoch.*<iteration>"):
        import_checkpoint.run("cifar10", "wgan-gp-dcgan", "dot-pretrained", params, str(tmp_path / "m.pt"))


def test_files_of_another_model_or_dataset_are_refused(tmp_path):
    write_dot_files(tmp_path / "dot", "wgan-gp-dcgan", "cifar10")
    # an SN-DCGAN config pointed at the WGAN-GP files (the pattern ignores mode and objective)
    params = source_params(local_dir=str(tmp_path / "dot"),
                           image_files="DCGAN_<role>_<data>_WGAN-GP_Wasserstein_<iteration>.npz")
    with pytest.raises(CheckpointError, match="WGAN-GP critic.*not sn-dcgan-hinge's"):
        import_checkpoint.run("cifar10", "sn-dcgan-hinge", "dot-pretrained", params, str(tmp_path / "m.pt"))
    write_dot_files(tmp_path / "dot48", "wgan-gp-dcgan", "stl10-48")
    params = source_params(local_dir=str(tmp_path / "dot48"),
                           image_files="DCGAN_<role>_STL48_<mode>_<objective>_<iteration>.npz")
    with pytest.raises(CheckpointError, match="48 px images, but cifar10 is 32 px"):
        import_checkpoint.run("cifar10", "wgan-gp-dcgan", "dot-pretrained", params, str(tmp_path / "m.pt"))
    with pytest.raises(CheckpointError, match=r"not on 'stl10-32'.*source 'trained'"):
        import_checkpoint.run("stl10-32", "sn-dcgan-hinge", "dot-pretrained", params, str(tmp_path / "m.pt"))


def test_mirror_download_is_checked_and_cached(tmp_path):
    """image_url: any base URL urllib opens (a file:// mirror here); the SHA-256 is checked where configured."""
    G, _ = write_dot_files(tmp_path / "mirror", "sn-dcgan-hinge", "cifar10")
    d_name = DOT_NAMES[("sn-dcgan-hinge", "cifar10")].format("D")
    params = source_params(image_url=(tmp_path / "mirror").as_uri(),
                           image_sha256={d_name: sha256_file(tmp_path / "mirror" / d_name)})
    out = tmp_path / "run" / "model.pt"
    import_checkpoint.run("cifar10", "sn-dcgan-hinge", "dot-pretrained", params, str(out))
    assert (tmp_path / "run" / "download" / d_name).is_file()
    files = json.loads(config_path_for(out).read_text())["files"]
    assert files["critic"]["sha256_checked"] and files["critic"]["file"] == str(tmp_path / "run/download" / d_name)

    params["image_sha256"] = {d_name: "F" * 64}  # upper case is accepted
    with pytest.raises(CheckpointError, match=r"SHA-256.*expected f{64}.*sources\.dot-pretrained\.image_sha256"):
        import_checkpoint.run("cifar10", "sn-dcgan-hinge", "dot-pretrained", params, str(tmp_path / "x" / "m.pt"))
    assert not (tmp_path / "x" / "download" / d_name).exists(), "a file failing its hash must not stay"


def test_stl10_32_dataset_through_the_registry(tmp_path):
    images = stl_images()
    make_stl(tmp_path, images)
    config = validate({"datasets": {"stl10-32": {"root": str(tmp_path), "heldout_size": 4}},
                       "models": {"sn-dcgan-hinge": {"datasets": ["stl10-32"]}}, "methods": {"base": {"kind": "base"}}})
    out = tmp_path / "data" / "stl10-32.npz"
    manifest = DATASETS["stl10-32"].write(config["datasets"]["stl10-32"], 3, str(out))
    assert manifest["dataset"] == "stl10-32" and manifest["resolution"] == 32 and manifest["n_train"] == N_STL
    assert manifest["resize"].startswith("bilinear")
    with np.load(out) as data:
        np.testing.assert_array_equal(data["train"], bilinear_uint8(images, 32))
        assert data["heldout"].shape == (4, 3, 32, 32)

    # the FID references: 'clean' reads the stored 32 px array under its own dataset name (48 px is another
    # reference); 'dgflow-legacy' resizes the 96 px originals bilinearly, as docs/method.md §5 says
    from dgflow_bench.metrics.image_references import reference_images

    clean = reference_images(str(out), "clean", "train")
    assert (clean.dataset, clean.split, clean.n_images, clean.resolution) == ("stl10-32", "unlabeled", N_STL, 32)
    legacy = reference_images(str(out), "dgflow-legacy", "train")
    assert (legacy.dataset, legacy.resolution, legacy.resize, legacy.n_images) == ("stl10", 32, "bilinear", N_STL)


@pytest.mark.workflow
def test_dot_pretrained_image_pipeline_end_to_end(tmp_path):
    make_cifar(tmp_path / "cifar")
    write_dot_files(tmp_path / "dot", "sn-dcgan-hinge", "cifar10")
    workdir = tmp_path / "run"
    write_config(workdir, {
        "seed": 5, "device": "cpu",
        "datasets": {"cifar10": {"root": str(tmp_path / "cifar")}},
        "models": {"sn-dcgan-hinge": {"datasets": ["cifar10"], "sources": ["dot-pretrained"]}},
        "sources": {"dot-pretrained": {"local_dir": str(tmp_path / "dot")}},
        "finetune": {"steps": 3, "batch_size": 8},
        "refine": {"n_samples": 16, "batch_size": 16, "seed": 3},
        "methods": {"base": {"kind": "base"}, "dgflow-kl": {"kind": "dgflow", "steps": 2, "snapshot_every": 2}},
        "evaluate": {"inception_weights": None, "is_splits": 2, "feature_batch_size": 16},
    })
    proc = snakemake(workdir)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert not (workdir / "results/models/cifar10/sn-dcgan-hinge/trained").exists()
    model_dir = workdir / "results/models/cifar10/sn-dcgan-hinge/dot-pretrained"
    assert load_model_file(model_dir / "model.pt")["generator"].spec["ch"] == CH
    for method in ("base", "dgflow-kl"):
        assert (workdir / f"results/metrics/cifar10/sn-dcgan-hinge/dot-pretrained/{method}.json").is_file()
    table = pd.read_csv(workdir / "results/tables/images_fid.csv")
    assert set(table["source"]) == {"dot-pretrained"} and set(table["model"]) == {"sn-dcgan-hinge"}
