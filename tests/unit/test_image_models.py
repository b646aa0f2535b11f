"""The image nets (DCGAN family, SN-ResNet-GAN): shapes at 32 and 48 px, output ranges, spectral norm,
parameter counts against hand-computed numbers, and rebuilding from ``.spec``."""

from __future__ import annotations

import pytest
import torch

from dgflow_bench.models import dcgan, resnet
from dgflow_bench.models.dcgan import (DCGANGenerator, SNDCGANDiscriminator, build_wgan_gp_critic,
                                       set_exact_spectral_norm, spectral_norm_modules, weight_matrix)
from dgflow_bench.models.resnet import ResNetGenerator, SNResNetDiscriminator




def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("bottom_width,size", [(4, 32), (6, 48)])
def test_dcgan_shapes_and_ranges(bottom_width, size):
    torch.manual_seed(0)
    G = DCGANGenerator(bottom_width=bottom_width, ch=64).eval()
    z = 50 * torch.randn(3, 128)  # large latents: tanh saturates but never leaves [-1, 1]
    x = G(z)
    assert x.shape == (3, 3, size, size) and G.image_size == size
    assert x.abs().max() <= 1.0
    assert G(z.view(3, 128, 1, 1)).shape == x.shape  # chainer-style (N, z, 1, 1) latents too
    for sn in (True, False):
        D = SNDCGANDiscriminator(bottom_width=bottom_width, ch=64, spectral_norm=sn)
        assert D(x).shape == (3,)


def test_resnet_shapes_and_ranges():
    torch.manual_seed(0)
    G = ResNetGenerator(ch=32).eval()
    x = G(30 * torch.randn(2, 128))
    assert x.shape == (2, 3, 32, 32) and x.abs().max() <= 1.0
    assert SNResNetDiscriminator(ch=32)(x).shape == (2,)


def test_parameter_counts_match_hand_computed():
    # DCGAN G (z 128, ch 512, bw 4): l0 128·8192+8192 = 1,056,768; bn0 2·8192 = 16,384 (per-feature BN);
    # dc1 512·256·16+256 = 2,097,408; bn1 512; dc2 256·128·16+128 = 524,416; bn2 256;
    # dc3 128·64·16+64 = 131,136; bn3 128; dc4 64·3·9+3 = 1,731  -> 3,828,739.
    assert n_params(DCGANGenerator(bottom_width=4)) == 3_828_739
    # bw 6: l0 and bn0 grow from 8192 to 18432 features: + 1,320,960 + 20,480.
    assert n_params(DCGANGenerator(bottom_width=6)) == 5_170_179
    # D (ch 512, bw 4): c0_0 1,792; c0_1 131,200; c1_0 147,584; c1_1 524,544; c2_0 590,080;
    # c2_1 2,097,664; c3_0 2,359,808; l4 8,193  -> 5,860,865. Spectral norm adds buffers, not parameters.
    assert n_params(SNDCGANDiscriminator(bottom_width=4)) == 5_860_865
    assert n_params(build_wgan_gp_critic(bottom_width=4)) == 5_860_865
    assert n_params(SNDCGANDiscriminator(bottom_width=6)) == 5_860_865 + 10_240  # l4: 18,432 inputs
    # ResNet G (ch 256): l1 128·4096+4096 = 528,384; per block b1 512 + c1 590,080 + b2 512 + c2 590,080
    # + c_sc 256·256+256 = 65,792 -> 1,246,976, three blocks 3,740,928; b5 512; c5 256·3·9+3 = 6,915.
    assert n_params(ResNetGenerator()) == 4_276_739
    # ResNet D (ch 128): block1 c1 3,584 + c2 147,584 + c_sc 512 = 151,680; down block 147,584·2 + 16,512
    # = 311,680; two plain blocks 295,168 each; l5 128 (no bias) -> 1,053,824.
    assert n_params(SNResNetDiscriminator()) == 1_053_824


def _largest_singular_values(net: torch.nn.Module) -> dict[str, float]:
    with torch.no_grad():
        return {name: float(torch.linalg.matrix_norm(weight_matrix(m.weight, p.dim).double(), ord=2))
                for name, (m, p) in spectral_norm_modules(net).items()}


@pytest.mark.parametrize("make", [lambda: SNDCGANDiscriminator(ch=64), lambda: SNResNetDiscriminator(ch=32)])
def test_exact_spectral_norm_gives_unit_sigma(make):
    torch.manual_seed(0)
    D = make()
    # every conv and the final Linear: DCGAN 7 + 1; ResNet 3 (block1) + 3 (down) + 2 + 2 (plain) + 1
    n_layers = 8 if isinstance(D, SNDCGANDiscriminator) else 11
    assert len(spectral_norm_modules(D)) == n_layers
    sigmas = set_exact_spectral_norm(D)
    assert all(s > 0 for s in sigmas.values())
    for sigma in _largest_singular_values(D).values():
        assert sigma == pytest.approx(1.0, abs=1e-5)
    D.train()(torch.randn(2, 3, 32, 32))  # a power-iteration step keeps exact singular vectors exact
    for sigma in _largest_singular_values(D).values():
        assert sigma == pytest.approx(1.0, abs=1e-5)


def test_power_iteration_converges_to_unit_sigma():
    torch.manual_seed(0)
    D = SNDCGANDiscriminator(ch=16).train()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        for _ in range(300):  # one power iteration per layer per training-mode forward
            D(x)
    for sigma in _largest_singular_values(D).values():
        assert sigma == pytest.approx(1.0, abs=1e-3)


def _randomise_batchnorm_statistics(net: torch.nn.Module) -> None:
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.normal_(1, 0.1)
                m.bias.normal_(0, 0.1)


@pytest.mark.parametrize("make,builder,shape", [
    (lambda: DCGANGenerator(bottom_width=6, ch=64), dcgan.from_spec, (2, 128)),
    (lambda: SNDCGANDiscriminator(bottom_width=4, ch=64, slope=0.1), dcgan.from_spec, (2, 3, 32, 32)),
    (lambda: build_wgan_gp_critic(ch=64), dcgan.from_spec, (2, 3, 32, 32)),
    (lambda: ResNetGenerator(ch=32), resnet.from_spec, (2, 128)),
    (lambda: SNResNetDiscriminator(ch=32), resnet.from_spec, (2, 3, 32, 32)),
])
def test_from_spec_round_trip(make, builder, shape):
    torch.manual_seed(0)
    net = make()
    _randomise_batchnorm_statistics(net)
    net.train()(torch.randn(shape))  # moves the spectral-norm vectors away from their initial values
    rebuilt = builder(dict(net.spec))
    assert rebuilt.spec == net.spec
    rebuilt.load_state_dict(net.state_dict())
    x = torch.randn(shape)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(x), net.eval()(x), rtol=0, atol=0)


def test_from_spec_rejects_other_architectures():
    with pytest.raises(ValueError, match="arch"):
        dcgan.from_spec(ResNetGenerator(ch=32).spec)
    with pytest.raises(ValueError, match="arch"):
        resnet.from_spec({"in_dim": 2})
