"""Per-job runtime plumbing: device choice, thread count, seeded generators, latent samplers,
fingerprints of the inputs that change a result."""

from __future__ import annotations

import hashlib
import json
from typing import Callable

import numpy as np
import torch


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available; set device: auto or cpu")
    return torch.device(name)


def set_threads(threads: int) -> None:
    # Results are bit-identical only for a fixed thread count (reduction order), so it is always explicit.
    torch.set_num_threads(max(1, int(threads)))


def seeded_generator(seed: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(seed))


def latent_sampler(prior: str, dim: int, device: torch.device) -> Callable[[int, torch.Generator], torch.Tensor]:
    if prior == "uniform":
        return lambda n, rng: torch.rand(n, dim, generator=rng, device=device) * 2.0 - 1.0
    if prior == "normal":
        return lambda n, rng: torch.randn(n, dim, generator=rng, device=device)
    raise ValueError(f"unknown latent prior {prior!r}: use 'uniform' (U[-1, 1]) or 'normal' (N(0, I))")


def array_sampler(data: torch.Tensor) -> Callable[[int, torch.Generator], torch.Tensor]:
    """Minibatches drawn with replacement from an in-memory array, driven by the loop's generator."""

    def sample(n: int, rng: torch.Generator) -> torch.Tensor:
        idx = torch.randint(data.shape[0], (n,), generator=rng, device=rng.device)
        return data[idx.to(data.device)]

    return sample


def fingerprint(*parts) -> str:
    """SHA-256 of a JSON rendering of ``parts``: equal iff every part is equal."""
    blob = json.dumps(parts, sort_keys=True, default=lambda o: np.asarray(o).tolist())
    return hashlib.sha256(blob.encode()).hexdigest()
