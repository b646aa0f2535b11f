"""Helpers shared by the stages that read a dataset for training: the modality's minibatch sampler."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..modalities import MODALITIES
from ..registry import DATASETS, lookup
from ..runtime import array_sampler


def load_training_data(dataset: str, data_file: str, device: torch.device
                       ) -> tuple[Callable[[int, torch.Generator], torch.Tensor], dict]:
    """(real minibatch sampler in network-input form, data info) for ``dataset``."""
    modality = MODALITIES[lookup(DATASETS, dataset, "dataset").suite]
    with np.load(data_file, allow_pickle=False) as arrays:
        info = modality.data_info(arrays)
        train = modality.load_train(arrays["train"]).to(device)
    sample = array_sampler(train)
    return (lambda n, rng: modality.to_model_input(sample(n, rng), info)), info
