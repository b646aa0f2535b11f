"""Cost of JS-n reference statistics on One-Billion-Word-sized text, without the corpus.

    python benchmarks/bench_ngram_js.py [--lines 1000000] [--generated 10000] [--chunk-lines 131072]

Synthetic lines of 32 token ids (V = 2048): characters i.i.d. from a Zipf-like law over 100 symbols
(exponent 1.1, close to English letter frequencies in shape) and ~15 % of the lines shorter than 32, padded
with one padding id. Independent characters give *more* distinct 6-grams than real text, so time and memory
here are on the pessimistic side. Each measurement runs in a forked child so its peak RSS
(resource.getrusage ru_maxrss, a high-water mark) is its own; the token array is shared with the parent and
included in "peak". The 10M-line figures are linear extrapolations (sorting adds a log factor; the distinct
n-gram table grows sublinearly), so treat them as estimates.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time

import numpy as np

from dgflow_bench.metrics.ngram_js import ReferenceNgrams, code_scheme

VOCAB_SIZE = 2048
SEQ_LEN = 32
PAD_ID = 1


def synthetic_lines(n_lines: int, rng: np.random.Generator) -> np.ndarray:
    ranks = np.arange(1, 101)
    p = ranks ** -1.1
    tokens = (rng.choice(100, size=(n_lines, SEQ_LEN), p=p / p.sum()) + 2).astype(np.uint16)  # 0 unk, 1 pad
    lengths = np.where(rng.random(n_lines) < 0.15, rng.integers(1, SEQ_LEN, n_lines), SEQ_LEN)
    tokens[np.arange(SEQ_LEN)[None, :] >= lengths[:, None]] = PAD_ID
    return tokens


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def measure(n: int, reference: np.ndarray, generated: np.ndarray, chunk_lines: int, queue) -> None:
    before = peak_rss_mb()
    t0 = time.perf_counter()
    ref = ReferenceNgrams.build(reference, n, VOCAB_SIZE, name="synthetic", vocab_sha256="-",
                                token_unit="synthetic", chunk_lines=chunk_lines)
    _ = ref.probs  # part of the one-off cost
    build_s = time.perf_counter() - t0
    build_peak = peak_rss_mb()
    t0 = time.perf_counter()
    value = ref.js(generated)
    js_s = time.perf_counter() - t0
    queue.put(dict(n=n, scheme=code_scheme(n, VOCAB_SIZE), build_s=build_s, distinct=int(ref.codes.size),
                   table_mb=(ref.codes.nbytes + ref.counts.nbytes + ref.probs.nbytes) / 2**20,
                   rss_before=before, rss_peak=build_peak, js_s=js_s, js=value))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000, help="reference lines (default 1,000,000)")
    parser.add_argument("--generated", type=int, default=10_000, help="generated lines for one JS")
    parser.add_argument("--chunk-lines", type=int, default=1 << 17)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    reference = synthetic_lines(args.lines, rng)
    generated = synthetic_lines(args.generated, rng)
    print(f"{args.lines:,} reference lines x {SEQ_LEN} (uint16, {reference.nbytes / 2**20:.0f} MiB), "
          f"{args.generated:,} generated; made in {time.perf_counter() - t0:.1f} s; "
          f"parent peak RSS {peak_rss_mb():.0f} MiB")
    ctx = mp.get_context("fork")  # children share the token arrays copy-on-write
    scale = 10_000_000 / args.lines
    for n in (4, 6):
        queue = ctx.Queue()
        child = ctx.Process(target=measure, args=(n, reference, generated, args.chunk_lines, queue))
        child.start()
        r = queue.get()
        child.join()
        print(f"n={n} ({r['scheme']}): reference stats {r['build_s']:.1f} s, {r['distinct']:,} distinct n-grams "
              f"({r['table_mb']:.0f} MiB table), peak RSS {r['rss_peak']:.0f} MiB "
              f"(+{r['rss_peak'] - r['rss_before']:.0f} MiB over the start of the stage); "
              f"one JS vs {args.generated:,} lines: {r['js_s'] * 1000:.0f} ms (JS = {r['js']:.4f} bits)")
        print(f"      extrapolated to 10M lines (x{scale:g}, linear): ~{r['build_s'] * scale:.0f} s, "
              f"~{(r['rss_peak'] - r['rss_before']) * scale / 1024:.1f} GiB over the token array "
              f"({reference.nbytes * scale / 2**30:.2f} GiB)")


if __name__ == "__main__":
    main()
