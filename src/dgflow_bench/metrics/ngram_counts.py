"""Character n-grams of token-id lines as int64 codes, and their counts (the input of JS-n, ngram_js.py).

An n-gram becomes one int64 code so that distributions are sorted code arrays with probabilities:

* ``V**n < 2**63``: the exact base-V positional code ``Σ_k t_k V^(n-1-k)`` (no collisions possible).
* otherwise (e.g. V = 2048, n = 6: 2**66): a 64-bit hash (``HASH_SCHEME``). Each token id is first mapped
  to a pseudo-random 64-bit word with the MurmurHash3 finaliser ``fmix64`` (a bijection), then
  ``h ← fmix64(h ⊕ word(t_k))`` over the window. Treating codes as random 64-bit values, two distinct
  n-grams collide with probability ≈ 2**-64, so a set of D distinct n-grams (both sides together) has any
  collision with probability ≤ D²/2**65: ≈ 3e-6 for D = 1e7, ≈ 3e-4 for D = 1e8. A collision merges two
  n-grams, which can only lower JS, by at most the merged mass.
"""

from __future__ import annotations

import numpy as np

EXACT_SCHEME = "base-V-exact"
HASH_SCHEME = "fmix64-xor-chain-v1"
DEFAULT_CHUNK_LINES = 1 << 17  # 131,072 lines × 27 windows × 8 B ≈ 28 MB of codes per chunk

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


def check_tokens(tokens: np.ndarray, n: int, vocab_size: int) -> np.ndarray:
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
    tokens = check_tokens(tokens, n, vocab_size)
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
    tokens = check_tokens(tokens, n, vocab_size)
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
