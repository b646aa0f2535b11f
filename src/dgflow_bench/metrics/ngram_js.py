"""JS-n for text: Jensen–Shannon divergence, in bits, between character n-gram distributions (docs/method.md §5).

Definition implemented (and nothing else):

* a line is a row of ``L`` token ids (padding and 'unk' are ordinary tokens); its n-grams are the windows
  starting at positions ``0 .. L - n``;
* ``p(g) = count(g) / total n-grams`` over all lines of a set;
* ``JS = ½ Σ_P P (log P − log M) + ½ Σ_Q Q (log Q − log M)``, each sum over its own support,
  ``M = (P + Q) / 2`` (the absent side counts as 0), divided by ``ln 2``.

An n-gram becomes one int64 code so that distributions are sorted code arrays with probabilities:

* ``V**n < 2**63``: the exact base-V positional code ``Σ_k t_k V^(n-1-k)`` (no collisions possible).
* otherwise (e.g. V = 2048, n = 6: 2**66): a 64-bit hash (``HASH_SCHEME``). Each token id is first mapped
  to a pseudo-random 64-bit word with the MurmurHash3 finaliser ``fmix64`` (a bijection), then
  ``h ← fmix64(h ⊕ word(t_k))`` over the window. Treating codes as random 64-bit values, two distinct
  n-grams collide with probability ≈ 2**-64, so a set of D distinct n-grams (both sides together) has any
  collision with probability ≤ D²/2**65: ≈ 3e-6 for D = 1e7, ≈ 3e-4 for D = 1e8. A collision merges two
  n-grams, which can only lower JS, by at most the merged mass.

The result depends strongly on the number of generated lines, so metric names carry the protocol
(:func:`metric_name`). Reference distributions are computed once and cached on disk (:class:`ReferenceNgrams`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io import savez

__all__ = [
    "HASH_SCHEME", "EXACT_SCHEME", "DEFAULT_CHUNK_LINES", "code_scheme", "ngram_codes", "ngram_counts",
    "ngram_distribution", "js_divergence_bits", "js_n", "metric_name", "ReferenceNgrams",
    "reference_manifest", "reference_cache_path", "load_or_build_reference",
]

EXACT_SCHEME = "base-V-exact"
HASH_SCHEME = "fmix64-xor-chain-v1"
DEFAULT_CHUNK_LINES = 1 << 17  # 131,072 lines × 27 windows × 8 B ≈ 28 MB of codes per chunk
_CACHE_FORMAT = 1  # bump when the code scheme or the file layout changes; invalidates old caches

_U64 = np.uint64
_HASH_SEED = _U64(0x243F6A8885A308D3)  # digits of pi: any fixed constant


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser, in place on a uint64 array (wraps mod 2**64 by design)."""
    h ^= h >> _U64(33)
    h *= _U64(0xFF51AFD7ED558CCD)
    h ^= h >> _U64(33)
    h *= _U64(0xC4CEB9FE1A85EC53)
    h ^= h >> _U64(33)
    return h


def code_scheme(n: int, vocab_size: int) -> str:
    """Which n-gram code is used: exact while V**n fits a signed 64-bit integer, else the hash."""
    return EXACT_SCHEME if int(vocab_size) ** int(n) < 2**63 else HASH_SCHEME


def _check_args(tokens: np.ndarray, n: int, vocab_size: int) -> np.ndarray:
    tokens = np.asarray(tokens)
    if tokens.ndim != 2 or not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"tokens must be an integer array (lines, positions), got {tokens.dtype} {tokens.shape}")
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not 1 <= int(vocab_size) <= 65536:
        raise ValueError(f"vocab_size must be in [1, 65536], got {vocab_size!r}")
    if tokens.shape[1] < n:
        raise ValueError(f"lines of {tokens.shape[1]} tokens have no {n}-grams")
    return tokens


def _chunk_codes(chunk: np.ndarray, n: int, vocab_size: int, scheme: str) -> np.ndarray:
    """Codes (rows, L - n + 1) of one block of lines; loops over the n offsets, never over lines."""
    if chunk.size and (chunk.min() < 0 or chunk.max() >= vocab_size):
        raise ValueError(f"token ids must lie in [0, {vocab_size}), got [{chunk.min()}, {chunk.max()}]")
    windows = chunk.shape[1] - n + 1
    if scheme == EXACT_SCHEME:  # Horner's rule; every partial value is < V**n < 2**63, so int64 is exact
        t = chunk.astype(np.int64)
        codes = t[:, :windows].copy()
        for k in range(1, n):
            codes *= vocab_size
            codes += t[:, k:k + windows]
        return codes
    words = _fmix64(np.arange(vocab_size, dtype=_U64) + _U64(0x9E3779B97F4A7C15))[chunk]  # pseudo-random word per token
    h = np.full((chunk.shape[0], windows), _HASH_SEED, dtype=_U64)
    for k in range(n):
        h ^= words[:, k:k + windows]
        _fmix64(h)
    return h.view(np.int64)


def ngram_codes(tokens: np.ndarray, n: int, vocab_size: int, *, chunk_lines: int = DEFAULT_CHUNK_LINES) -> np.ndarray:
    """All n-gram codes, line by line and position by position: int64 of length N·(L − n + 1)."""
    tokens = _check_args(tokens, n, vocab_size)
    scheme = code_scheme(n, vocab_size)
    windows = tokens.shape[1] - n + 1
    out = np.empty((tokens.shape[0], windows), dtype=np.int64)
    for start in range(0, tokens.shape[0], chunk_lines):
        out[start:start + chunk_lines] = _chunk_codes(tokens[start:start + chunk_lines], n, vocab_size, scheme)
    return out.reshape(-1)


def _merge_counts(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Merge sorted (unique codes, counts) runs; empties ``parts`` so the inputs are freed as early as
    possible (the peak memory of the whole computation is here). A stable sort is timsort, which merges
    presorted runs in O(total · log runs) instead of sorting from scratch."""
    if len(parts) == 1:
        return parts.pop()
    codes = np.concatenate([p[0] for p in parts])
    counts = np.concatenate([p[1] for p in parts])
    parts.clear()
    if codes.size == 0:
        return codes, counts
    order = np.argsort(codes, kind="stable")
    codes = codes[order]
    counts = counts[order]
    del order
    starts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
    counts = np.add.reduceat(counts, starts)
    return codes[starts], counts


def ngram_counts(tokens: np.ndarray, n: int, vocab_size: int, *,
                 chunk_lines: int = DEFAULT_CHUNK_LINES) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique codes int64, counts int64), built chunk by chunk so memory follows the number of
    distinct n-grams rather than the number of lines."""
    tokens = _check_args(tokens, n, vocab_size)
    scheme = code_scheme(n, vocab_size)
    windows = tokens.shape[1] - n + 1
    merged = (np.empty(0, np.int64), np.empty(0, np.int64))
    pending: list[tuple[np.ndarray, np.ndarray]] = []
    pending_size = 0
    for start in range(0, tokens.shape[0], chunk_lines):
        codes = _chunk_codes(tokens[start:start + chunk_lines], n, vocab_size, scheme).reshape(-1)
        codes.sort()
        starts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
        pending.append((codes[starts], np.diff(np.append(starts, codes.size)).astype(np.int64)))
        pending_size += starts.size
        # Merge geometrically (when the pending runs are as large as the merged table) so each entry is
        # re-merged O(log) times, and never hold more than ~2x the final table plus a few chunks.
        if pending_size >= max(merged[0].size, 4 * chunk_lines * windows):
            parts = [merged, *pending]
            merged, pending, pending_size = None, [], 0  # drop our references: _merge_counts frees the runs
            merged = _merge_counts(parts)
    parts = [merged, *pending]
    del merged, pending
    return _merge_counts(parts)


def ngram_distribution(tokens: np.ndarray, n: int, vocab_size: int, *,
                       chunk_lines: int = DEFAULT_CHUNK_LINES) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique codes, probabilities = count / total n-grams)."""
    codes, counts = ngram_counts(tokens, n, vocab_size, chunk_lines=chunk_lines)
    total = counts.sum()
    if total == 0:
        raise ValueError("no lines: the n-gram distribution is undefined")
    return codes, counts / total


def _matches(small: np.ndarray, large: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices (into small, into large) of the common codes: binary search of the smaller set in the larger,
    O(small · log large), so a 10k-line set against a 10M-line reference never sorts the reference."""
    pos = np.searchsorted(large, small)
    hit = pos < large.size
    hit[hit] = large[pos[hit]] == small[hit]
    return np.flatnonzero(hit), pos[hit]


def _check_sorted_unique(codes: np.ndarray, probs: np.ndarray, side: str) -> None:
    if codes.shape != probs.shape or codes.ndim != 1:
        raise ValueError(f"{side}: codes and probabilities must be 1-D arrays of the same length")
    if codes.size > 1 and not np.all(codes[1:] > codes[:-1]):
        raise ValueError(f"{side}: codes must be sorted and unique (use ngram_distribution)")


def js_divergence_bits(p_codes: np.ndarray, p_probs: np.ndarray, q_codes: np.ndarray, q_probs: np.ndarray,
                       *, validate: bool = True) -> float:
    """JS(P, Q) in bits for two distributions given as sorted unique codes with probabilities.

    On an n-gram of one support only, M = P/2 and the term is P (log P − log P/2)/ln 2 = P exactly, so
    those terms are summed as masses: disjoint supports give exactly ½(ΣP + ΣQ), identical ones exactly 0.
    """
    p_codes, q_codes = np.asarray(p_codes), np.asarray(q_codes)
    p_probs, q_probs = np.asarray(p_probs, np.float64), np.asarray(q_probs, np.float64)
    if validate:
        _check_sorted_unique(p_codes, p_probs, "P")
        _check_sorted_unique(q_codes, q_probs, "Q")
    if p_codes.size <= q_codes.size:
        ip, iq = _matches(p_codes, q_codes)
    else:
        iq, ip = _matches(q_codes, p_codes)
    p_common, q_common = p_probs[ip], q_probs[iq]
    m = 0.5 * (p_common + q_common)
    log_m = np.log(m)
    common_nats = 0.5 * np.sum(p_common * (np.log(p_common) - log_m)) \
        + 0.5 * np.sum(q_common * (np.log(q_common) - log_m))
    only_bits = 0.5 * ((np.sum(p_probs) - np.sum(p_common)) + (np.sum(q_probs) - np.sum(q_common)))
    js = float(only_bits + common_nats / math.log(2))
    return min(max(js, 0.0), 1.0)  # JS is in [0, 1] bits; clip float round-off of order 1e-16 only


def metric_name(n: int, n_generated: int, reference_name: str) -> str:
    """The name of a JS value with its protocol: n, number of generated lines and reference set."""
    return f"js{n}_{n_generated}lines_{reference_name}"


def reference_manifest(tokens: np.ndarray, n: int, vocab_size: int, *, name: str, vocab_sha256: str,
                       token_unit: str) -> dict:
    """What a cached reference distribution depends on; the cache is reused only when all of it matches.
    ``tokens_sha256`` (hash of the token array) guards against two different sets of the same size."""
    tokens = _check_args(tokens, n, vocab_size)
    return {
        "n": int(n), "num_lines": int(tokens.shape[0]), "seq_len": int(tokens.shape[1]),
        "vocab_size": int(vocab_size), "vocab_sha256": str(vocab_sha256), "token_unit": str(token_unit),
        "name": str(name), "code_scheme": code_scheme(n, vocab_size), "format": _CACHE_FORMAT,
        "tokens_sha256": hashlib.sha256(np.ascontiguousarray(tokens, dtype="<u2").tobytes()).hexdigest(),
    }


@dataclass(frozen=True)
class ReferenceNgrams:
    """The n-gram distribution of a reference set, computed once and compared with many generated sets."""

    manifest: dict
    codes: np.ndarray
    counts: np.ndarray

    @property
    def n(self) -> int:
        return int(self.manifest["n"])

    @property
    def vocab_size(self) -> int:
        return int(self.manifest["vocab_size"])

    @functools.cached_property
    def probs(self) -> np.ndarray:  # computed once: the reference may hold 1e8 entries
        return self.counts / self.counts.sum()

    @classmethod
    def build(cls, tokens: np.ndarray, n: int, vocab_size: int, *, name: str, vocab_sha256: str,
              token_unit: str, chunk_lines: int = DEFAULT_CHUNK_LINES) -> "ReferenceNgrams":
        manifest = reference_manifest(tokens, n, vocab_size, name=name, vocab_sha256=vocab_sha256,
                                      token_unit=token_unit)
        codes, counts = ngram_counts(tokens, n, vocab_size, chunk_lines=chunk_lines)
        return cls(manifest, codes, counts)

    def save(self, path: str | os.PathLike) -> None:
        savez(path, codes=self.codes, counts=self.counts, manifest=np.array(json.dumps(self.manifest, sort_keys=True)))

    @classmethod
    def load(cls, path: str | os.PathLike, expected_manifest: dict | None = None) -> "ReferenceNgrams":
        with np.load(path, allow_pickle=False) as z:
            manifest = json.loads(str(z["manifest"]))
            if expected_manifest is not None and manifest != expected_manifest:
                diff = sorted(k for k in set(manifest) | set(expected_manifest)
                              if manifest.get(k) != expected_manifest.get(k))
                raise ValueError(f"{path}: cached reference n-grams were built for another protocol "
                                 f"(differs in {diff}); delete the file or point to another cache")
            return cls(manifest, z["codes"], z["counts"])

    def js(self, generated: np.ndarray, *, chunk_lines: int = DEFAULT_CHUNK_LINES) -> float:
        """JS-n in bits between the generated lines and this reference."""
        g_codes, g_probs = ngram_distribution(generated, self.n, self.vocab_size, chunk_lines=chunk_lines)
        return js_divergence_bits(g_codes, g_probs, self.codes, self.probs, validate=False)

    def metric_name(self, n_generated: int) -> str:
        return metric_name(self.n, n_generated, self.manifest["name"])


def reference_cache_path(folder: str | os.PathLike, manifest: dict) -> Path:
    """A cache file name that changes with any field of the manifest."""
    key = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]
    return Path(folder) / f"ngrams_{manifest['name']}_n{manifest['n']}_{key}.npz"


def load_or_build_reference(cache_folder: str | os.PathLike, tokens: np.ndarray, n: int, vocab_size: int, *,
                            name: str, vocab_sha256: str, token_unit: str,
                            chunk_lines: int = DEFAULT_CHUNK_LINES) -> ReferenceNgrams:
    """Load the reference distribution from ``cache_folder`` when its manifest matches, else build and save it
    (atomically, so a killed job leaves no half-written cache)."""
    manifest = reference_manifest(tokens, n, vocab_size, name=name, vocab_sha256=vocab_sha256,
                                  token_unit=token_unit)
    path = reference_cache_path(cache_folder, manifest)
    if path.exists():
        return ReferenceNgrams.load(path, expected_manifest=manifest)
    ref = ReferenceNgrams(manifest, *ngram_counts(tokens, n, vocab_size, chunk_lines=chunk_lines))
    ref.save(path)
    return ref


def js_n(generated: np.ndarray, reference: "np.ndarray | ReferenceNgrams", n: int, vocab_size: int, *,
         chunk_lines: int = DEFAULT_CHUNK_LINES) -> float:
    """JS-n in bits between generated lines and reference lines (or a precomputed :class:`ReferenceNgrams`)."""
    if isinstance(reference, ReferenceNgrams):
        if (reference.n, reference.vocab_size) != (int(n), int(vocab_size)):
            raise ValueError(f"reference was built for n={reference.n}, V={reference.vocab_size}, "
                             f"not n={n}, V={vocab_size}")
        return reference.js(generated, chunk_lines=chunk_lines)
    p = ngram_distribution(generated, n, vocab_size, chunk_lines=chunk_lines)
    q = ngram_distribution(reference, n, vocab_size, chunk_lines=chunk_lines)
    return js_divergence_bits(*p, *q, validate=False)
