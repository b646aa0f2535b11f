"""The fields one table cell is compared on (settings/official.py compare), each as (ours, theirs) with theirs
read from official.yaml: the model behind the row and the d_phi behind its discriminator (their training recipe
and length, official.yaml: recipes) and the discriminator itself. A method's own fields (DGflow's, DOT's against
official.yaml dot.images) live in its module, refine/methods/<kind>.py (``compared_with``).

Every function returns two dicts with the same keys (a field name as the table captions show it -> value), so
the caller can compare them key by key. Nothing here writes an expected value of its own.
"""

from __future__ import annotations

from typing import Optional

from ..resolve import corrector_base, density_ratio, raw_logit_from

# what a cell shows for a recipe key our model block does not have (the setting is fixed in our code)
NOT_A_SETTING = "(fixed in our code)"


def critic_of(dataset: str, model: str) -> str:
    return f"{model} ({dataset})"


def recipe_fields(config: dict, model: str, source: str, entry: dict, recipes: dict, *,
                  role: str = "") -> tuple[dict, dict]:
    """(ours, theirs) for how ``model`` (from ``source``) was made, against the official config ``entry``'s
    generator: its length (the checkpoint's name, else the recipe's) and, for a model the pipeline trains, each
    value its recipe fixes (official.yaml recipes.<entry.recipe>). ``role`` prefixes the field names ('d_phi ')
    when the model is the one behind a borrowed discriminator."""
    recipe = recipes.get(entry.get("recipe") or "", {})
    length = entry["generator"]["iterations"] or recipe.get("iterations")
    spec = config["models"][model]
    ours, theirs = {}, {}
    if source != "trained":  # an imported checkpoint: the authors' own file, only its length to check
        if entry["generator"]["iterations"]:
            theirs[f"{role}model iterations"] = entry["generator"]["iterations"]
            ours[f"{role}model iterations"] = config["sources"].get(source, {}).get("image_iteration")
        return ours, theirs
    if length:
        theirs[f"{role}model iterations"], ours[f"{role}model iterations"] = length, spec["train"]["iterations"]
    parts = [("train", recipe.get("train", {})), ("arch", recipe.get("arch", {}))]
    if entry["discriminator"]["kind"] == "c_wgan":  # the gradient penalty belongs to the WGAN-GP runs only
        parts.append(("train", recipe.get("train_wgan", {})))
    for part, values in parts:
        for key, value in values.items():
            field = f"{role}{key} ({part})"
            mine = spec.get(part, {}).get(key, NOT_A_SETTING)
            theirs[field], ours[field] = value, list(mine) if isinstance(mine, tuple) else mine
    return ours, theirs


def our_d(config: dict, model: str, dataset: str, source: str,
          discriminator: Optional[str]) -> tuple[dict, Optional[dict]]:
    """How a row's d is made ({'discriminator', 'd_phi', 'corrector'}) and the (dataset, model, source) of its
    d_phi when that is another model's critic (None for the model's own)."""
    if discriminator == "raw":
        borrowed = raw_logit_from(config, model, dataset)
        d_phi = critic_of(dataset, model) if borrowed is None else critic_of(borrowed["dataset"], borrowed["model"])
        return {"discriminator": "raw", "d_phi": d_phi, "corrector": None}, borrowed
    base = corrector_base(config, model, dataset)
    if base is not None:  # d_lambda: an SN-DCGAN discriminator, the release's t_sndcgan
        estimator = density_ratio(config, model)
        # an untrained corrector (steps 0) leaves d = d_phi: no corrector in effect, unless the model's source
        # publishes one (config.sources.<s>: the release's *_DRC.pth, used as is)
        published = estimator.get("use_published", False) and source != "trained"
        trained = estimator.get("steps", 1) > 0 or published
        return {"discriminator": "finetuned", "d_phi": critic_of(base["dataset"], base["model"]),
                "corrector": "t_sndcgan" if trained else None}, base
    return {"discriminator": "finetuned", "d_phi": critic_of(dataset, model), "corrector": None}, None


def d_phi_recipe_fields(config: dict, borrowed: Optional[dict], d_entry: dict, recipes: dict,
                        own_model: str) -> tuple[dict, dict]:
    """(ours, theirs) for the model behind a borrowed d_phi (prefixed 'd_phi '): the release's d comes from the
    training run of another config (d_entry, official.yaml discriminator.trained_with), whose recipe and length
    it shares. Nothing when d is the row's own model's (its recipe is compared as the model's)."""
    if borrowed is None or borrowed["model"] == own_model:
        return {}, {}
    run = {**d_entry, "generator": {**d_entry["generator"], "iterations": d_entry["discriminator"]["iterations"]}}
    return recipe_fields(config, borrowed["model"], borrowed["source"], run, recipes, role="d_phi ")
