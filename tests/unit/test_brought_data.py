"""Data you bring (suites/brought_data.py): `kind: image-folder` (a PNG / JPEG folder or one .npz) and `kind:
points` (an (N, 2) .npy) declare datasets of the image and 2-D suites. The data file is the same bytes whatever
the file system's order, images are cropped and resized by the stated rules, FID reference statistics are cached
by content (a moved folder hits, a changed pixel misses), every refusal is one sentence naming the key and the
fix, and the points' metrics match a hand computation, with 'n/a' where no mode is known."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from dgflow_bench import config as dg
from dgflow_bench.data.image_folder import write_image_folder_dataset
from dgflow_bench.data.image_readers import avg_pool2_uint8, bilinear_uint8
from dgflow_bench.data.points import write_points_dataset
from dgflow_bench.metrics import images_suite, reference_stats, toy2d_suite
from dgflow_bench.metrics.toy2d import compute_free_points_metrics
from dgflow_bench.preflight import external_input_errors, resolve_paths
from dgflow_bench.report.tables import final_rows, write_tables
from dgflow_bench.stages.evaluate import seed_summary
from fixtures.image_folder import folder_image, write_image_folder

EXAMPLE = REPO / "examples" / "own-data"
IMAGE_DEFAULTS = {"kind": "image-folder", "resolution": None, "resize": "bilinear", "array": None,
                  "float_range": [0, 1], "heldout_size": None, "heldout_in_train": True}
EVALUATE = {"inception_weights": None, "fid_reference": "train", "is_splits": 2, "feature_batch_size": 16,
            "image_protocol": "clean", "pytorch_fid_crosscheck": False}


@pytest.fixture(autouse=True)
def _forget_declared():
    """The entries a test's config declares leave with it: a later test's schema (and the generated
    configuration reference) must not see them."""
    yield
    from dgflow_bench import catalog

    for name in ("my-images", "my-points"):
        catalog.DATASETS.unregister(name)
        catalog._declared.pop(("datasets", name), None)


def _images(folder, out, **block) -> dict:
    return write_image_folder_dataset("my-images", {**IMAGE_DEFAULTS, "path": str(folder), **block}, 7, str(out))


def _example_config(tmp_path) -> dict:
    """examples/own-data/config.yaml beside the data its make_example_data.py writes, validated as the
    Snakefile does (paths resolved against the config's folder)."""
    shutil.copy(EXAMPLE / "config.yaml", tmp_path / "config.yaml")
    spec = importlib.util.spec_from_file_location("make_example_data", EXAMPLE / "make_example_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write_images(tmp_path / "images")
    module.write_points(tmp_path / "points.npy")
    raw = dg.load_config_file(tmp_path / "config.yaml")
    return resolve_paths(dg.validate(raw, source="config.yaml"), tmp_path)


# --- the example config -----------------------------------------------------------------------------------------

def test_the_example_config_declares_both_kinds_and_passes_the_plan_time_checks(tmp_path):
    config = _example_config(tmp_path)
    assert config["datasets"]["my-images"] == {**IMAGE_DEFAULTS, "path": str(tmp_path / "images"), "resolution": 32}
    assert config["datasets"]["my-points"] == {"kind": "points", "path": str(tmp_path / "points.npy"),
                                               "heldout_size": None}
    assert {(d, m) for d, m, _ in dg.runs(config)} == {("my-images", "sn-dcgan-hinge"), ("my-points", "wgan-gp")}
    assert external_input_errors(config, tmp_path) == []
    manifest = _images(tmp_path / "images", tmp_path / "images.npz", resolution=32)
    assert (manifest["n_images"], manifest["resolution"], manifest["n_heldout"]) == (100, 32, 10)  # 40x48 -> 32


def test_plan_time_checks_name_the_key_and_import_no_torch(tmp_path):
    """A missing folder stops the plan with a sentence; the check itself (headers only) imports no torch."""
    config = _example_config(tmp_path)
    shutil.rmtree(tmp_path / "images")
    errors = external_input_errors(config, tmp_path)
    assert errors == [f"datasets.my-images.path = {str(tmp_path / 'images')!r}: no such file or folder; point it "
                      "at a folder of PNG / JPEG images or at one .npz file"]
    write_image_folder(tmp_path / "images", 5)
    code = ("import sys; from dgflow_bench import config as dg; from dgflow_bench.preflight import "
            "external_input_errors, resolve_paths\n"
            f"c = resolve_paths(dg.validate(dg.load_config_file({str(tmp_path / 'config.yaml')!r})), {str(tmp_path)!r})\n"
            f"assert external_input_errors(c, {str(tmp_path)!r}) == [], 'checks failed'\n"
            "assert 'torch' not in sys.modules, 'planning imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)


# --- the image folder: deterministic bytes, the crop / resize / colour rules -------------------------------------

def test_the_data_file_is_the_same_bytes_whatever_the_file_system_order(tmp_path):
    write_image_folder(tmp_path / "a", 12)
    (tmp_path / "b").mkdir()
    for i in reversed(range(12)):  # created in the other order: sorted names decide, never the directory listing
        Image.fromarray(folder_image(i)).save(tmp_path / "b" / f"img_{i:05d}.png")
    _images(tmp_path / "a", tmp_path / "a1.npz")
    _images(tmp_path / "a", tmp_path / "a2.npz")
    _images(tmp_path / "b", tmp_path / "b.npz")
    first = (tmp_path / "a1.npz").read_bytes()
    assert (tmp_path / "a2.npz").read_bytes() == first and (tmp_path / "b.npz").read_bytes() == first
    with np.load(tmp_path / "a1.npz", allow_pickle=False) as data:
        assert data["train"].dtype == np.uint8 and data["train"].shape == (12, 3, 32, 32)
        for i in range(12):  # file order, (N, 3, H, W) RGB
            np.testing.assert_array_equal(data["train"][i], folder_image(i).transpose(2, 0, 1))
        idx = data["heldout_indices"]
        assert len(idx) == 2 and list(idx) == sorted(idx)  # max(2, 12 // 10), seeded, sorted
        np.testing.assert_array_equal(data["heldout"], data["train"][idx])
        assert str(tmp_path) not in str(data["manifest"])  # the path is not part of the data's identity


def test_non_square_images_are_centre_cropped_then_resized_by_the_rows_kernels(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (41, 48, 3), dtype=np.uint8)  # h 41, w 48
    (tmp_path / "one").mkdir()
    for name in ("x.png", "y.png", "z.png"):  # three: two are held out
        Image.fromarray(pixels).save(tmp_path / "one" / name)
    crop = pixels[:, 3:44].transpose(2, 0, 1)[None]  # side 41, left offset (48 - 41) // 2 = 3
    _images(tmp_path / "one", tmp_path / "native.npz")
    _images(tmp_path / "one", tmp_path / "small.npz", resolution=16)
    with np.load(tmp_path / "native.npz") as native, np.load(tmp_path / "small.npz") as small:
        np.testing.assert_array_equal(native["train"][0], crop[0])
        np.testing.assert_array_equal(small["train"][:1], bilinear_uint8(crop, 16))
    even = pixels[:40, :44]  # 40 x 44 -> 40 x 40 (left 2) -> avgpool2 -> 20
    (tmp_path / "even").mkdir()
    for name in ("p.png", "q.png", "r.png"):
        Image.fromarray(even).save(tmp_path / "even" / name)
    _images(tmp_path / "even", tmp_path / "pooled.npz", resolution=20, resize="avgpool2")
    with np.load(tmp_path / "pooled.npz") as pooled:
        np.testing.assert_array_equal(pooled["train"][:1], avg_pool2_uint8(even[:, 2:42].transpose(2, 0, 1)[None]))
    with pytest.raises(ValueError, match=r"resize 'avgpool2' halves 32 px images to 16 px, but .*p.png is 40 px "
                                         r"after the centre crop; use resize: bilinear"):
        _images(tmp_path / "even", tmp_path / "bad.npz", resolution=16, resize="avgpool2")


def test_grey_is_replicated_and_alpha_dropped(tmp_path):
    write_image_folder(tmp_path / "grey", 3, mode="L")
    write_image_folder(tmp_path / "rgba", 3, mode="RGBA")
    _images(tmp_path / "grey", tmp_path / "grey.npz")
    _images(tmp_path / "rgba", tmp_path / "rgba.npz")
    with np.load(tmp_path / "grey.npz") as grey, np.load(tmp_path / "rgba.npz") as rgba:
        for channel in range(3):
            np.testing.assert_array_equal(grey["train"][1, channel], folder_image(1, channels=1)[..., 0])
        np.testing.assert_array_equal(rgba["train"][1], folder_image(1, channels=4)[..., :3].transpose(2, 0, 1))


def test_an_npz_array_in_either_layout_uint8_or_float(tmp_path):
    nhwc = np.stack([folder_image(i) for i in range(4)])
    np.savez(tmp_path / "u8.npz", images=nhwc)
    np.savez(tmp_path / "float.npz", x=nhwc.transpose(0, 3, 1, 2) / 127.5 - 1.0, labels=np.arange(4))
    _images(tmp_path / "u8.npz", tmp_path / "u8-data.npz")
    _images(tmp_path / "float.npz", tmp_path / "float-data.npz", array="x", float_range=[-1, 1])
    with np.load(tmp_path / "u8-data.npz") as a, np.load(tmp_path / "float-data.npz") as b:
        np.testing.assert_array_equal(a["train"], nhwc.transpose(0, 3, 1, 2))
        np.testing.assert_array_equal(b["train"], a["train"])  # (x + 1) * 127.5, rounded half to even
    np.savez(tmp_path / "wide.npz", x=nhwc / 100.0)
    with pytest.raises(ValueError, match=r"array 'x' has values in \[0, 2.55\], outside datasets.my-images."
                                         r"float_range \[0, 1\]; set float_range to the range the images use"):
        _images(tmp_path / "wide.npz", tmp_path / "wide-data.npz")
    bad = nhwc / 255.0
    bad[2, 0, 0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", x=bad)
    with pytest.raises(ValueError, match=r"array 'x' holds 1 NaN or infinite values; replace them"):
        _images(tmp_path / "nan.npz", tmp_path / "nan-data.npz")


# --- the FID reference statistics: computed once, cached by content ----------------------------------------------

def test_reference_statistics_hit_for_a_moved_folder_and_miss_for_one_changed_pixel(tmp_path, monkeypatch):
    from dgflow_bench.catalog import declare

    declare({"datasets": {"my-images": {"kind": "image-folder", "path": "unused"}}})
    cache = tmp_path / "cache"
    write_image_folder(tmp_path / "faces", 6)
    _images(tmp_path / "faces", tmp_path / "run1" / "my-images.npz")
    first = images_suite.prepare(str(tmp_path / "run1" / "my-images.npz"), EVALUATE, str(cache))
    assert first["engines"]["main"]["manifest"].n_images == 6
    (key_folder,) = cache.iterdir()

    shutil.move(tmp_path / "faces", tmp_path / "renamed")
    _images(tmp_path / "renamed", tmp_path / "run2" / "my-images.npz")
    computed = []
    real = reference_stats.compute_reference_stats
    monkeypatch.setattr(reference_stats, "compute_reference_stats",
                        lambda *a, **k: computed.append(a) or real(*a, **k))
    second = images_suite.prepare(str(tmp_path / "run2" / "my-images.npz"), EVALUATE, str(cache))
    assert computed == [] and list(cache.iterdir()) == [key_folder]  # a hit: read, not recomputed
    np.testing.assert_array_equal(second["engines"]["main"]["reference"].mu, first["engines"]["main"]["reference"].mu)

    pixels = folder_image(3)
    pixels[5, 7, 1] ^= 1  # one pixel, one channel, one bit
    Image.fromarray(pixels).save(tmp_path / "renamed" / "img_00003.png")
    _images(tmp_path / "renamed", tmp_path / "run3" / "my-images.npz")
    images_suite.prepare(str(tmp_path / "run3" / "my-images.npz"), EVALUATE, str(cache))
    assert len(computed) == 1 and len(list(cache.iterdir())) == 2  # a miss: new statistics beside the old

    with np.load(tmp_path / "run1" / "my-images.npz") as data:
        names = images_suite.compute("my-images", [data["heldout"]], 2, first, EVALUATE)
    assert sorted(names) == ["fid2_my-images-train-ref6_clean_RANDOM-WEIGHTS", "is2_2splits_clean_RANDOM-WEIGHTS"]


# --- refusals: one sentence, naming the key or the file, and the fix ---------------------------------------------

def _check(path, **kw):
    from dgflow_bench.suites.brought_data import _check_images

    _check_images({**IMAGE_DEFAULTS, "path": str(path), **kw}, "datasets.my-images.path")


def test_each_image_refusal_is_one_sentence(tmp_path):
    key = r"datasets\.my-images\.path"
    with pytest.raises(FileNotFoundError, match=rf"{key} = '.*nowhere': no such file or folder; point it at a "
                                                r"folder of PNG / JPEG images or at one .npz file"):
        _check(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=rf"{key} = '.*empty' holds no .png, .jpg or .jpeg file \(sub-folders are "
                                         r"not read\); point it at the folder that holds the images"):
        _check(tmp_path / "empty")
    np.savez(tmp_path / "none.npz")
    with pytest.raises(ValueError, match=rf"{key} = '.*none.npz' holds no array; save the images into it with "
                                         r"numpy.savez\(path, images=array\)"):
        _check(tmp_path / "none.npz")
    np.savez(tmp_path / "objects.npz", images=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(ValueError, match=rf"{key} = '.*objects.npz': array 'images' is an object array \(pickled "
                                         r"Python objects, never loaded\); save the images as a uint8 or float array"):
        _check(tmp_path / "objects.npz")
    np.savez(tmp_path / "flat.npz", images=np.zeros((5, 64), np.uint8))
    with pytest.raises(ValueError, match=rf"{key} = '.*flat.npz': array 'images' has shape \(5, 64\); images must "
                                         r"be \(N, H, W\) grey, \(N, H, W, C\) or \(N, C, H, W\) with C = 1, 3 or 4"):
        _check(tmp_path / "flat.npz")
    np.savez(tmp_path / "two.npz", a=np.zeros((4, 8, 8), np.uint8), b=np.zeros(3))
    with pytest.raises(ValueError, match=rf"{key} = '.*two.npz' holds several arrays \(a, b\); name the one to read "
                                         r"with datasets.my-images.array"):
        _check(tmp_path / "two.npz")
    write_image_folder(tmp_path / "broken", 3)
    (tmp_path / "broken" / "img_00001.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match=rf"{key}: PIL cannot read .*img_00001.png \(.*\); remove that file or save "
                                         r"it again as PNG or JPEG"):
        _check(tmp_path / "broken")
    write_image_folder(tmp_path / "mixed", 3, size=32)
    write_image_folder(tmp_path / "mixed", 1, size=40, start=3)
    with pytest.raises(ValueError, match=rf"{key} = '.*mixed': the images differ in size \(32x32 in img_00000.png, "
                                         r"40x40 in img_00003.png\); set datasets.my-images.resolution to the size to "
                                         r"store them at \(each is centre-cropped to a square, then resized\)"):
        _check(tmp_path / "mixed")
    _check(tmp_path / "mixed", resolution=32)  # with a resolution they are welcome
    write_image_folder(tmp_path / "few", 2)
    with pytest.raises(ValueError, match=r"datasets.my-images.heldout_size: 2 held-out of 2 images; it must be at "
                                         r"least 2 and below 2 \(add images, or set heldout_size\)"):
        _check(tmp_path / "few")


def _points(path, out, heldout_size=None, seed=5) -> dict:
    return write_points_dataset("my-points", {"kind": "points", "path": str(path), "heldout_size": heldout_size},
                                seed, str(out))


def test_each_points_refusal_is_one_sentence(tmp_path):
    key = r"datasets\.my-points\.path"
    np.save(tmp_path / "three.npy", np.zeros((10, 3)))
    with pytest.raises(ValueError, match=rf"{key} = '.*three.npy' holds an array of shape \(10, 3\); the points "
                                         r"must be one \(N, 2\) array, a row per point"):
        _points(tmp_path / "three.npy", tmp_path / "out.npz")
    np.save(tmp_path / "objects.npy", np.array([[1, None]] * 4, dtype=object))
    with pytest.raises(ValueError, match=rf"{key} = '.*objects.npy' holds an object array \(pickled Python "
                                         r"objects, never loaded\); save the points as a float array of shape"):
        _points(tmp_path / "objects.npy", tmp_path / "out.npz")
    bad = np.ones((10, 2))
    bad[[3, 7], 1] = [np.nan, np.inf]
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(ValueError, match=rf"{key} = '.*nan.npy': 2 of 10 rows hold NaN or infinite values "
                                         r"\(first: row 3\); drop or fix those rows"):
        _points(tmp_path / "nan.npy", tmp_path / "out.npz")
    with pytest.raises(FileNotFoundError, match=rf"{key} = '.*gone.npy': no such file; point it at an .npy file"):
        _points(tmp_path / "gone.npy", tmp_path / "out.npz")
    assert not (tmp_path / "out.npz").exists()


# --- the points' metrics ------------------------------------------------------------------------------------------

def test_free_points_metrics_match_a_hand_computation():
    x, y = [[0.0, 0.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]]
    out = compute_free_points_metrics(x, y, kde_bandwidth=1.0, mode_min_share=0.1)
    # KDE (h = 1): log p(y) = log(sum_i exp(-|y - x_i|^2 / 2)) - log 2 - log(2 pi)
    kde = (math.log(1 + math.exp(-0.5)) + math.log(math.exp(-0.5) + math.exp(-1.0))) / 2 - math.log(4 * math.pi)
    # energy (U): 2 E|X - Y| - E|X - X'| - E|Y - Y'| = 2 (0 + 1 + 1 + sqrt 2) / 4 - 1 - 1
    assert out["kde_ll_h1_heldout2"] == pytest.approx(kde, rel=1e-12)
    assert out["energy_u_heldout2"] == pytest.approx(math.sqrt(2) / 2 - 1, rel=1e-12)
    assert out["hq4sigma_pct"].startswith("n/a (") and out["modes_covered_min0.1share"] == \
        "n/a (free points: no known modes)"


def test_the_points_dataset_splits_by_seed_and_evaluates_through_the_suite(tmp_path):
    points = np.array([[0, 0], [1, 0], [0, 1], [2, 2], [3, 1], [1, 3]], dtype=np.float64)
    np.save(tmp_path / "p.npy", points)
    _points(tmp_path / "p.npy", tmp_path / "a.npz", heldout_size=2)
    _points(tmp_path / "p.npy", tmp_path / "b.npz", heldout_size=2)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz") as data:
        idx, train, heldout = data["heldout_indices"], data["train"], data["heldout"]
        assert data["train"].dtype == np.float32 and json.loads(str(data["manifest"]))["kind"] == "points"
    expected = np.sort(np.random.default_rng(5).choice(6, 2, replace=False))
    np.testing.assert_array_equal(idx, expected)
    np.testing.assert_array_equal(heldout, points[idx])
    np.testing.assert_array_equal(train, np.delete(points, idx, axis=0))  # disjoint

    params = {"kde_bandwidth": 1.0, "mode_min_share": 0.1}
    prepared = toy2d_suite.prepare(str(tmp_path / "a.npz"), params, "")
    samples = np.array([[0.0, 0.0], [1.0, 0.0]])
    got = toy2d_suite.compute("my-points", [samples], 2, prepared, params)
    assert got == compute_free_points_metrics(samples, heldout, kde_bandwidth=1.0)
    h = sum(math.dist(a, b) for a in heldout for b in heldout) / 2  # E|Y - Y'|, U-statistic (n = 2)
    xy = sum(math.dist(a, b) for a in samples for b in heldout) / 4
    assert got["energy_u_heldout2"] == pytest.approx(2 * xy - 1.0 - h, rel=1e-6)


def test_the_table_shows_n_a_with_the_reason(tmp_path):
    """Two refinement seeds, as the evaluate stage summarises them: the sentence is the cell, numbers keep ±."""
    seeds = [[{"step": 0, "hq4sigma_pct": "n/a (free points: no known clean data to be within 4 sigma of)",
               "energy_u_heldout2": value}] for value in (0.5, 0.7)]
    result = {"dataset": "my-points", "model": "wgan-gp", "source": "trained", "method": "base", "final_step": 0,
              **seed_summary(seeds)}
    write_tables(final_rows(["m.json"], [result]), tmp_path / "t", caption="c",
                 directions={"hq4sigma_pct": "higher", "energy": "lower"}, order=["base"])
    md = (tmp_path / "t.md").read_text()
    cells = [c.strip() for c in md.splitlines()[-1].split("|")]
    assert cells[-3:-1] == ["n/a (free points: no known clean data to be within 4 sigma of)", "0.6 ± 0.14"]
    assert "n/a (free points" in (tmp_path / "t.csv").read_text()
