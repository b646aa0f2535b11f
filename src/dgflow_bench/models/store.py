"""The pipeline's model file: generator + critic (or discriminator) weights, their architecture specs and
the latent prior, in one ``torch.save`` dict that loads with ``weights_only=True``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch

from ..io import torch_save
from ..registry import ARCHITECTURES
from . import (brought, corrected, dcgan, glow, kernel_critics, mlp, release_cnn, resnet,  # noqa: F401
               text_cnn, vae)  # (they register their architectures)
from .chainer_npz import CheckpointError


def build_from_spec(spec: dict, kind: str):
    """Rebuild a network (fresh weights) from its ``.spec`` with the architecture registered under its 'arch'
    (MLP specs have none: ``mlp_<kind>``). Entries are ``(spec, rebuild) -> nn.Module``; ``rebuild`` is this
    function, for networks made of parts."""
    arch = spec.get("arch") or f"mlp_{kind}"
    if arch not in ARCHITECTURES:
        raise CheckpointError(f"unknown network architecture {arch!r} in a model file; registered: "
                              f"{', '.join(ARCHITECTURES.names())}")
    return ARCHITECTURES[arch](spec, build_from_spec)


def save_model_file(path: str | Path, *, generator=None, critic=None, latent: Optional[dict] = None,
                    meta: Optional[dict] = None) -> None:
    obj: dict = {"format": "dgflow-bench-model/1", "meta": meta or {}}
    if generator is not None:
        obj["generator"] = {"spec": generator.spec, "state": generator.state_dict()}
    if critic is not None:
        obj["critic"] = {"spec": critic.spec, "state": critic.state_dict()}
    if latent is not None:
        obj["latent"] = latent
    torch_save(obj, path)


def load_model_file(path: str | Path, config_key: str = "") -> dict:
    """Return {'generator': nn.Module?, 'critic': nn.Module?, 'latent': dict?, 'meta': dict} on CPU."""
    path = Path(path)
    hint = f" Fix or regenerate it (config key: {config_key})." if config_key else " Delete it and rerun."
    if not path.exists():
        raise CheckpointError(f"model file {path} does not exist.{hint}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"model file {path} is corrupt or not a dgflow-bench model ({exc}).{hint}") from exc
    if not isinstance(obj, dict) or obj.get("format") != "dgflow-bench-model/1":
        raise CheckpointError(f"model file {path} is not a dgflow-bench model file.{hint}")
    out = {"latent": obj.get("latent"), "meta": obj.get("meta", {})}
    for kind in ("generator", "critic"):
        if kind in obj:
            net = build_from_spec(obj[kind]["spec"], kind)
            net.load_state_dict(obj[kind]["state"])
            out[kind] = net.eval()
    return out
