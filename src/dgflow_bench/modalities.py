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
    # refined samples (model output) -> compact array stored per snapshot
    to_storage: Callable[[torch.Tensor], np.ndarray]


def _toy2d() -> Modality:
    return Modality(
        data_info=lambda arrays: {"dim": int(arrays["train"].shape[1])},
        load_train=lambda train: torch.from_numpy(np.asarray(train, dtype=np.float32)),
        to_model_input=lambda batch, info: batch,
        to_storage=lambda x: x.detach().cpu().numpy().astype(np.float32),
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
        to_storage=lambda x: x.detach().argmax(dim=-1).cpu().numpy().astype(np.uint16),
    )


MODALITIES: dict[str, Modality] = {"toy2d": _toy2d(), "text": _text()}
