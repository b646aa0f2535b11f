"""The text suite's metric entry point: JS-n (in bits) between the character n-grams of generated lines and
a reference set (held-out lines by default, or the training lines as in the WGAN-GP language code). The
reference n-gram statistics are cached by everything that changes them."""

from __future__ import annotations

from typing import Iterable

import numpy as np

from ..data.text import TOKEN_UNIT, vocabulary_sha256
from .ngram_js import load_or_build_reference


def metric_directions() -> dict[str, str]:
    return {"js": "lower"}


def prepare(data_file: str, params: dict, cache_dir: str) -> dict:
    with np.load(data_file, allow_pickle=False) as data:
        vocab = [str(v) for v in data["vocab"]]
        reference = data[params["js_reference"]]
    name = f"1bw-{params['js_reference']}"
    refs = {
        n: load_or_build_reference(cache_dir, reference, n, len(vocab), name=name,
                                   vocab_sha256=vocabulary_sha256(vocab), token_unit=TOKEN_UNIT)
        for n in params["js_orders"]
    }
    return {"references": refs}


def compute(dataset: str, batches: Iterable[np.ndarray], n_samples: int, prepared: dict,
            params: dict) -> dict[str, float]:
    samples = np.concatenate(list(batches))
    return {ref.metric_name(len(samples)): ref.js(samples) for ref in prepared["references"].values()}
