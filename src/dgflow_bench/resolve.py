"""How one run's settings resolve from a validated config: the `overrides` that apply to a (dataset, model)
and the critics a model borrows (logit_from, a corrector's d_phi, on d_phi_dataset's data). Pure functions of
the config dict, below every layer that needs them (the plan, the authors'-settings comparison, benchmarks);
config.py re-exports them."""

from __future__ import annotations


def d_phi_dataset(config: dict, model: str, dataset: str) -> str:
    """The dataset whose critic ``model`` borrows on ``dataset`` (models.<model>.d_phi_dataset; the release's
    STL10 32 px rows borrow the 48 px discriminator)."""
    return config["models"][model].get("d_phi_dataset", {}).get(dataset, dataset)


def corrector_base(config: dict, model: str, dataset: str) -> dict | None:
    """{'dataset', 'model', 'source'} of the frozen d_phi under ``model``'s corrector on ``dataset``, or None
    when its fine-tuned discriminator is no corrector."""
    estimator = density_ratio(config, model)
    if estimator["kind"] != "corrector":
        return None
    return {"dataset": d_phi_dataset(config, model, dataset), "model": estimator["base_model"],
            "source": estimator["base_source"]}


def raw_logit_from(config: dict, model: str, dataset: str) -> dict | None:
    """{'dataset', 'model', 'source'} whose critic is ``model``'s raw discriminator on ``dataset``, or None for
    its own critic."""
    borrowed = config["models"][model].get("logit_from")
    if borrowed is None:
        return None
    return {"dataset": d_phi_dataset(config, model, dataset), "model": borrowed["model"], "source": borrowed["source"]}


def apply_overrides(config: dict, entries: list[dict]) -> dict:
    """{'refine', 'methods'}: copies of the top-level blocks with ``entries`` (overrides items) merged in order."""
    refine, methods = dict(config["refine"]), {name: dict(spec) for name, spec in config["methods"].items()}
    for entry in entries:
        refine.update(entry.get("refine", {}))
        for name, block in entry.get("methods", {}).items():
            if name in methods:  # an earlier entry's `rows` may have dropped it
                methods[name].update(block)
        if "rows" in entry:  # only these refinement rows for the runs it matches
            methods = {name: spec for name, spec in methods.items() if name in entry["rows"]}
    return {"refine": refine, "methods": methods}


def run_settings(config: dict, dataset: str, model: str) -> dict:
    """{'refine': ..., 'methods': ...} of one run: the top-level blocks with the `overrides` entries that match
    it applied in order. Every consumer of refine / method settings reads them through this."""
    entries = [e for e in config.get("overrides", [])
               if dataset in e.get("datasets", [dataset]) and model in e.get("models", [model])]
    return apply_overrides(config, entries)


def run_methods(config: dict, dataset: str, model: str) -> list[str]:
    """The refinement rows (method names, in config order) of one run; overrides' `rows` can drop some."""
    return list(run_settings(config, dataset, model)["methods"])


def density_ratio(config: dict, model: str) -> dict:
    """The estimator behind the model's `finetuned` discriminator. Only image models have a choice (their
    schema's density_ratio key, default-filled): 2-D and text models have no d_phi to borrow, only the
    logistic fine-tune of their own critic."""
    return config["models"][model].get("density_ratio", {"kind": "logistic"})
