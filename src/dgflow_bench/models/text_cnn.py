"""The character-level WGAN-GP language model of Gulrajani et al. 2017 (improved_wgan_training,
gan_language.py), which DGflow's text experiment refines.

G: z (N, 128) -> Linear dim·seq_len -> reshape (N, dim, seq_len) -> 5 residual blocks -> conv1d 1x1 to the
vocabulary -> softmax per position, returned as (N, seq_len, vocab) probabilities. The critic reads one-hot
(real) or softmax (generated) lines of the same shape, so both live on the simplex the gradient penalty
interpolates on. The reshapes are C-order, as TF's ``tf.reshape`` in the original.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from ..registry import ARCHITECTURES

RESIDUAL_SCALE = 0.3  # gan_language.py's ResBlock: inputs + 0.3 * output


class ResBlock1d(nn.Module):
    """x + 0.3 · conv(ReLU(conv(ReLU(x)))), length-preserving ('same' padding)."""

    def __init__(self, dim: int, kernel: int = 5):
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd so that padding keeps the length, got {kernel}")
        self.conv1 = nn.Conv1d(dim, dim, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv1d(dim, dim, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(F.relu(x))))
        return x + RESIDUAL_SCALE * h


class CharCNNGenerator(nn.Module):
    """z (N, z_dim) -> per-position character probabilities (N, seq_len, vocab_size); rows sum to 1."""

    def __init__(self, z_dim: int = 128, dim: int = 512, seq_len: int = 32, vocab_size: int = 2048,
                 n_blocks: int = 5):
        super().__init__()
        self.z_dim, self.dim, self.seq_len, self.vocab_size = z_dim, dim, seq_len, vocab_size
        self.fc = nn.Linear(z_dim, dim * seq_len)
        self.blocks = nn.Sequential(*(ResBlock1d(dim) for _ in range(n_blocks)))
        self.to_vocab = nn.Conv1d(dim, vocab_size, 1)
        self.spec = {"arch": "charcnn_generator", "z_dim": z_dim, "dim": dim, "seq_len": seq_len,
                     "vocab_size": vocab_size, "n_blocks": n_blocks}

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """Pre-softmax scores (N, seq_len, vocab_size)."""
        h = self.fc(z).view(-1, self.dim, self.seq_len)
        return self.to_vocab(self.blocks(h)).transpose(1, 2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(z), dim=-1)


class CharCNNCritic(nn.Module):
    """Lines as (N, seq_len, vocab_size) one-hot or softmax rows -> scores (N,)."""

    def __init__(self, dim: int = 512, seq_len: int = 32, vocab_size: int = 2048, n_blocks: int = 5):
        super().__init__()
        self.dim, self.seq_len, self.vocab_size = dim, seq_len, vocab_size
        self.from_vocab = nn.Conv1d(vocab_size, dim, 1)
        self.blocks = nn.Sequential(*(ResBlock1d(dim) for _ in range(n_blocks)))
        self.fc = nn.Linear(dim * seq_len, 1)
        self.spec = {"arch": "charcnn_critic", "dim": dim, "seq_len": seq_len, "vocab_size": vocab_size,
                     "n_blocks": n_blocks}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1:] != (self.seq_len, self.vocab_size):
            raise ValueError(f"expected (N, {self.seq_len}, {self.vocab_size}) input, got {tuple(x.shape)}")
        h = self.blocks(self.from_vocab(x.transpose(1, 2)))  # conv1d wants channels (the vocabulary) first
        return self.fc(h.reshape(len(h), -1)).squeeze(-1)


def one_hot_lines(tokens: torch.Tensor | np.ndarray, vocab_size: int) -> torch.Tensor:
    """Token ids (N, L), e.g. the uint16 arrays of data/text.py -> float one-hot (N, L, vocab_size)."""
    ids = torch.as_tensor(tokens).long()  # F.one_hot needs int64; uint16 has almost no torch ops
    return F.one_hot(ids, vocab_size).float()


def decode_argmax(probs: torch.Tensor) -> torch.Tensor:
    """The generated text: the most probable character per position, int64 ids (N, L)."""
    return probs.argmax(dim=-1)


def from_spec(spec: dict) -> nn.Module:
    """Rebuild a text net (fresh weights) from its ``.spec``; load the state_dict afterwards."""
    arch = spec.get("arch")
    if arch == "charcnn_generator":
        return CharCNNGenerator(spec["z_dim"], spec["dim"], spec["seq_len"], spec["vocab_size"],
                                spec.get("n_blocks", 5))
    if arch == "charcnn_critic":
        return CharCNNCritic(spec["dim"], spec["seq_len"], spec["vocab_size"], spec.get("n_blocks", 5))
    raise ValueError(f"not a text-net spec (arch {arch!r}); expected 'charcnn_generator' or 'charcnn_critic'")


for _arch in ('charcnn_generator', 'charcnn_critic'):
    ARCHITECTURES.register(_arch, lambda spec, rebuild: from_spec(spec))
