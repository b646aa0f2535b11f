"""One Billion Word benchmark as fixed-length character lines for the WGAN-GP language model (docs/method.md §4).

Protocol of the original WGAN-GP language code (igul222/improved_wgan_training, ``language_helpers``): read
the training shards news.en-00001 … 00099 in order, drop the newline, truncate each line to 32 characters and
right-pad it with a backtick, stop after the first 10M lines; vocabulary = 'unk' + the 2,047 most frequent
characters (padding included in the counts); unknown characters map to 'unk'.

Token unit: **Unicode code points** (files decoded as UTF-8). The original ran under Python 2 and iterated
over ``str``, i.e. bytes: there a non-ASCII character such as 'é' is two tokens, truncation at 32 can cut a
character in half, and the vocabulary holds at most 256 byte values, so 'unk' never occurs. With code points
a non-ASCII line keeps more text within 32 tokens, characters are never split, and characters outside the
2,047 most frequent become 'unk'. Vocabulary ties are broken by code point (the original used
``Counter.most_common``, i.e. first-seen order), so the vocabulary is independent of line order.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from ..io import savez, sha256_file

__all__ = [
    "ONE_BILLION_WORD_URL",
    "ONE_BILLION_WORD_SHA256",
    "EXTRACTED_FOLDER",
    "TRAINING_FOLDER",
    "TRAINING_SHARDS",
    "SEQ_LEN",
    "PAD",
    "UNK",
    "VOCAB_SIZE",
    "TOKEN_UNIT",
    "TextDataError",
    "find_training_shards",
    "read_lines",
    "build_vocabulary",
    "vocabulary_sha256",
    "encode",
    "decode",
    "check_tarball_sha256",
    "prepare_text_dataset",
]

ONE_BILLION_WORD_URL = (
    "http://www.statmt.org/lm-benchmark/1-billion-word-language-modeling-benchmark-r13output.tar.gz"
)
# The tarball could not be downloaded where this code was written, so its SHA-256 is not known here and is
# deliberately not made up. Policy: pass the hash you trust as ``sha256`` (config) to
# :func:`check_tarball_sha256`; without one, the hash actually seen is returned for the manifest, and
# :func:`prepare_text_dataset` always records the SHA-256 of every shard it read.
ONE_BILLION_WORD_SHA256: str | None = None
EXTRACTED_FOLDER = "1-billion-word-language-modeling-benchmark-r13output"
TRAINING_FOLDER = "training-monolingual.tokenized.shuffled"
TRAINING_SHARDS = tuple(f"news.en-{i:05d}-of-00100" for i in range(1, 100))  # 00100 is the held-out shard
SEQ_LEN = 32
PAD = "`"
UNK = "unk"
VOCAB_SIZE = 2048
TOKEN_UNIT = "unicode-code-point"
_MAX_CODE_POINT = 0x110000
_CHUNK_LINES = 100_000  # lines converted to code points at a time (bounds temporary memory)


class TextDataError(FileNotFoundError):
    """The corpus is missing or incomplete; the message says where it was looked for and where to get it."""


def find_training_shards(root: str | os.PathLike) -> list[Path]:
    """The 99 training shard paths, in order. ``root`` is the extracted folder or the folder holding it."""
    root = Path(root)
    candidates = [root / TRAINING_FOLDER, root / EXTRACTED_FOLDER / TRAINING_FOLDER]
    folder = next((c for c in candidates if c.is_dir()), None)
    if folder is None:
        raise TextDataError(
            f"no {TRAINING_FOLDER}/ in {root} (nor in {root / EXTRACTED_FOLDER}). Download "
            f"{ONE_BILLION_WORD_URL}, extract it there (tar xzf) and point the text data root to the folder "
            f"{EXTRACTED_FOLDER}/ or to its parent."
        )
    paths = [folder / name for name in TRAINING_SHARDS]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise TextDataError(
            f"{folder} lacks {len(missing)} of the 99 training shards (first: {missing[0]}); the extraction "
            f"of {ONE_BILLION_WORD_URL} is incomplete: extract it again."
        )
    return paths


def _pad_line(line: str, seq_len: int, pad: str) -> str:
    line = line[:-1] if line.endswith("\n") else line  # the original drops the final newline only
    return line[:seq_len].ljust(seq_len, pad)


def _iter_shards(paths: Iterable[str | os.PathLike], max_lines: int, seq_len: int,
                 pad: str) -> Iterator[tuple[Path, list[str]]]:
    """(shard, its padded lines) in order, stopping at ``max_lines`` lines in all."""
    remaining = int(max_lines)
    for path in paths:
        if remaining <= 0:
            return
        lines: list[str] = []
        # newline="\n": split on \n only, as the original did, so a stray \r stays an ordinary character
        with open(path, encoding="utf-8", newline="\n") as fh:
            for line in fh:
                lines.append(_pad_line(line, seq_len, pad))
                if len(lines) == remaining:
                    break
        remaining -= len(lines)
        yield Path(path), lines


def read_lines(paths: Iterable[str | os.PathLike], max_lines: int, seq_len: int = SEQ_LEN,
               pad: str = PAD) -> list[str]:
    """The first ``max_lines`` lines of the shards, each truncated to ``seq_len`` code points and
    right-padded with ``pad``."""
    if len(pad) != 1:
        raise ValueError(f"pad must be one character, got {pad!r}")
    return [line for _, lines in _iter_shards(paths, max_lines, seq_len, pad) for line in lines]


def _code_points(lines: Sequence[str]) -> np.ndarray:
    """All code points of ``lines`` back to back, as uint32 (UTF-32 is one unit per code point)."""
    return np.frombuffer("".join(lines).encode("utf-32-le"), dtype="<u4")


def build_vocabulary(lines: Sequence[str], size: int = VOCAB_SIZE, pad: str = PAD) -> list[str]:
    """['unk', then the ``size - 1`` most frequent characters]; ties by code point. The padding character is
    always included: if it is not among the most frequent, it replaces the least frequent one kept."""
    if size < 2:
        raise ValueError("a vocabulary needs 'unk' and the padding character: size >= 2")
    counts = np.zeros(_MAX_CODE_POINT, dtype=np.int64)
    for start in range(0, len(lines), _CHUNK_LINES):
        counts += np.bincount(_code_points(lines[start:start + _CHUNK_LINES]), minlength=_MAX_CODE_POINT)
    present = np.flatnonzero(counts)
    ranked = present[np.lexsort((present, -counts[present]))][: size - 1]  # count desc, then code point
    chars = [chr(c) for c in ranked]
    if pad not in chars:
        chars = chars[: size - 2] + [pad]
    return [UNK, *chars]


def vocabulary_sha256(vocab: Sequence[str]) -> str:
    """Hash of the vocabulary in order (JSON keeps every entry unambiguous, whatever characters it holds)."""
    return hashlib.sha256(json.dumps(list(vocab), ensure_ascii=False).encode("utf-8")).hexdigest()


def _check_vocab(vocab: Sequence[str]) -> None:
    if not vocab or vocab[0] != UNK or len(vocab) > 65536:
        raise ValueError("vocab must start with 'unk' and have at most 65,536 entries (uint16 ids)")
    if any(len(c) != 1 for c in vocab[1:]) or len(set(vocab[1:])) != len(vocab) - 1:
        raise ValueError("vocab entries after 'unk' must be distinct single characters")


def encode(lines: Sequence[str], vocab: Sequence[str], seq_len: int = SEQ_LEN) -> np.ndarray:
    """uint16 ids (N, seq_len); characters outside the vocabulary become 0 ('unk')."""
    _check_vocab(vocab)
    lookup = np.zeros(_MAX_CODE_POINT, dtype=np.uint16)  # code point -> id, 0 by default
    lookup[[ord(c) for c in vocab[1:]]] = np.arange(1, len(vocab), dtype=np.uint16)
    out = np.empty((len(lines), seq_len), dtype=np.uint16)
    for start in range(0, len(lines), _CHUNK_LINES):
        chunk = lines[start:start + _CHUNK_LINES]
        if any(len(line) != seq_len for line in chunk):
            bad = next(line for line in chunk if len(line) != seq_len)
            raise ValueError(f"every line must have {seq_len} characters (pad them first): {bad!r}")
        out[start:start + len(chunk)] = lookup[_code_points(chunk)].reshape(len(chunk), seq_len)
    return out


def decode(tokens: np.ndarray, vocab: Sequence[str]) -> list[str]:
    """Strings from ids; id 0 is written as 'unk', as the original sample dumps do."""
    table = np.asarray(list(vocab), dtype=object)
    return ["".join(row) for row in table[np.asarray(tokens, dtype=np.int64)]]


def check_tarball_sha256(path: str | os.PathLike, sha256: str | None = ONE_BILLION_WORD_SHA256) -> str:
    """SHA-256 of a downloaded tarball; raises when ``sha256`` is given and differs. Returns the hash seen,
    to be recorded in the manifest when no trusted hash was given."""
    seen = sha256_file(path)
    if sha256 is not None and seen != sha256.lower():
        raise ValueError(f"{path} has SHA-256 {seen}, expected {sha256}: corrupt or another release of "
                         f"{ONE_BILLION_WORD_URL}")
    return seen


def prepare_text_dataset(root: str | os.PathLike, out_npz: str | os.PathLike, max_lines: int = 10_000_000,
                         heldout_lines: int = 10_000, seed: int = 0, *, seq_len: int = SEQ_LEN, pad: str = PAD,
                         vocab_size: int = VOCAB_SIZE) -> dict:
    """Write ``out_npz`` with 'train', 'heldout' (uint16 (N, seq_len)), 'vocab' (unicode array) and 'manifest'
    (JSON string), atomically; return the manifest.

    The first ``max_lines`` lines are shuffled with ``np.random.default_rng(seed).permutation``; the last
    ``heldout_lines`` after the shuffle are the held-out real set (default 10,000, the size of a generated
    set, so real-vs-real JS-n at that size gives the floor of the metric). The vocabulary is counted over all
    lines read, train and held-out alike, as the original counted over every line it loaded.
    """
    shards = find_training_shards(root)
    per_shard, lines = [], []
    for path, shard_lines in _iter_shards(shards, max_lines, seq_len, pad):
        per_shard.append({"name": path.name, "lines": len(shard_lines), "sha256": sha256_file(path)})
        lines.extend(shard_lines)
    if not 0 < heldout_lines < len(lines):
        raise ValueError(f"heldout_lines={heldout_lines} must be in (0, {len(lines)}), the number of lines read")
    vocab = build_vocabulary(lines, vocab_size, pad)
    tokens = encode(lines, vocab, seq_len)
    del lines
    tokens = tokens[np.random.default_rng(seed).permutation(len(tokens))]
    n_train = len(tokens) - heldout_lines
    manifest = {
        "source_url": ONE_BILLION_WORD_URL, "source_sha256": ONE_BILLION_WORD_SHA256,
        "shards": per_shard, "max_lines": int(max_lines), "lines_read": int(len(tokens)),
        "train_lines": int(n_train), "heldout_lines": int(heldout_lines), "seed": int(seed),
        "shuffle": "numpy.random.default_rng(seed).permutation; held-out = last lines",
        "seq_len": int(seq_len), "pad": pad, "token_unit": TOKEN_UNIT, "vocab_size": len(vocab),
        "vocab_sha256": vocabulary_sha256(vocab),
        "unk_fraction": float(np.mean(tokens == 0)),
    }
    savez(out_npz, train=tokens[:n_train], heldout=tokens[n_train:], vocab=np.array(vocab, dtype=str),
          manifest=np.array(json.dumps(manifest, sort_keys=True)))  # atomic: no half-written file on a kill
    return manifest


def ensure_corpus(root: str | os.PathLike | None, url: str, download_dir: str | os.PathLike,
                  sha256: str | None = None) -> Path:
    """The folder holding the extracted corpus: ``root`` when given, else download ``url`` into
    ``download_dir`` (checked against ``sha256`` when known) and extract it there once."""
    if root:
        return Path(root)
    import tarfile
    import urllib.error
    from ..errors import hostile_archive
    from ..io import download

    folder = Path(download_dir)
    if (folder / EXTRACTED_FOLDER / TRAINING_FOLDER).is_dir():
        return folder
    tarball = folder / Path(url).name
    if not tarball.exists():
        try:
            download(url, tarball)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise TextDataError(
                f"could not download {url} ({exc}). Offline? Download and extract it elsewhere and set "
                f"datasets.billion-words.root to the folder that holds {EXTRACTED_FOLDER}/."
            ) from exc
    check_tarball_sha256(tarball, sha256)
    with tarfile.open(tarball) as archive:
        try:
            archive.extractall(folder, filter="data")  # the 'data' filter refuses absolute paths and links out
        except tarfile.FilterError as exc:
            raise TextDataError(hostile_archive(tarball, exc, "datasets.billion-words.root")) from None
    return folder
