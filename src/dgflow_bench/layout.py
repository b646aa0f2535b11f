"""Where each intermediate of the workflow lives (the rules' output patterns, relative to the working
directory) and which files are made from it: the workflow uses this to find intermediates that were deleted
or damaged by hand, so they are rebuilt with everything made from them."""

from __future__ import annotations

from . import config as dg
from .io import config_path_for

DATA = "results/data/{dataset}.npz"
MODEL = "results/models/{dataset}/{model}/{source}/model.pt"
TRAINED_MODEL = "results/models/{dataset}/{model}/trained/model.pt"
DISC = "results/models/{dataset}/{model}/{source}/disc-finetuned.pt"
SAMPLES = "results/samples/{dataset}/{model}/{source}/{method}.npz"
METRICS = "results/metrics/{dataset}/{model}/{source}/{method}.json"


def sidecar(pattern: str) -> str:
    """The resolved-config sidecar of an output pattern (io.config_path_for, as a rule pattern string)."""
    return str(config_path_for(pattern))


def intermediates(config: dict) -> dict[str, set[str]]:
    """{file: files made directly from it} for every intermediate the config's runs produce."""
    users: dict[str, set[str]] = {}

    def made_from(source_file: str, *targets: str) -> None:
        users.setdefault(source_file, set()).update(targets)

    for d, m, s in dg.runs(config):
        names = {"dataset": d, "model": m, "source": s}
        data, model, disc = DATA.format(dataset=d), MODEL.format(**names), DISC.format(**names)
        if s == "trained":
            made_from(data, model)
        methods = dg.run_methods(config, d, m)
        for method in methods:
            samples, metrics = SAMPLES.format(**names, method=method), METRICS.format(**names, method=method)
            made_from(model, samples)
            if dg.reads_real_data(config, method, d, m):
                made_from(data, samples)
            made_from(samples, metrics)
            made_from(data, metrics)
            made_from(metrics)  # read by the report, whose tables are rebuilt when it is
        finetuned = [method for method in methods if dg.uses_finetuned(config, m, method)]
        if finetuned:
            made_from(model, disc)
            made_from(data, disc)
            made_from(disc, *(SAMPLES.format(**names, method=method) for method in finetuned))
            base = dg.corrector_base(config, m, d)
            if base is not None:
                made_from(MODEL.format(**base), disc)
    return users
