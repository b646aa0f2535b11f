"""SN-ResNet-GAN for 32 px images (Miyato et al., ICLR 2018), following the Chainer reference code
pfnet-research/sngan_projection (gen_models/resnet_32.py ResNetGenerator, dis_models/snresnet_32.py
SNResNetDiscriminator32 and the resblocks.py of each), which the DGflow release ports as ResNetGenerator32.

chainer-gan-lib's own 'ResnetGenerator' is a different, smaller net (3x3 shortcuts, BN after the last
ReLU); docs/method.md's SN-ResNet-GAN (1x1 shortcut on the up-sampled input, BN-ReLU-conv3x3 at the end) is
Miyato's, so that is what is built here.

Chainer link names, for a future importer: generator l1, block2..block4 (b1, c1, b2, c2, c_sc), b5, c5 ->
here l1, blocks[0..2] (same inner names), b5, c5; discriminator block1 (c1, c2, c_sc), block2..block4,
l5 -> here block1, blocks[0..], l5. Initialisation as in the reference: Glorot-uniform with gain √2 for
the residual convs and gain 1 for shortcuts and the first / last layers, zero biases."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm as _add_spectral_norm

from .dcgan import CHAINER_BN_EPS
from ..registry import ARCHITECTURES


def _glorot(layer: nn.Module, gain: float = 1.0) -> nn.Module:
    nn.init.xavier_uniform_(layer.weight, gain)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def _conv(c_in: int, c_out: int, k: int, gain: float, sn: bool) -> nn.Module:
    layer = _glorot(nn.Conv2d(c_in, c_out, k, 1, k // 2), gain)
    return _add_spectral_norm(layer) if sn else layer


class UpBlock(nn.Module):
    """Pre-activation up-sampling block: BN-ReLU-upsample(nearest)-conv3x3-BN-ReLU-conv3x3, plus a 1x1 conv
    of the up-sampled input as the shortcut (Miyato's 'upsample_conv(x, c_sc)')."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.b1 = nn.BatchNorm2d(c_in, eps=CHAINER_BN_EPS)
        self.c1 = _conv(c_in, c_out, 3, math.sqrt(2), sn=False)
        self.b2 = nn.BatchNorm2d(c_out, eps=CHAINER_BN_EPS)
        self.c2 = _conv(c_out, c_out, 3, math.sqrt(2), sn=False)
        self.c_sc = _conv(c_in, c_out, 1, 1.0, sn=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.b1(x)), scale_factor=2, mode="nearest")
        h = self.c2(F.relu(self.b2(self.c1(h))))
        return h + self.c_sc(F.interpolate(x, scale_factor=2, mode="nearest"))


class ResNetGenerator(nn.Module):
    """z (N, z_dim) ~ N(0, I) -> images (N, 3, 8·bw, 8·bw) in [-1, 1] (32 px for bw 4)."""

    def __init__(self, z_dim: int = 128, bottom_width: int = 4, ch: int = 256):
        super().__init__()
        self.z_dim, self.bottom_width, self.ch = z_dim, bottom_width, ch
        self.l1 = _glorot(nn.Linear(z_dim, bottom_width * bottom_width * ch))
        self.blocks = nn.ModuleList(UpBlock(ch, ch) for _ in range(3))
        self.b5 = nn.BatchNorm2d(ch, eps=CHAINER_BN_EPS)
        self.c5 = _conv(ch, 3, 3, 1.0, sn=False)
        self.spec = {"arch": "resnet_generator", "z_dim": z_dim, "bottom_width": bottom_width, "ch": ch}

    @property
    def image_size(self) -> int:
        return 8 * self.bottom_width

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.l1(z.flatten(1)).view(z.shape[0], self.ch, self.bottom_width, self.bottom_width)
        for block in self.blocks:
            h = block(h)
        return torch.tanh(self.c5(F.relu(self.b5(h))))


class OptimizedDownBlock(nn.Module):
    """The discriminator's first block on raw pixels (no pre-activation): conv3x3-ReLU-conv3x3-avgpool,
    shortcut avgpool-conv1x1."""

    def __init__(self, c_in: int, c_out: int, sn: bool):
        super().__init__()
        self.c1 = _conv(c_in, c_out, 3, math.sqrt(2), sn)
        self.c2 = _conv(c_out, c_out, 3, math.sqrt(2), sn)
        self.c_sc = _conv(c_in, c_out, 1, 1.0, sn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.avg_pool2d(self.c2(F.relu(self.c1(x))), 2)
        return h + self.c_sc(F.avg_pool2d(x, 2))


class DownBlock(nn.Module):
    """Pre-activation block ReLU-conv3x3-ReLU-conv3x3 (+ avgpool when down-sampling). The shortcut is
    conv1x1 (+ avgpool) when down-sampling or changing width, else the identity."""

    def __init__(self, c_in: int, c_out: int, downsample: bool, sn: bool):
        super().__init__()
        self.downsample = downsample
        self.c1 = _conv(c_in, c_in, 3, math.sqrt(2), sn)
        self.c2 = _conv(c_in, c_out, 3, math.sqrt(2), sn)
        self.c_sc = _conv(c_in, c_out, 1, 1.0, sn) if (downsample or c_in != c_out) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c2(F.relu(self.c1(F.relu(x))))
        s = x if self.c_sc is None else self.c_sc(x)
        if self.downsample:
            h, s = F.avg_pool2d(h, 2), F.avg_pool2d(s, 2)
        return h + s


class SNResNetDiscriminator(nn.Module):
    """images (N, 3, H, W) -> logits (N,): optimized block, ``down_blocks`` down-sampling blocks, then
    ``plain_blocks`` blocks at constant resolution, ReLU, global SUM pooling, Linear(ch -> 1) without bias
    (nobias=True in snresnet_32.py). Spectral norm on every conv and the Linear."""

    def __init__(self, ch: int = 128, down_blocks: int = 1, plain_blocks: int = 2, spectral_norm: bool = True):
        super().__init__()
        self.ch = ch
        self.block1 = OptimizedDownBlock(3, ch, spectral_norm)
        self.blocks = nn.ModuleList(
            [DownBlock(ch, ch, True, spectral_norm) for _ in range(down_blocks)]
            + [DownBlock(ch, ch, False, spectral_norm) for _ in range(plain_blocks)])
        l5 = _glorot(nn.Linear(ch, 1, bias=False))
        self.l5 = _add_spectral_norm(l5) if spectral_norm else l5
        self.spec = {"arch": "snresnet_discriminator", "ch": ch, "down_blocks": down_blocks,
                     "plain_blocks": plain_blocks, "spectral_norm": bool(spectral_norm)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.block1(x)
        for block in self.blocks:
            h = block(h)
        return self.l5(F.relu(h).sum(dim=(2, 3))).squeeze(-1)


def from_spec(spec: dict) -> nn.Module:
    """Rebuild an SN-ResNet-GAN net (fresh weights) from its ``.spec``; load the state_dict afterwards."""
    arch = spec.get("arch")
    if arch == "resnet_generator":
        return ResNetGenerator(spec["z_dim"], spec["bottom_width"], spec["ch"])
    if arch == "snresnet_discriminator":
        return SNResNetDiscriminator(spec["ch"], spec["down_blocks"], spec["plain_blocks"],
                                     spec.get("spectral_norm", True))
    raise ValueError(f"not an SN-ResNet-GAN spec (arch {arch!r}); expected 'resnet_generator' or "
                     "'snresnet_discriminator'")


for _arch in ('resnet_generator', 'snresnet_discriminator'):
    ARCHITECTURES.register(_arch, lambda spec, rebuild: from_spec(spec))
