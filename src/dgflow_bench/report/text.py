"""The text suite's report: table text_js.{csv,md,tex} (rows = refinement methods, columns = JS-n) and
sample lines before and after refinement from the same latents (text_samples.md)."""

from __future__ import annotations


import numpy as np

from ..data.text import decode
from ..io import read_json, write_text
from ..metrics.text_suite import metric_directions
from ..snapshots import open_snapshots
from .cost import write_cost_figures
from .tables import STATUS_NOTE, final_rows, samples_phrase, seeds_phrase, write_tables


def build(metric_files: list[str], params: dict, tables_stem: str, samples_path: str,
          cost_files: list[str]) -> None:
    results = [read_json(p) for p in metric_files]
    frame = final_rows(metric_files, results)
    caption = (
        f"Billion Words, character-level WGAN-GP: JS-n in bits (lower is better) between the n-gram "
        f"distributions of {samples_phrase(params)} generated lines (argmax per position, padding included) and "
        f"the {params['evaluate']['js_reference']} reference lines; token unit: Unicode code points; values at each "
        f"method's configured final step."
    )
    write_tables(frame, tables_stem, caption=caption + seeds_phrase(frame) + STATUS_NOTE + _setting_note(results),
                 directions=metric_directions(), order=params["method_order"])
    write_text(samples_path, _sample_lines(results, params))
    js = lambda mine: sorted({k for r in mine for k in r["per_step"][0] if k.startswith("js")})  # noqa: E731
    write_cost_figures(results, cost_files, js, params["method_order"])


def _setting_note(results: list[dict]) -> str:
    """Which rows reproduce the authors' settings and, for the others, what differs (ours vs theirs)."""
    rated = [r for r in results if r.get("setting") is not None]
    if not rated:
        return ""
    variants = sorted(f"{r['method']}: {'; '.join(r['setting']['differs'])}" for r in rated
                      if r["setting"]["setting"] == "variant")
    note = (" setting: 'official' where the row reproduces the authors' settings (model, recipe, data and JS "
            "reference of the DGflow first author's WGAN-GP port, settings/official.yaml text.author_port), "
            "else 'variant'; the official DGflow release has no text code, so every refinement row is a variant.")
    return note + (" Variants (ours vs theirs): " + " | ".join(variants) + "." if variants else "")


def _sample_lines(results: list[dict], params: dict, count: int = 8) -> str:
    order = params["method_order"]
    results = sorted(results, key=lambda r: (r["dataset"], r["model"], r["source"], order.index(r["method"])))
    out = ["# Sample lines before and after refinement (same latents; ` is padding)\n"]
    for result in results:
        with np.load(result["data_file"], allow_pickle=False) as data:
            vocab = [str(v) for v in data["vocab"]]
        with open_snapshots(result["samples_file"]) as snapshots:
            base = decode(snapshots.read(0, count), vocab)
            final = decode(snapshots.read(result["final_step"], count), vocab)
        out.append(f"## {result['dataset']} / {result['model']} / {result['source']} / {result['method']} "
                   f"(step {result['final_step']})\n")
        out.append("| base | refined |\n|---|---|")
        out.extend(f"| `{_cell(b)}` | `{_cell(r)}` |" for b, r in zip(base, final))
        out.append("")
    return "\n".join(out) + "\n"


def _cell(line: str) -> str:
    return line.replace("|", "\\|").replace("`", "·")
