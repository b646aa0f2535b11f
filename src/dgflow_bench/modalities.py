"""What differs between kinds of data once the arrays exist: how a training array is held in memory, how a
minibatch becomes network input, and how refined samples are stored. One entry per suite."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch


@dataclass(frozen=True)
class Modality:
    # npz arrays of the data stage -> facts the networks need (e.g. vocabulary size)
    data_info: Callable[[dict], dict]
    # the 'train' array -> tensor kept in memory for minibatches
    load_train: Callable[[np.ndarray], torch.Tensor]
    # a minibatch of that tensor -> what the critic reads (and the generator outputs)
    to_model_input: Callable[[torch.Tensor, dict], torch.Tensor]
    # refined samples (model output), storage form ('default', or 'uint8' / 'float32' for images) -> the
    # compact array stored per snapshot
    to_storage: Callable[[torch.Tensor, str], np.ndarray]


def _toy2d() -> Modality:
    return Modality(
        data_info=lambda arrays: {"dim": int(arrays["train"].shape[1])},
        load_train=lambda train: torch.from_numpy(np.asarray(train, dtype=np.float32)),
        to_model_input=lambda batch, info: batch,
        to_storage=lambda x, storage="default": x.detach().cpu().numpy().astype(np.float32),
    )


def _text() -> Modality:
    def info(arrays: dict) -> dict:
        return {"vocab_size": int(len(arrays["vocab"])), "seq_len": int(arrays["train"].shape[1])}

    def one_hot(batch: torch.Tensor, data_info: dict) -> torch.Tensor:
        return torch.nn.functional.one_hot(batch.long(), data_info["vocab_size"]).float()

    return Modality(
        data_info=info,
        # int16 halves the memory of 10M x 32 token ids; vocabularies stay below 32,768
        load_train=lambda train: torch.from_numpy(np.asarray(train).astype(np.int16)),
        to_model_input=one_hot,
        # generated text is the argmax of the per-position softmax
        to_storage=lambda x, storage="default": x.detach().argmax(dim=-1).cpu().numpy().astype(np.uint16),
    )


def _images() -> Modality:
    """Images: the data stage stores uint8 (N, 3, H, W) RGB; the networks read and write float in [-1, 1].

    The training array stays a uint8 tensor in memory (a quarter of float32) and each minibatch becomes
    x / 127.5 - 1. Refined samples are stored in the form the metric protocol scores (metrics.protocols):
    'uint8' (the 'clean' protocol): round((x + 1) * 127.5), half to even as ``torch.round``, clamped to
    [0, 255] -- what a PNG of the sample holds; 'float32' (the 'dgflow-legacy' protocol): (x + 1) * 127.5
    clamped to [0, 255] and never rounded, as the paper fed its Inception network.
    """

    def info(arrays: dict) -> dict:
        train = arrays["train"]
        return {"channels": int(train.shape[1]), "image_size": int(train.shape[-1])}

    def to_model_input(batch: torch.Tensor, data_info: dict) -> torch.Tensor:
        return batch.float() / 127.5 - 1.0

    def to_storage(x: torch.Tensor, storage: str = "uint8") -> np.ndarray:
        pixels = (x.detach().float() + 1.0) * 127.5
        if storage == "float32":
            return pixels.clamp_(0, 255).cpu().numpy()
        if storage in ("uint8", "default"):
            return torch.round(pixels).clamp_(0, 255).to(torch.uint8).cpu().numpy()
        raise ValueError(f"image snapshots are stored as 'uint8' or 'float32', not {storage!r}")

    return Modality(
        data_info=info,
        load_train=lambda train: torch.from_numpy(np.ascontiguousarray(train, dtype=np.uint8)),
        to_model_input=to_model_input,
        to_storage=to_storage,
    )


MODALITIES: dict[str, Modality] = {"toy2d": _toy2d(), "text": _text(), "images": _images()}
