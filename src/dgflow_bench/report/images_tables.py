"""The image tables in the paper's layout: rows = dataset x model x source (and the metric's full name, which
carries the protocol), columns = the config's methods under the paper's column names, each followed by a
`paper` column holding the published value only where it is comparable (report.paper_values)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from ..io import write_text
from ..refine.methods import register_builtin
from ..registry import METHODS
from .paper_values import PublishedValue, parse_metric_name
from .spread import at_step, mean_pm_std
from .tables import _latex_escape, run_status

ROW_KEYS = ["dataset", "model", "source", "metric"]
FID_COLUMN_ORDER = ("Base", "DOT", "DGflow-KL", "DGflow-JS", "DGflow-logD", "DDLS")  # the paper's FID table
IS_COLUMN_ORDER = ("Base", "DDLS", "DOT", "DGflow-KL", "DGflow-JS", "DGflow-logD")  # the paper's IS table
IS_HEADERS = {"DGflow-KL": "DGflow"}  # the IS table shows DGflow with its default f (KL) as plain "DGflow"


@dataclass(frozen=True)
class MethodColumn:
    method: str  # the config's method name
    paper: str  # the paper's column it fills (published values are keyed by it)
    label: str  # our header


def paper_column(spec: dict) -> str:
    """The paper's column for one method block: its method module says (``paper_column``; e.g. DGflow's
    depends on f)."""
    register_builtin()  # the report may run without the catalog (a user's method is registered by then)
    return METHODS[spec["kind"]].paper_column(spec)


def method_columns(methods: dict[str, dict], column_order=FID_COLUMN_ORDER,
                   headers: dict[str, str] | None = None) -> list[MethodColumn]:
    """Columns in the paper's order (then the config's); two methods filling one paper column (e.g. DGflow-KL
    with two step sizes) are told apart by their method name."""
    headers = headers or {}
    papers = {method: paper_column(spec) for method, spec in methods.items()}
    config_index = {method: i for i, method in enumerate(methods)}

    def rank(method: str) -> tuple[int, int]:
        paper = papers[method]
        return (column_order.index(paper) if paper in column_order else len(column_order), config_index[method])

    out = []
    for method in sorted(methods, key=rank):
        paper = papers[method]
        label = headers.get(paper, paper)
        if sum(p == paper for p in papers.values()) > 1:
            label = f"{label} ({method})"
        out.append(MethodColumn(method=method, paper=paper, label=label))
    return out


def final_metrics(result: dict) -> dict[str, float]:
    return at_step(result)[0]


@dataclass
class MethodTable:
    frame: pd.DataFrame  # numbers (CSV)
    shown: pd.DataFrame  # formatted text with source markers (Markdown / LaTeX)
    metric_names: list[str]
    notes: list[str]  # published values that were not placed, and why
    sources: list[str]  # "[n] citation: where"
    marks: list[str] = field(default_factory=list)  # † diverged cells, and why
    has_settings: bool = False  # the cells carry official / variant


def _fmt(value, paper_style: bool = True) -> str:
    """Two decimals as the paper prints FID / IS; more digits for test-network numbers, whose differences
    between methods are tiny and would otherwise all print alike."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if not paper_style:
        return f"{value:.6g}"
    return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3g}"


def method_table(results: list[dict], columns: list[MethodColumn], kind: str,
                 published: list[PublishedValue]) -> MethodTable:
    by_method = {c.method: c for c in columns}
    cells: dict[tuple, dict[str, float]] = {}
    spreads: dict[tuple, float] = {}  # (dataset, model, source, metric, column label): std over seeds
    diverged: set[tuple] = set()  # (dataset, model, source, column label): shown with a dagger
    diverged_notes = []
    settings: dict[tuple, str] = {}  # (dataset, model, source, column label) -> official | variant
    for result in results:
        if result["method"] not in by_method:
            raise ValueError(f"metric file of method {result['method']!r}, which the report params do not list "
                             f"({sorted(by_method)})")
        if result.get("diverged"):
            diverged.add((result["dataset"], result["model"], result["source"], by_method[result["method"]].label))
            diverged_notes.append(f"† {result['dataset']} / {result['model']} / {result['source']} / "
                                  f"{result['method']}: {run_status(result)}")
        setting = result.get("setting")
        if setting is not None:
            cell = (result["dataset"], result["model"], result["source"], by_method[result["method"]].label)
            settings[cell] = setting["setting"]
        means, spread = at_step(result)
        for name, value in means.items():
            parsed = parse_metric_name(name)
            if parsed is not None and parsed.kind == kind:
                key = (result["dataset"], result["model"], result["source"], name)
                cells.setdefault(key, {})[by_method[result["method"]].label] = value
                if spread.get(name) is not None:
                    spreads[key + (by_method[result["method"]].label,)] = spread[name]
    mine = {(p.dataset, p.model, p.column): p for p in published if p.metric == kind}
    markers: dict[tuple[str, str], int] = {}
    placed, notes, rows, shown_rows = set(), [], [], []

    source_notes: dict[tuple[str, str], list[str]] = {}

    def marker(p: PublishedValue) -> str:
        notes_here = source_notes.setdefault((p.citation, p.where), [])
        if p.note and p.note not in notes_here:  # e.g. "DDLS's own base model", shown with the source
            notes_here.append(p.note)
        return f"[{markers.setdefault((p.citation, p.where), len(markers) + 1)}]"

    for key in sorted(cells):
        dataset, model, _source, name = key
        paper_style = parse_metric_name(name).weights == "reference"
        row = dict(zip(ROW_KEYS, key))
        shown = dict(row)
        for column in columns:
            value = cells[key].get(column.label)
            row[column.label], shown[column.label] = value, _fmt(value, paper_style)
            if value is not None:
                shown[column.label] = mean_pm_std(value, spreads.get(key + (column.label,)),
                                                  lambda v: _fmt(v, paper_style))
            if (dataset, model, _source, column.label) in diverged and value is not None:
                shown[column.label] += " †"
            if settings.get((dataset, model, _source, column.label)) == "variant" and value is not None:
                shown[column.label] += " ‡"
            row[f"{column.label} std"] = spreads.get(key + (column.label,))
            row[f"{column.label} setting"] = settings.get((dataset, model, _source, column.label))
            pub, paper, paper_text = mine.get((dataset, model, column.paper)), None, ""
            if pub is not None:
                reasons = pub.mismatch(name)
                if reasons:  # never beside our number as if comparable: the caption says why it is left out
                    notes.append(f"{dataset} / {model} / {column.label}: published {pub.value:g} {marker(pub)} "
                                 f"({pub.metric_name}) left out beside our {name}: {'; '.join(reasons)}")
                else:
                    paper, paper_text = pub.value, f"{_fmt(pub.value)} {marker(pub)}"
                placed.add(pub.key)
            row[f"{column.label} paper"], shown[f"{column.label} paper"] = paper, paper_text
        rows.append(row)
        shown_rows.append(shown)
    for pub in published:
        if pub.metric == kind and pub.key not in placed:
            notes.append(f"{pub.dataset} / {pub.model} / {pub.column}: published {pub.value:g} {marker(pub)} "
                         f"({pub.metric_name}) has no run of ours in this table")
    marks = sorted(set(diverged_notes))
    headers = ROW_KEYS + [h for c in columns for h in (c.label, f"{c.label} paper")]
    setting_columns = [f"{c.label} setting" for c in columns] if settings else []
    sources = [f"[{n}] {citation}: {where}" + "".join(f" ({note})" for note in source_notes[(citation, where)])
               for (citation, where), n in markers.items()]
    std_columns = [f"{c.label} std" for c in columns] if spreads else []  # over refinement seeds
    # the CSV says official / variant per cell
    frame = pd.DataFrame(rows, columns=headers + std_columns + setting_columns)
    numbers = headers[len(ROW_KEYS):] + std_columns
    frame[numbers] = frame[numbers].astype(float)  # None -> NaN: empty CSV cells
    return MethodTable(frame=frame, shown=pd.DataFrame(shown_rows, columns=headers),
                       metric_names=sorted({k[3] for k in cells}), notes=notes, sources=sources, marks=marks,
                       has_settings=bool(settings))


def caption_for(table: MethodTable, title: str, columns: list[MethodColumn], extractor: str,
                settings_file: str | None = None) -> str:
    """The table's caption; ``settings_file``: where the official / variant account is (SETTINGS_TABLE)."""
    protocols = "; ".join(p.describe() for p in map(parse_metric_name, table.metric_names))
    mapping = ", ".join(f"{c.method} -> {c.label}" for c in columns)
    parts = [
        f"{title}. Rows: dataset x model x source x metric; the metric's name carries how it was measured: "
        f"{protocols or 'no rows'}. Features from {extractor}. Columns: the config's methods ({mapping}), each at "
        f"its configured final step, with the published value in its 'paper' column.",
        "A paper value is filled in only where dataset, model, column and our metric name (protocol, sample "
        "count, reference and Inception weights) all match the published one; numbers tagged RANDOM-WEIGHTS or "
        "NONREF-WEIGHTS never get one. Empty cells: not run here, or no known published value.",
    ]
    if table.has_settings:
        parts.append(f"Setting: an unmarked cell reproduces the authors' settings for its row (settings/"
                     f"official.yaml); ‡ marks a variant. Which fields differ, ours vs theirs, with the source of "
                     f"theirs: {settings_file or SETTINGS_TABLE}. The CSV has a '<column> setting' column per method.")
    if table.marks:
        parts.append("Marked cells: " + " | ".join(table.marks) + ".")
    if table.notes:
        parts.append("Published values not shown in the table: " + " | ".join(table.notes) + ".")
    if table.sources:
        parts.append("Sources: " + " ".join(table.sources) + ".")
    return "\n\n".join(parts)


def write_method_table(table: MethodTable, stem: str | Path, caption: str) -> None:
    """``stem``.csv (numbers), .md and .tex (caption + formatted cells with source markers)."""
    stem = Path(stem)
    write_text(stem.with_suffix(".csv"), table.frame.to_csv(index=False))
    md = tabulate(table.shown, headers="keys", tablefmt="github", showindex=False, disable_numparse=True)
    write_text(stem.with_suffix(".md"), f"{caption}\n\n{md}\n")
    tex_caption = _latex_escape(" ".join(caption.split("\n\n")))  # a blank line inside \caption{} breaks LaTeX
    latex = tabulate(table.shown, headers="keys", tablefmt="latex_booktabs", showindex=False, disable_numparse=True)
    write_text(stem.with_suffix(".tex"), "\\begin{table}\n\\centering\n\\caption{" + tex_caption +
               "}\n" + latex + "\n\\end{table}\n")


# ---------------------------------------------------------------- the official / variant account

SETTINGS_TABLE = "results/tables/images_settings.md"
SETTINGS_COLUMNS = ["cell", "setting", "official config", "field", "ours", "theirs", "source"]
_DIFFERENCE = re.compile(r"^(?P<field>[^:]+): (?P<ours>.*) vs (?P<theirs>.*)$")


def _difference(item) -> dict:
    """One entry of a cell's ``differs`` (settings/official.compare) as {field, ours, theirs[, source]}: a dict
    as is, a 'field: ours vs theirs' line split, any other line (e.g. 'no official config for ...') as its
    field alone."""
    if isinstance(item, dict):
        return {k: item.get(k, "") for k in ("field", "ours", "theirs", "source") if k in item}
    found = _DIFFERENCE.match(str(item))
    return found.groupdict() if found else {"field": str(item), "ours": "", "theirs": ""}


def settings_rows(results: list[dict], columns: list[MethodColumn]) -> pd.DataFrame:
    """One row per (cell, differing field), one row for an official cell: the account the image tables'
    captions point to (SETTINGS_TABLE). The source is the entry's own where compare names one, else the
    settings/official.yaml entry the cell was compared with (each entry cites the authors' file)."""
    labels = {c.method: c.label for c in columns}
    order = {c.method: i for i, c in enumerate(columns)}
    rows = []
    for result in sorted(results, key=lambda r: (r["dataset"], r["model"], r["source"],
                                                  order.get(r["method"], len(order)))):
        setting = result.get("setting")
        if setting is None:
            continue
        cell = " / ".join([result["dataset"], result["model"], result["source"],
                           labels.get(result["method"], result["method"])])
        official = setting.get("official") or ""
        fallback = f"settings/official.yaml: {official}" if official else "settings/official.yaml"
        base = {"cell": cell, "setting": setting["setting"], "official config": official}
        differs = [_difference(item) for item in setting.get("differs") or []]
        sources = setting.get("sources") or {}
        for item in differs or [{"field": "", "ours": "", "theirs": ""}]:
            source = item.get("source") or sources.get(item["field"]) or (fallback if item["field"] else "")
            rows.append({**base, "field": item["field"], "ours": item["ours"], "theirs": item["theirs"],
                         "source": source})
    return pd.DataFrame(rows, columns=SETTINGS_COLUMNS)


def write_settings_table(frame: pd.DataFrame, stem: str | Path) -> None:
    """``stem``.csv and .md: every cell's setting and, for a variant, each field that differs."""
    stem = Path(stem)
    write_text(stem.with_suffix(".csv"), frame.to_csv(index=False))
    caption = ("Images: the authors' settings, cell by cell. setting: official where the cell reproduces the "
               "authors' settings for its row, else variant, with one line per field that differs: ours vs "
               "theirs, and where theirs is recorded (settings/official.yaml cites the authors' file for each "
               "entry). Cells are dataset / model / source / column of the FID and IS tables.")
    md = tabulate(frame, headers="keys", tablefmt="github", showindex=False, disable_numparse=True)
    write_text(stem.with_suffix(".md"), f"{caption}\n\n{md}\n")
