"""`dgflow-bench import-checkpoint`: turn published weights into the pipeline's model file."""

from __future__ import annotations

from pathlib import Path

from ..io import sha256_file, write_resolved_config
from ..models.chainer_npz import load_chainer_mlp
from ..models.published import fetch_dot_2d
from ..models.store import save_model_file
from ..registry import MODELS, lookup


def run(dataset: str, model: str, source: str, params: dict, out: str) -> None:
    if source != "dot-pretrained":
        raise ValueError(f"no importer for source {source!r}; importable sources: ['dot-pretrained']")
    entry = lookup(MODELS, model, "model")
    files = fetch_dot_2d(dataset, local_dir=params.get("local_dir"), url=params["url"],
                         cache_dir=Path(out).parent / "download")
    generator = load_chainer_mlp(files["generator"], "generator")
    critic = load_chainer_mlp(files["critic"], "critic")
    provenance = {role: {"file": str(p), "sha256": sha256_file(p)} for role, p in files.items()}
    save_model_file(out, generator=generator, critic=critic, latent=entry.latent({}),
                    meta={"source": source, "model": model, "files": provenance})
    write_resolved_config(out, "import-checkpoint", params, dataset=dataset, model=model, files=provenance)
