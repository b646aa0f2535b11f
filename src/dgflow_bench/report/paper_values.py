"""Published FID / IS values (published_values.yaml, shipped with the package) and the rule that decides
whether one may stand beside a number of ours.

A metric name made by reference_stats.fid_name / is_name carries how the number was made: the sample count,
the reference (FID), the protocol (no tag = 'dgflow-legacy') and a weights flag (_RANDOM-WEIGHTS,
_NONREF-WEIGHTS). A published value records the name a number measured its way would get, so "comparable"
is "same name": another N, protocol, reference or extractor weights gives another name, and the reason is
spelled out from the parsed fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..metrics.protocols import PROTOCOLS

DEFAULT_PATH = Path(__file__).with_name("published_values.yaml")
PAPER_COLUMNS = ("Base", "DOT", "DGflow-KL", "DGflow-JS", "DGflow-logD", "DDLS")
LEGACY = "dgflow-legacy"
WEIGHT_FLAGS = ("RANDOM-WEIGHTS", "NONREF-WEIGHTS")

_REQUIRED = {"dataset", "model", "column", "metric", "value", "protocol", "n_samples", "metric_name", "source"}
_OPTIONAL = {"steps", "note"}
_SOURCE_KEYS = {"citation", "where"}
# an optional engine prefix marks a second computation of the same metric (images_suite's
# 'crosscheck-pytorch-fid_fid50k_...'): a row of its own, never matched to a published value
_NAME = re.compile(r"^(?:(?P<engine>[\w-]+?)_)?(?P<kind>fid|is)(?P<n>\d+)(?P<k>k?)_(?P<rest>.+)$")


class PublishedValuesError(ValueError):
    pass


@dataclass(frozen=True)
class MetricName:
    """The fields a metric name carries."""

    name: str
    kind: str  # 'fid' | 'is'
    n_samples: int
    protocol: str
    weights: str  # 'reference' | 'RANDOM-WEIGHTS' | 'NONREF-WEIGHTS'
    detail: str  # FID: the reference ('cifar10-trainval'); IS: the splits ('10splits')
    engine: str = ""  # '' for the main computation, else the prefix naming the other engine

    def describe(self) -> str:
        weights = ("TF inception-2015-12-05 weights" if self.weights == "reference" else
                   f"{self.weights} feature net (not Inception: not FID/IS)")
        what = f"reference {self.detail}" if self.kind == "fid" else f"IS over {self.detail}"
        engine = f", computed by {self.engine}" if self.engine else ""
        return f"{self.name}: protocol '{self.protocol}', {self.n_samples} generated samples, {what}, {weights}{engine}"


def parse_metric_name(name: str) -> MetricName | None:
    """The fields of an FID / IS name; None for any other metric (js4, kde_ll, ...)."""
    match = _NAME.match(name)
    if not match:
        return None
    rest, weights = match["rest"], "reference"
    for flag in WEIGHT_FLAGS:
        if rest.endswith("_" + flag):
            rest, weights = rest[: -len(flag) - 1], flag
    protocol = LEGACY  # the legacy protocol is the one without a tag (reference_stats._protocol_tag)
    for candidate in PROTOCOLS:
        if candidate != LEGACY and rest.endswith("_" + candidate):
            rest, protocol = rest[: -len(candidate) - 1], candidate
    n = int(match["n"]) * (1000 if match["k"] else 1)
    return MetricName(name=name, kind=match["kind"], n_samples=n, protocol=protocol, weights=weights, detail=rest,
                      engine=match["engine"] or "")


@dataclass(frozen=True)
class PublishedValue:
    key: str
    dataset: str
    model: str
    column: str
    metric: str
    value: float
    protocol: str
    n_samples: int
    metric_name: str
    citation: str
    where: str
    steps: int | None = None
    note: str | None = None

    def mismatch(self, ours: str) -> list[str]:
        """Why a number named ``ours`` is not comparable to this one; [] when it is."""
        if ours == self.metric_name:
            return []
        mine, theirs = parse_metric_name(ours), parse_metric_name(self.metric_name)
        if mine is None or mine.kind != theirs.kind:
            return [f"{ours!r} is not a {theirs.kind.upper()} name"]
        reasons = [f"ours is computed by {mine.engine}"] if mine.engine else []
        if mine.weights != "reference":
            reasons.append(f"ours uses a {mine.weights} feature net, not the Inception weights")
        if mine.protocol != theirs.protocol:
            reasons.append(f"protocol '{mine.protocol}' vs '{theirs.protocol}'")
        if mine.n_samples != theirs.n_samples:
            reasons.append(f"{mine.n_samples} vs {theirs.n_samples} generated samples")
        if mine.detail != theirs.detail:
            reasons.append(f"{'reference' if mine.kind == 'fid' else 'IS splits'} {mine.detail} vs {theirs.detail}")
        return reasons or [f"metric {ours} vs {self.metric_name}"]


def _entry(key: str, raw) -> PublishedValue:
    if not isinstance(raw, dict):
        raise PublishedValuesError(f"entry {key!r}: expected a mapping, got {type(raw).__name__}")
    unknown = set(raw) - _REQUIRED - _OPTIONAL
    if unknown:
        raise PublishedValuesError(f"entry {key!r}: unknown keys {sorted(unknown)}; allowed: "
                                   f"{sorted(_REQUIRED | _OPTIONAL)}")
    missing = _REQUIRED - set(raw)
    if missing:
        raise PublishedValuesError(f"entry {key!r}: missing {sorted(missing)} (every value needs its source)")
    source = raw["source"]
    if not isinstance(source, dict) or set(source) != _SOURCE_KEYS or not all(
            isinstance(source[k], str) and source[k].strip() for k in _SOURCE_KEYS):
        raise PublishedValuesError(f"entry {key!r}: source must be {{citation: ..., where: ...}} (both non-empty "
                                   f"text), got {source!r}")
    value = raw["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PublishedValuesError(f"entry {key!r}: value must be a number, got {value!r}")
    if raw["column"] not in PAPER_COLUMNS:
        raise PublishedValuesError(f"entry {key!r}: column {raw['column']!r} is not one of {list(PAPER_COLUMNS)}")
    if raw["protocol"] not in PROTOCOLS:
        raise PublishedValuesError(f"entry {key!r}: unknown protocol {raw['protocol']!r}; known: {sorted(PROTOCOLS)}")
    parsed = parse_metric_name(str(raw["metric_name"]))
    expected = (raw["metric"], int(raw["n_samples"]), raw["protocol"], "reference", "")
    if parsed is None or (parsed.kind, parsed.n_samples, parsed.protocol, parsed.weights, parsed.engine) != expected:
        raise PublishedValuesError(
            f"entry {key!r}: metric_name {raw['metric_name']!r} does not say metric={raw['metric']}, "
            f"n_samples={raw['n_samples']}, protocol={raw['protocol']} with the reference Inception weights")
    return PublishedValue(key=key, dataset=raw["dataset"], model=raw["model"], column=raw["column"],
                          metric=raw["metric"], value=float(value), protocol=raw["protocol"],
                          n_samples=int(raw["n_samples"]), metric_name=raw["metric_name"],
                          citation=source["citation"], where=source["where"], steps=raw.get("steps"),
                          note=raw.get("note"))


def load_published(path: str | Path | None = None) -> list[PublishedValue]:
    """Every published value, validated; raises PublishedValuesError naming the offending entry."""
    path = Path(path) if path is not None else DEFAULT_PATH
    doc = yaml.safe_load(path.read_text()) or {}
    if not isinstance(doc, dict) or set(doc) - {"version", "entries"}:
        raise PublishedValuesError(f"{path}: top level must hold only 'version' and 'entries'")
    values = [_entry(str(key), raw) for key, raw in (doc.get("entries") or {}).items()]
    seen: dict[tuple, str] = {}
    for v in values:
        cell = (v.dataset, v.model, v.column, v.metric)
        if cell in seen:
            raise PublishedValuesError(f"entry {v.key!r}: same cell {cell} as entry {seen[cell]!r}")
        seen[cell] = v.key
    return values
