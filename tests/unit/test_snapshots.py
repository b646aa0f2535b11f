"""The refine stage's snapshot file: written batch by batch, read back shard by shard, never torn."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from dgflow_bench.snapshots import open_snapshots, write_snapshots


def _batches(rng, sizes, steps):
    return [{s: rng.integers(0, 256, (n, 3, 4, 4), dtype=np.uint8) for s in steps} for n in sizes]


def test_round_trip_in_latent_order(tmp_path):
    rng = np.random.default_rng(0)
    batches = _batches(rng, [4, 4, 3], [0, 5, 10])
    latents = rng.standard_normal((11, 8)).astype(np.float32)
    with write_snapshots(tmp_path / "s.npz") as writer:
        for batch in batches:
            writer.add_batch(batch)
        writer.finish(latents)
    with open_snapshots(tmp_path / "s.npz") as snaps:
        assert snaps.steps == [0, 5, 10] and snaps.batch_sizes == [4, 4, 3] and snaps.n_samples == 11
        np.testing.assert_array_equal(snaps.latents, latents)
        for step in snaps.steps:
            expected = np.concatenate([b[step] for b in batches])
            np.testing.assert_array_equal(snaps.read(step), expected)
            np.testing.assert_array_equal(np.concatenate(list(snaps.batches(step))), expected)
        np.testing.assert_array_equal(snaps.read(10, limit=6), np.concatenate([b[10] for b in batches])[:6])
        with pytest.raises(KeyError, match="kept steps: \\[0, 5, 10\\]"):
            snaps.read(7)
    # members are stored, not compressed: shards can be streamed without inflating whole members
    with zipfile.ZipFile(tmp_path / "s.npz") as archive:
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}


def test_a_failed_writer_leaves_nothing(tmp_path):
    rng = np.random.default_rng(1)
    with pytest.raises(RuntimeError, match="killed"):
        with write_snapshots(tmp_path / "s.npz") as writer:
            writer.add_batch(_batches(rng, [2], [0, 1])[0])
            raise RuntimeError("killed mid-run")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="finish"):
        with write_snapshots(tmp_path / "t.npz") as writer:
            writer.add_batch(_batches(rng, [2], [0, 1])[0])
    assert not (tmp_path / "t.npz").exists()


def test_inconsistent_batches_are_refused(tmp_path):
    rng = np.random.default_rng(2)
    with pytest.raises(ValueError, match="kept steps"):
        with write_snapshots(tmp_path / "s.npz") as writer:
            writer.add_batch(_batches(rng, [2], [0, 1])[0])
            writer.add_batch(_batches(rng, [2], [0, 2])[0])
    with pytest.raises(ValueError, match="latents"):
        with write_snapshots(tmp_path / "s.npz") as writer:
            writer.add_batch(_batches(rng, [2], [0])[0])
            writer.finish(np.zeros((3, 2)))


def _two_seed_file(path, rng):
    with write_snapshots(path) as writer:
        for seed in range(2):
            one = writer.for_seed(seed)
            one.add_batch(_batches(rng, [2], [0, 3])[0])
            one.finish(np.full((2, 4), seed, dtype=np.float32))


def test_the_seed_axis_is_the_files_own_index(tmp_path):
    rng = np.random.default_rng(3)
    _two_seed_file(tmp_path / "s.npz", rng)
    with np.load(tmp_path / "s.npz") as raw:
        np.testing.assert_array_equal(raw["seed_indices"], [0, 1])
    with open_snapshots(tmp_path / "s.npz") as snaps:
        assert snaps.n_seeds == 2 and snaps.for_seed(1).latents[0, 0] == 1
        with pytest.raises(KeyError, match="holds 2"):
            snaps.for_seed(2)
    # a file written before the index (seed 0 unprefixed, r1/ ...) still reads with its seeds
    with zipfile.ZipFile(tmp_path / "s.npz") as src, zipfile.ZipFile(tmp_path / "old.npz", "w") as dst:
        for info in src.infolist():
            if info.filename != "seed_indices.npy":
                dst.writestr(info, src.read(info))
    with open_snapshots(tmp_path / "old.npz") as snaps:
        assert snaps.n_seeds == 2


def test_seeds_must_finish_in_order_one_each(tmp_path):
    rng = np.random.default_rng(4)
    with pytest.raises(ValueError, match="not 0 .. R-1"):
        with write_snapshots(tmp_path / "s.npz") as writer:
            for seed in (0, 2):
                one = writer.for_seed(seed)
                one.add_batch(_batches(rng, [2], [0])[0])
                one.finish(np.zeros((2, 4), dtype=np.float32))
    assert not (tmp_path / "s.npz").exists()
