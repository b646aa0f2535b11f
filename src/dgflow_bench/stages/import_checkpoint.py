"""`dgflow-bench import-checkpoint`: turn published weights into the pipeline's model file, with the importer
the model's suite registers for the source (suites/*.py); it returns the nets, the latent prior they were
made for and the provenance of the files it read."""

from __future__ import annotations

from pathlib import Path

from ..catalog import MODELS, SOURCES, SUITES
from ..io import write_resolved_config
from ..models.store import save_model_file


def run(dataset: str, model: str, source: str, params: dict, out: str) -> None:
    if SOURCES[source].trained:
        raise ValueError(f"source {source!r} is made by the train stage, not imported")
    suite = SUITES[MODELS[model].suite]
    if source not in suite.importers:
        raise ValueError(f"source {source!r} has no checkpoints for {suite.name} models such as {model!r}; it has "
                         f"{sorted(s.name for _, s in SUITES.items() if source in s.importers)} models. Use source "
                         f"'trained' for {model}.")
    imported = suite.importers[source].load(dataset, model, params, Path(out).parent / "download")
    save_model_file(out, generator=imported.generator, critic=imported.critic, latent=imported.latent,
                    meta={"source": source, "model": model, "files": imported.files})
    # the hashes seen are recorded here even where none was published to check them against
    write_resolved_config(out, "import-checkpoint", params, dataset=dataset, model=model, files=imported.files)
