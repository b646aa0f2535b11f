"""One look per method for every figure of a run: a fixed (colour, marker, line style) per method name.

Matplotlib's default cycle has ten colours and restarts per axes, so with twelve methods two of them share a
colour, and a method's colour depends on which runs a figure happens to draw. Here a method's style depends
only on its place in the run's method order (the config's ``methods``, the report's ``method_order``), so it
is the same in the steps, cost and image figures of a run. Method i gets colour i mod 13, marker i mod 7
and line style i div 13 (mod 4): the first 13 methods differ in colour alone, and as 13 and 7 are coprime
the first 91 differ in (colour, marker), with the line style besides."""

from __future__ import annotations

from dataclasses import dataclass

# matplotlib's tab10 written out (no matplotlib import for a table of names), then black, navy and maroon:
# 13 colours, a prime, so colour and marker cycles never line up before 13 x 7 methods
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#000000", "#000075", "#800000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
LINE_STYLES = ("-", "--", ":", "-.")


@dataclass(frozen=True)
class Style:
    colour: str
    marker: str
    line: str

    def kwargs(self, hollow: bool = False) -> dict:
        """Keyword arguments of ``Axes.plot`` / ``Axes.errorbar``; ``hollow`` (unfilled markers) tells a
        second source of the same method apart in one figure."""
        out = {"color": self.colour, "marker": self.marker, "linestyle": self.line, "ms": 4}
        if hollow:
            out["markerfacecolor"] = "none"
        return out


def style_at(index: int) -> Style:
    if index < 0:
        raise ValueError(f"a method's place in the order is >= 0, got {index}")
    return Style(COLOURS[index % len(COLOURS)], MARKERS[index % len(MARKERS)],
                 LINE_STYLES[(index // len(COLOURS)) % len(LINE_STYLES)])


def method_styles(order: list[str], methods: list[str] | None = None) -> dict[str, Style]:
    """{method: Style} for every method of ``order`` (the run's method order) and, after them in sorted
    order, any of ``methods`` it does not list (metric files of methods the report params do not name)."""
    names = list(dict.fromkeys(order))
    names += sorted(set(methods or []) - set(names))
    return {name: style_at(i) for i, name in enumerate(names)}


def run_styles(results: list[dict], order: list[str], label) -> dict[str, dict]:
    """{label(result): plot keyword arguments} for the metric files of one figure, in the method order: each
    run drawn in its method's style, hollow markers for every source but the first (sorted) of the figure."""
    styles = method_styles(order, [r["method"] for r in results])
    sources = sorted({r["source"] for r in results})
    ranked = sorted(results, key=lambda r: (list(styles).index(r["method"]), sources.index(r["source"])))
    return {label(r): styles[r["method"]].kwargs(hollow=r["source"] != sources[0]) for r in ranked}
