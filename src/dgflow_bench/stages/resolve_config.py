"""`dgflow-bench resolve-config`: write the validated, default-filled config (results/config.resolved.json)."""

from __future__ import annotations

from ..io import write_json


def run(params: dict, out: str) -> None:
    write_json(out, params)
