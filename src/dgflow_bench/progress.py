"""Progress that reaches log files: a tqdm bar on a terminal, plain flushed lines otherwise (tqdm with
disable=None prints nothing when stderr is not a TTY, which left Snakemake's rule logs empty)."""

from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def log(msg: str) -> None:
    print(f"[dgflow-bench] {msg}", file=sys.stderr, flush=True)


class _Lines:
    """Iterates like tqdm, printing `desc: n/total (p%) t s` at each new tenth of total and at the end."""

    def __init__(self, iterable: Iterable[T], desc: str, total: int | None, initial: int):
        self.iterable, self.desc, self.total, self.initial = iterable, desc, total, initial
        self.postfix = ""

    def set_postfix(self, **values) -> None:  # tqdm's API, so callers need not know which one they got
        self.postfix = " " + " ".join(f"{k}={v}" for k, v in values.items())

    def _line(self, n: int, start: float) -> None:
        pct = f" ({100 * n // self.total}%)" if self.total else ""
        of = f"/{self.total}" if self.total is not None else ""
        print(f"{self.desc}: {n}{of}{pct} {time.monotonic() - start:.1f} s{self.postfix}", file=sys.stderr,
              flush=True)

    def __iter__(self) -> Iterator[T]:
        start, n, tenth = time.monotonic(), self.initial, None
        if self.total:
            tenth = 10 * self.initial // self.total
        for item in self.iterable:
            yield item
            n += 1
            if self.total and 10 * n // self.total > tenth and n < self.total:
                tenth = 10 * n // self.total
                self._line(n, start)
        self._line(n, start)  # always the final count, also for an empty or unsized iterable


def progress(iterable: Iterable[T], desc: str = "", total: int | None = None, disable: bool = False,
             initial: int = 0, **tqdm_kwargs) -> Iterable[T]:
    """Wrap ``iterable``; ``total`` defaults to len(iterable) and counts ``initial`` (steps done before a
    resume). ``tqdm_kwargs`` (leave, mininterval, ...) only apply on a terminal."""
    if disable:
        return iterable
    if total is None and hasattr(iterable, "__len__"):
        total = initial + len(iterable)
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        return tqdm(iterable, desc=desc, total=total, initial=initial, **tqdm_kwargs)
    return _Lines(iterable, desc, total, initial)
