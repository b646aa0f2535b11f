"""Full-state training checkpoints: networks, optimisers, step and every RNG state, written atomically,
so a killed job resumes and ends bit-identical (on CPU, same thread count)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..errors import CheckpointError
from ..io import torch_save


def capture_rng(rng: torch.Generator) -> dict[str, Any]:
    state = {
        "loop": rng.get_state(),
        "torch": torch.get_rng_state(),
        # numpy's legacy global state as a tensor: weights_only loading accepts tensors, not ndarrays
        "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
        "numpy_pos": int(np.random.get_state()[2]),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(rng: torch.Generator, state: dict[str, Any]) -> None:
    rng.set_state(state["loop"])
    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_state(path: str | Path, *, modules: dict, optimizers: dict, step: int,
                        rng: torch.Generator, fingerprint: str, history: list) -> None:
    torch_save(
        {
            "modules": {k: m.state_dict() for k, m in modules.items()},
            "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
            "step": step,
            "rng": capture_rng(rng),
            "fingerprint": fingerprint,
            "history": history,
        },
        path,
    )


def load_training_state(path: str | Path, *, modules: dict, optimizers: dict, rng: torch.Generator,
                        fingerprint: str) -> Optional[dict]:
    """Restore a checkpoint written by the same configuration; return None (start fresh) when there is
    none or it belongs to another configuration."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torn file cannot happen (atomic writes), but a foreign one can
        # CheckpointError (a RuntimeError, as before) is one the CLI prints as a sentence, not a traceback
        detail = str(exc).splitlines()[0].split(". ")[0]  # torch appends paragraphs of advice
        raise CheckpointError(f"the training state {path} is damaged or not a training state ({detail}); "
                              f"delete it to start the training over: rm {path}") from exc
    if state.get("fingerprint") != fingerprint:
        return None
    for k, m in modules.items():
        m.load_state_dict(state["modules"][k])
    for k, o in optimizers.items():
        o.load_state_dict(state["optimizers"][k])
    restore_rng(rng, state["rng"])
    return state
