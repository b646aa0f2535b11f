"""JS-n (docs/method.md §5): exact values by hand, agreement with a plain dictionary-of-tuples implementation of
the definition, and the properties the vectorised code must keep (chunking, line order, caching)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from dgflow_bench.metrics.ngram_js import (
    EXACT_SCHEME,
    HASH_SCHEME,
    ReferenceNgrams,
    code_scheme,
    js_divergence_bits,
    js_n,
    load_or_build_reference,
    metric_name,
    ngram_codes,
    ngram_counts,
    ngram_distribution,
)


def js_by_definition(generated: np.ndarray, reference: np.ndarray, n: int) -> float:
    """The definition, written as plainly as possible: n-gram tuples counted in dictionaries."""

    def distribution(lines):
        counts = Counter(tuple(line[i:i + n]) for line in lines.tolist() for i in range(len(line) - n + 1))
        total = sum(counts.values())
        return {gram: c / total for gram, c in counts.items()}

    P, Q = distribution(generated), distribution(reference)
    M = {g: (P.get(g, 0.0) + Q.get(g, 0.0)) / 2 for g in set(P) | set(Q)}
    nats = 0.5 * sum(p * (math.log(p) - math.log(M[g])) for g, p in P.items()) \
        + 0.5 * sum(q * (math.log(q) - math.log(M[g])) for g, q in Q.items())
    return nats / math.log(2)


def skewed_lines(rng, n_lines, vocab_size, length=32, alphabet=12):
    """Lines drawn from a few token ids (spread over the whole vocabulary, so large ids occur) with a
    Zipf-like frequency, so that the two sets share many n-grams but not all."""
    ids = rng.choice(vocab_size, size=min(alphabet, vocab_size), replace=False)
    weights = 1.0 / np.arange(1, ids.size + 1)
    return ids[rng.choice(ids.size, size=(n_lines, length), p=weights / weights.sum())].astype(np.uint16)


def test_exact_codes_are_base_v_positional():
    assert code_scheme(2, 10) == EXACT_SCHEME
    np.testing.assert_array_equal(ngram_codes(np.array([[1, 2, 3], [4, 5, 6]]), 2, 10), [12, 23, 45, 56])
    assert code_scheme(5, 2048) == EXACT_SCHEME  # 2**55
    assert code_scheme(6, 2048) == HASH_SCHEME  # 2**66 does not fit int64


def test_hashed_codes_equal_iff_ngrams_equal():
    rng = np.random.default_rng(0)
    lines = skewed_lines(rng, 200, 2048, alphabet=6)
    codes = ngram_codes(lines, 6, 2048)
    grams = [tuple(line[i:i + 6]) for line in lines.tolist() for i in range(27)]
    by_code: dict[int, tuple] = {}
    for code, gram in zip(codes.tolist(), grams):
        assert by_code.setdefault(code, gram) == gram  # no collision among these
    assert len(by_code) == len(set(grams))


def test_identical_sets_give_zero_and_disjoint_give_one():
    rng = np.random.default_rng(1)
    lines = skewed_lines(rng, 50, 40)
    for n in (1, 4, 6):
        assert js_n(lines, lines.copy(), n, 40) == 0.0
    # Disjoint supports: every term is "one side only", so JS = ½(ΣP + ΣQ); exactly 1 when the probabilities
    # are powers of two (their float sum is exactly 1), within round-off of the sums otherwise (thirds here).
    assert js_n(np.array([[0, 1], [2, 3]]), np.array([[4, 5]]), 1, 8) == 1.0
    assert js_n(np.array([[1, 1, 2, 2]] * 2), np.array([[3, 3, 3, 3]]), 2, 4) == pytest.approx(1.0, abs=1e-15)
    rng = np.random.default_rng(11)
    a, b = rng.integers(0, 20, size=(40, 32)), rng.integers(20, 40, size=(70, 32))
    for n in (1, 4, 6):
        assert js_n(a, b, n, 40) == pytest.approx(1.0, abs=1e-14)


def test_symmetry():
    rng = np.random.default_rng(2)
    a, b = skewed_lines(rng, 80, 30), skewed_lines(rng, 120, 30)
    for n in (1, 3, 5):
        assert js_n(a, b, n, 30) == pytest.approx(js_n(b, a, n, 30), abs=1e-14)


def test_hand_computed_unigrams():
    # P = {a: 1}; Q = {a: 1/2, b: 1/2}; M = {a: 3/4, b: 1/4}
    # JS = ½·1·log2(1/(3/4)) + ½·[½·log2((1/2)/(3/4)) + ½·log2((1/2)/(1/4))]
    #    = ½(2 − log2 3) + ¼(1 − log2 3) + ¼ = 1.5 − 0.75·log2 3 = 0.311278124459133
    value = js_n(np.array([[1, 1]]), np.array([[1, 2]]), 1, 3)
    assert value == pytest.approx(1.5 - 0.75 * math.log2(3), abs=1e-15)
    assert value == pytest.approx(0.311278124459133, abs=1e-15)


def test_hand_computed_bigrams():
    # "aba" -> {ab: 1/2, ba: 1/2};  "abb" -> {ab: 1/2, bb: 1/2};  M = {ab: 1/2, ba: 1/4, bb: 1/4}
    # JS = ½[½·log2(1) + ½·log2(2)] + ½[½·log2(1) + ½·log2(2)] = ¼ + ¼ = 0.5
    assert js_n(np.array([[1, 2, 1]]), np.array([[1, 2, 2]]), 2, 3) == 0.5


def test_padding_and_unk_are_ordinary_tokens():
    UNK, A, PAD = 0, 1, 2
    generated = np.array([[A, A, PAD, PAD]])  # bigrams aa, a`, `` : 1/3 each
    reference = np.array([[A, A, A, A]])  # aa: 1
    # M = {aa: 2/3, a`: 1/6, ``: 1/6}
    # ½·[⅓·log2(½) + ⅓·log2(2) + ⅓·log2(2)] + ½·log2(3/2) = 1/6 + ½(log2 3 − 1) = ½·log2 3 − 1/3
    expected = 0.5 * math.log2(3) - 1.0 / 3.0
    assert expected == pytest.approx(0.4591479170272448, abs=1e-15)
    assert js_n(generated, reference, 2, 3) == pytest.approx(expected, abs=1e-15)
    # Dropping the n-grams that touch padding would leave {aa: 1} on both sides, i.e. 0: padding matters.
    assert js_n(generated[:, :2], reference[:, :2], 2, 3) == 0.0
    # 'unk' (id 0) is counted like any other token: unk-only lines against a-only lines are disjoint.
    assert js_n(np.array([[UNK, UNK]]), np.array([[A, A]]), 1, 3) == 1.0
    assert js_n(np.array([[UNK, A]]), np.array([[UNK, A]]), 2, 3) == 0.0


@pytest.mark.parametrize("vocab_size, n", [(5, 1), (5, 3), (50, 2), (50, 4), (2048, 5), (2048, 6), (300, 8)])
def test_agrees_with_dictionary_of_tuples(vocab_size, n):
    rng = np.random.default_rng(vocab_size * 10 + n)
    gen = skewed_lines(rng, 150, vocab_size, alphabet=6 if n >= 5 else 12)
    ref = skewed_lines(np.random.default_rng(n), 300, vocab_size, alphabet=6 if n >= 5 else 12)
    ref[:40] = gen[:40]  # guarantee shared n-grams even for long n
    expected = js_by_definition(gen, ref, n)
    assert 0.0 < expected < 1.0
    assert js_n(gen, ref, n, vocab_size) == pytest.approx(expected, abs=1e-12)


def test_chunk_size_independence():
    rng = np.random.default_rng(3)
    gen, ref = skewed_lines(rng, 90, 2048), skewed_lines(rng, 400, 2048)
    for n in (4, 6):
        base_codes, base_counts = ngram_counts(ref, n, 2048, chunk_lines=10_000)
        for chunk in (1, 7, 64):  # chunk 1 forces many intermediate merges
            codes, counts = ngram_counts(ref, n, 2048, chunk_lines=chunk)
            np.testing.assert_array_equal(codes, base_codes)
            np.testing.assert_array_equal(counts, base_counts)
            np.testing.assert_array_equal(ngram_codes(ref, n, 2048, chunk_lines=chunk), ngram_codes(ref, n, 2048))
            assert js_n(gen, ref, n, 2048, chunk_lines=chunk) == js_n(gen, ref, n, 2048)


def test_line_order_is_irrelevant():
    rng = np.random.default_rng(4)
    gen, ref = skewed_lines(rng, 100, 64), skewed_lines(rng, 200, 64)
    perm_gen, perm_ref = gen[rng.permutation(100)], ref[rng.permutation(200)]
    for n in (2, 6):
        assert js_n(perm_gen, perm_ref, n, 64) == js_n(gen, ref, n, 64)


def test_distribution_is_sorted_and_normalised():
    rng = np.random.default_rng(5)
    codes, probs = ngram_distribution(skewed_lines(rng, 30, 16), 3, 16)
    assert np.all(np.diff(codes) > 0)
    assert probs.sum() == pytest.approx(1.0, abs=1e-14)


def test_js_divergence_rejects_unsorted_codes_and_bad_tokens():
    with pytest.raises(ValueError, match="sorted"):
        js_divergence_bits(np.array([2, 1]), np.array([0.5, 0.5]), np.array([1]), np.array([1.0]))
    with pytest.raises(ValueError, match="token ids"):
        ngram_codes(np.array([[0, 5]]), 1, 5)


def test_metric_name_carries_protocol():
    assert metric_name(4, 10_000, "1bw-heldout") == "js4_10000lines_1bw-heldout"


def test_reference_cache_round_trip(tmp_path):
    rng = np.random.default_rng(6)
    gen, ref_lines = skewed_lines(rng, 50, 2048), skewed_lines(rng, 120, 2048)
    kwargs = dict(name="toy", vocab_sha256="abc", token_unit="unicode-code-point")
    ref = load_or_build_reference(tmp_path, ref_lines, 6, 2048, **kwargs)
    files = list(tmp_path.glob("ngrams_toy_n6_*.npz"))
    assert len(files) == 1
    assert ref.manifest["num_lines"] == 120 and ref.manifest["n"] == 6
    assert ref.js(gen) == js_n(gen, ref_lines, 6, 2048) == js_n(gen, ref, 6, 2048)
    assert ref.metric_name(50) == "js6_50lines_toy"

    again = load_or_build_reference(tmp_path, ref_lines, 6, 2048, **kwargs)  # loaded, not rebuilt
    np.testing.assert_array_equal(again.codes, ref.codes)
    assert again.manifest == ref.manifest and again.js(gen) == ref.js(gen)

    # Another vocabulary hash, or other lines of the same count, get their own cache entry.
    load_or_build_reference(tmp_path, ref_lines, 6, 2048, **{**kwargs, "vocab_sha256": "def"})
    load_or_build_reference(tmp_path, ref_lines[::-1].copy(), 6, 2048, **kwargs)
    assert len(list(tmp_path.glob("ngrams_toy_n6_*.npz"))) == 3

    with pytest.raises(ValueError, match="another protocol"):
        ReferenceNgrams.load(files[0], expected_manifest={**ref.manifest, "token_unit": "byte"})
    with pytest.raises(ValueError, match="n=6"):
        js_n(gen, ref, 4, 2048)
