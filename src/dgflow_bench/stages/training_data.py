"""Helpers shared by the stages that read a dataset for training: the modality's minibatch sampler."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..catalog import DATASETS, SUITES
from ..runtime import array_sampler


def load_training_data(dataset: str, data_file: str, device: torch.device
                       ) -> tuple[Callable[[int, torch.Generator], torch.Tensor], dict]:
    """(real minibatch sampler in network-input form, data info) for ``dataset``."""
    sampler, info, _ = load_split_training_data(dataset, data_file, device, holdout=0, seed=0)
    return sampler, info


def load_split_training_data(dataset: str, data_file: str, device: torch.device, *, holdout: int, seed: int
                             ) -> tuple[Callable[[int, torch.Generator], torch.Tensor], dict,
                                        tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]]:
    """As ``load_training_data``, with ``holdout`` rows of the training array (a random subset drawn with
    ``seed``; at most a fifth of the rows, so small fixtures keep most of theirs for training) kept out of
    the minibatches and returned with a function that turns chunks of them into network input: the
    validation sample of a density-ratio estimator, apart from the data stage's held-out split that the
    metrics score against."""
    modality = SUITES[DATASETS[dataset].suite].modality
    with np.load(data_file, allow_pickle=False) as arrays:
        info = modality.data_info(arrays)
        train = modality.load_train(arrays["train"])
    holdout = min(int(holdout), len(train) // 5)
    if holdout:
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(int(seed)))
        heldout, train = train[order[:holdout]], train[order[holdout:]]
    else:
        heldout = train[:0]
    sample = array_sampler(train.to(device))
    to_input = lambda rows: modality.to_model_input(rows, info)  # noqa: E731
    return (lambda n, rng: to_input(sample(n, rng))), info, (heldout.to(device), to_input)
