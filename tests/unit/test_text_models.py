"""The character-level WGAN-GP nets (Gulrajani et al. 2017 gan_language.py): shapes, the generator's
probability rows, the critic's input gradient (the gradient penalty), the 0.3 residual scale, parameter
counts against hand-computed numbers, rebuilding from ``.spec``, and argmax decoding / one-hot encoding.
Tiny widths and vocabularies throughout."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from dgflow_bench.models import text_cnn
from dgflow_bench.models.text_cnn import (CharCNNCritic, CharCNNGenerator, ResBlock1d, decode_argmax,
                                          one_hot_lines)

Z, DIM, L, V, BLOCKS = 8, 6, 7, 11, 2


def small_nets(n_blocks: int = BLOCKS) -> tuple[CharCNNGenerator, CharCNNCritic]:
    torch.manual_seed(0)
    G = CharCNNGenerator(z_dim=Z, dim=DIM, seq_len=L, vocab_size=V, n_blocks=n_blocks)
    D = CharCNNCritic(dim=DIM, seq_len=L, vocab_size=V, n_blocks=n_blocks)
    return G, D


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_shapes_and_probability_rows():
    G, D = small_nets()
    probs = G(3 * torch.randn(4, Z))
    assert probs.shape == (4, L, V) and probs.dtype == torch.float32
    assert (probs >= 0).all()
    torch.testing.assert_close(probs.sum(-1), torch.ones(4, L))
    assert D(probs).shape == (4,)
    one_hot = one_hot_lines(torch.randint(0, V, (4, L)), V)
    assert D(one_hot).shape == (4,)
    with pytest.raises(ValueError):
        D(probs.transpose(1, 2))  # (N, V, L) is the wrong layout


def test_gradient_penalty_backpropagates_into_critic():
    G, D = small_nets()
    real = one_hot_lines(torch.randint(0, V, (5, L)), V)
    fake = G(torch.randn(5, Z)).detach()
    eps = torch.rand(5, 1, 1)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    assert grad.shape == x_hat.shape
    penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    D.zero_grad()
    penalty.backward()
    # second-order path: the penalty reaches the weights of every layer, first to last
    for name in ("from_vocab.weight", "blocks.0.conv1.weight", "fc.weight"):
        g = dict(D.named_parameters())[name].grad
        assert g is not None and g.abs().sum() > 0, name


def test_residual_block_is_identity_when_convs_are_zero():
    block = ResBlock1d(DIM)
    with torch.no_grad():
        for p in block.parameters():
            p.zero_()
    x = torch.randn(3, DIM, L)
    torch.testing.assert_close(block(x), x)


def test_residual_block_scales_branch_by_0_3():
    torch.manual_seed(1)
    block = ResBlock1d(DIM)
    x = torch.randn(3, DIM, L)
    c1, c2 = block.conv1, block.conv2
    h = F.conv1d(F.relu(F.conv1d(F.relu(x), c1.weight, c1.bias, padding=2)), c2.weight, c2.bias, padding=2)
    torch.testing.assert_close(block(x), x + 0.3 * h)
    assert c1.kernel_size == (5,) and c2.kernel_size == (5,)


def test_parameter_counts():
    G, D = small_nets()
    block = 2 * (DIM * DIM * 5 + DIM)  # two k5 convs with bias
    assert n_params(ResBlock1d(DIM)) == block == 372
    # Linear z -> dim·L, blocks, 1x1 conv dim -> V
    assert n_params(G) == (Z * DIM * L + DIM * L) + BLOCKS * block + (DIM * V + V) == 1199
    # 1x1 conv V -> dim, blocks, Linear dim·L -> 1
    assert n_params(D) == (V * DIM + DIM) + BLOCKS * block + (DIM * L + 1) == 859


def test_full_size_parameter_counts():
    # the paper-size nets (z 128, dim 512, 32 characters, 2048 symbols), counted from the formulas above
    block = 2 * (512 * 512 * 5 + 512)
    with torch.device("meta"):  # no memory, no init cost
        G, D = CharCNNGenerator(), CharCNNCritic()
    assert n_params(G) == 128 * 512 * 32 + 512 * 32 + 5 * block + 512 * 2048 + 2048
    assert n_params(D) == 2048 * 512 + 512 + 5 * block + 512 * 32 + 1


@pytest.mark.parametrize("which", ["generator", "critic"])
def test_from_spec_round_trip(which):
    G, D = small_nets()
    net = G if which == "generator" else D
    spec = json.loads(json.dumps(net.spec))  # must survive JSON
    assert spec["arch"] == f"charcnn_{which}"
    rebuilt = text_cnn.from_spec(spec)
    assert type(rebuilt) is type(net) and rebuilt.spec == net.spec
    rebuilt.load_state_dict(net.state_dict())
    x = torch.randn(3, Z) if which == "generator" else G(torch.randn(3, Z)).detach()
    torch.testing.assert_close(rebuilt(x), net(x), rtol=0, atol=0)
    with pytest.raises(ValueError):
        text_cnn.from_spec({"arch": "dcgan_generator"})


def test_decode_argmax_equals_argmax():
    G, _ = small_nets()
    probs = G(torch.randn(4, Z))
    ids = decode_argmax(probs)
    assert ids.shape == (4, L) and ids.dtype == torch.int64
    assert torch.equal(ids, probs.argmax(-1))


def test_one_hot_lines_round_trip():
    # uint16, as data/text.py stores the ids
    tokens = np.random.default_rng(0).integers(0, V, size=(4, L)).astype(np.uint16)
    one_hot = one_hot_lines(tokens, V)
    assert one_hot.shape == (4, L, V) and one_hot.dtype == torch.float32
    assert torch.equal(one_hot.sum(-1), torch.ones(4, L))
    assert torch.equal(decode_argmax(one_hot), torch.from_numpy(tokens.astype(np.int64)))
    as_tensor = one_hot_lines(torch.from_numpy(tokens.astype(np.int64)), V)
    assert torch.equal(as_tensor, one_hot)
