"""JS-n for text: Jensen–Shannon divergence, in bits, between character n-gram distributions (docs/method.md §5).

Definition implemented (and nothing else):

* a line is a row of ``L`` token ids (padding and 'unk' are ordinary tokens); its n-grams are the windows
  starting at positions ``0 .. L - n``;
* ``p(g) = count(g) / total n-grams`` over all lines of a set;
* ``JS = ½ Σ_P P (log P − log M) + ½ Σ_Q Q (log Q − log M)``, each sum over its own support,
  ``M = (P + Q) / 2`` (the absent side counts as 0), divided by ``ln 2``.

N-gram codes and counts: metrics/ngram_counts.py.

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
from .ngram_counts import (DEFAULT_CHUNK_LINES, EXACT_SCHEME, HASH_SCHEME, check_tokens, code_scheme,  # noqa: F401
                           ngram_codes, ngram_counts, ngram_distribution)

_CACHE_FORMAT = 1  # bump when the code scheme or the file layout changes; invalidates old caches

__all__ = [
    "HASH_SCHEME", "EXACT_SCHEME", "DEFAULT_CHUNK_LINES", "code_scheme", "ngram_codes", "ngram_counts",
    "ngram_distribution", "js_divergence_bits", "js_n", "metric_name", "ReferenceNgrams",
    "reference_manifest", "reference_cache_path", "load_or_build_reference",
]


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
    tokens = check_tokens(tokens, n, vocab_size)
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
