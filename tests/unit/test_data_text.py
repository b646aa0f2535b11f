"""One Billion Word character data: a small fake corpus in the real folder layout goes through the real code
path (shard discovery, truncation/padding, vocabulary, encoding, seeded split, manifest)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fixtures.text import ACCENTED, LONG, SHORT, make_corpus

from dgflow_bench.data.text import (
    ONE_BILLION_WORD_SHA256,
    ONE_BILLION_WORD_URL,
    PAD,
    TOKEN_UNIT,
    TRAINING_FOLDER,
    TRAINING_SHARDS,
    TextDataError,
    build_vocabulary,
    check_tarball_sha256,
    decode,
    encode,
    find_training_shards,
    prepare_text_dataset,
    read_lines,
    vocabulary_sha256,
)



def test_constants_never_invent_a_hash():
    assert ONE_BILLION_WORD_SHA256 is None
    assert ONE_BILLION_WORD_URL.endswith("1-billion-word-language-modeling-benchmark-r13output.tar.gz")
    assert TRAINING_SHARDS[0] == "news.en-00001-of-00100" and TRAINING_SHARDS[-1] == "news.en-00099-of-00100"
    assert len(TRAINING_SHARDS) == 99


def test_find_shards_from_extracted_folder_or_its_parent(tmp_path):
    extracted = make_corpus(tmp_path)
    for root in (extracted, tmp_path):
        paths = find_training_shards(root)
        assert [p.name for p in paths] == list(TRAINING_SHARDS)
        assert paths[0].parent.name == TRAINING_FOLDER


def test_missing_folder_error_names_folder_and_url(tmp_path):
    with pytest.raises(TextDataError) as info:
        find_training_shards(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value)
    assert TRAINING_FOLDER in str(info.value) and ONE_BILLION_WORD_URL in str(info.value)


def test_missing_shard_error(tmp_path):
    extracted = make_corpus(tmp_path)
    (extracted / TRAINING_FOLDER / TRAINING_SHARDS[41]).unlink()
    with pytest.raises(TextDataError, match="news.en-00042-of-00100"):
        find_training_shards(tmp_path)


def test_read_lines_truncates_pads_and_crosses_shards(tmp_path):
    paths = find_training_shards(make_corpus(tmp_path, lines_per_shard=2))
    lines = read_lines(paths, max_lines=9)
    assert len(lines) == 9 and all(len(line) == 32 for line in lines)
    assert lines[0] == SHORT + PAD * (32 - len(SHORT))
    assert lines[1] == LONG[:32]
    assert lines[2] == ACCENTED + PAD  # code points, not bytes: 31 characters + 1 pad
    assert lines[5].startswith("shard 2 line 0 .")  # shard 1 had 5 lines; the 6th comes from shard 2
    assert lines[8].startswith("shard 3 line 1 .")
    assert read_lines(paths, max_lines=3, seq_len=8, pad="#")[0] == "Hello wo"


def test_vocabulary_order_unk_and_padding():
    lines = ["aab`", "bbc`", "ca``"]  # a: 3, b: 3, c: 2, `: 4
    assert build_vocabulary(lines, size=10) == ["unk", "`", "a", "b", "c"]  # count desc, ties by code point
    assert build_vocabulary(lines, size=3) == ["unk", "`", "a"]
    # The padding character is kept even when it is rare (or absent).
    assert build_vocabulary(["aaaa", "bbbb", "ccc`"], size=3) == ["unk", "a", "`"]
    assert build_vocabulary(["abcd"], size=3) == ["unk", "a", "`"]


def test_encode_decode_round_trip_and_unk():
    vocab = ["unk", "`", "a", "b", "é"]
    tokens = encode(["ab``", "éa`b"], vocab, seq_len=4)
    assert tokens.dtype == np.uint16 and tokens.shape == (2, 4)
    np.testing.assert_array_equal(tokens, [[2, 3, 1, 1], [4, 2, 1, 3]])
    assert decode(tokens, vocab) == ["ab``", "éa`b"]
    # Characters outside the vocabulary become id 0, written back as 'unk'.
    np.testing.assert_array_equal(encode(["axz`"], vocab, seq_len=4), [[2, 0, 0, 1]])
    assert decode(encode(["axz`"], vocab, seq_len=4), vocab) == ["aunkunk`"]
    with pytest.raises(ValueError, match="4 characters"):
        encode(["ab"], vocab, seq_len=4)


def test_non_ascii_characters_are_code_points(tmp_path):
    paths = find_training_shards(make_corpus(tmp_path, extra=["€" * 40, "日本語のテキスト"]))
    lines = read_lines(paths, max_lines=5)
    assert lines[3] == "€" * 32  # 32 code points (96 UTF-8 bytes)
    assert lines[4] == "日本語のテキスト" + PAD * 24
    vocab = build_vocabulary(lines)
    for ch in "€日本語éç":
        assert ch in vocab
    assert vocab.index("€") == 2  # 32 euros: second only to the padding
    assert decode(encode(lines, vocab), vocab) == lines


def test_prepare_dataset_split_manifest_and_determinism(tmp_path):
    make_corpus(tmp_path, lines_per_shard=3)
    out = tmp_path / "out" / "text.npz"
    manifest = prepare_text_dataset(tmp_path, out, max_lines=40, heldout_lines=10, seed=7)
    with np.load(out, allow_pickle=False) as z:
        train, heldout, vocab = z["train"], z["heldout"], list(z["vocab"])
        assert json.loads(str(z["manifest"])) == manifest
    assert train.shape == (30, 32) and heldout.shape == (10, 32) and train.dtype == np.uint16
    assert vocab[0] == "unk" and PAD in vocab
    assert manifest["token_unit"] == TOKEN_UNIT == "unicode-code-point"
    assert manifest["vocab_sha256"] == vocabulary_sha256(vocab)
    assert manifest["source_sha256"] is None
    # 40 lines = 6 (shard 1) + 11 × 3 (shards 2..12) + 1 (shard 13)
    assert [s["name"] for s in manifest["shards"]] == list(TRAINING_SHARDS[:13])
    assert [s["lines"] for s in manifest["shards"]] == [6] + [3] * 11 + [1]
    assert all(len(s["sha256"]) == 64 for s in manifest["shards"])
    assert manifest["lines_read"] == 40 and manifest["seed"] == 7

    # Train + held-out is a permutation of the lines read, in an order fixed by the seed.
    expected = read_lines(find_training_shards(tmp_path), 40)
    together = decode(np.concatenate([train, heldout]), vocab)
    assert sorted(together) == sorted(expected) and together != expected
    perm = np.random.default_rng(7).permutation(40)
    assert together == [expected[i] for i in perm]

    again = tmp_path / "again.npz"
    prepare_text_dataset(tmp_path, again, max_lines=40, heldout_lines=10, seed=7)
    other = tmp_path / "other.npz"
    prepare_text_dataset(tmp_path, other, max_lines=40, heldout_lines=10, seed=8)
    with np.load(out) as a, np.load(again) as b, np.load(other) as c:
        np.testing.assert_array_equal(a["heldout"], b["heldout"])
        np.testing.assert_array_equal(a["train"], b["train"])
        assert not np.array_equal(a["heldout"], c["heldout"])
    assert not list((tmp_path / "out").glob(".*.tmp"))  # atomic write left no temporary file


def test_prepare_rejects_bad_heldout(tmp_path):
    make_corpus(tmp_path, lines_per_shard=1)
    with pytest.raises(ValueError, match="heldout_lines"):
        prepare_text_dataset(tmp_path, tmp_path / "x.npz", max_lines=10, heldout_lines=10)
    assert not (tmp_path / "x.npz").exists()


def test_tarball_hash_is_recorded_or_checked(tmp_path):
    tarball = tmp_path / "fake.tar.gz"
    tarball.write_bytes(b"not really a tarball")
    seen = check_tarball_sha256(tarball)  # no trusted hash: return what was seen
    assert len(seen) == 64
    assert check_tarball_sha256(tarball, seen.upper()) == seen
    with pytest.raises(ValueError, match="expected"):
        check_tarball_sha256(tarball, "0" * 64)


def test_prepared_dataset_feeds_js_n(tmp_path):
    """The pieces fit: held-out lines against train lines through a cached reference keyed by the manifest."""
    from dgflow_bench.metrics.ngram_js import load_or_build_reference

    make_corpus(tmp_path, lines_per_shard=2)
    manifest = prepare_text_dataset(tmp_path, tmp_path / "t.npz", max_lines=60, heldout_lines=20, seed=0)
    with np.load(tmp_path / "t.npz") as z:
        train, heldout, vocab_size = z["train"], z["heldout"], len(z["vocab"])
    ref = load_or_build_reference(tmp_path / "cache", train, 4, vocab_size, name="1bw-train",
                                  vocab_sha256=manifest["vocab_sha256"], token_unit=manifest["token_unit"])
    assert 0.0 < ref.js(heldout) < 1.0
    assert ref.metric_name(len(heldout)) == "js4_20lines_1bw-train"
