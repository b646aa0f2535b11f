"""The DCGAN family of image nets in chainer-gan-lib's layout (pfnet-research/chainer-gan-lib common/net.py),
which DOT and the official DGflow weights use: the DCGAN generator, the SN-DCGAN discriminator and the
WGAN-GP critic (the same discriminator without spectral norm).

Layer names follow chainer-gan-lib's SNDCGANDiscriminator / DCGANGenerator so that importing Chainer npz
weights (chainer_dcgan.py) is a name-for-name copy.

LeakyReLU slope: chainer-gan-lib calls ``F.leaky_relu(h)`` without a slope, and Chainer's default is
``slope=0.2`` (chainer.functions.leaky_relu docs); the DGflow release's torch port uses
``nn.LeakyReLU(0.2)`` too. 0.1 is the slope of Miyato et al.'s own SN-GAN "standard CNN"
(pfnet-research/sngan_projection), a different code base. So the default here is 0.2, kept as ``slope``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as _add_spectral_norm
from ..registry import ARCHITECTURES

# Chainer's BatchNormalization defaults: eps 2e-5, decay 0.9 (= torch momentum 0.1).
CHAINER_BN_EPS = 2e-5
# chainer-gan-lib initialises every conv / linear weight with Normal(0.02) and biases with 0.
CHAINER_GAN_LIB_WSCALE = 0.02


def discriminator_conv_layout(ch: int) -> list[tuple[str, int, int, int, int, int]]:
    """(name, in, out, kernel, stride, pad) per conv for base width ch, named as chainer-gan-lib's SN-DCGAN."""
    return [
        ("c0_0", 3, ch // 8, 3, 1, 1),
        ("c0_1", ch // 8, ch // 4, 4, 2, 1),
        ("c1_0", ch // 4, ch // 4, 3, 1, 1),
        ("c1_1", ch // 4, ch // 2, 4, 2, 1),
        ("c2_0", ch // 2, ch // 2, 3, 1, 1),
        ("c2_1", ch // 2, ch, 4, 2, 1),
        ("c3_0", ch, ch, 3, 1, 1),
    ]


def _check_ch(ch: int) -> None:
    if ch < 8 or ch % 8:
        raise ValueError(f"ch must be a positive multiple of 8 (the nets use ch/8 ... ch channels), got {ch}")


def _normal_init(module: nn.Module, std: float = CHAINER_GAN_LIB_WSCALE) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class DCGANGenerator(nn.Module):
    """z (N, z_dim) or (N, z_dim, 1, 1) -> images (N, 3, 8·bw, 8·bw) in [-1, 1]; 32 px for bw 4, 48 px for bw 6.

    As in chainer-gan-lib, bn0 normalises the Linear output per feature (bw²·ch features, BatchNorm1d)
    before the C-order reshape to (ch, bw, bw); the Linear output index is c·bw² + i·bw + j, as torch's view."""

    def __init__(self, z_dim: int = 128, bottom_width: int = 4, ch: int = 512):
        super().__init__()
        _check_ch(ch)
        self.z_dim, self.bottom_width, self.ch = z_dim, bottom_width, ch
        features = bottom_width * bottom_width * ch
        self.l0 = nn.Linear(z_dim, features)
        self.bn0 = nn.BatchNorm1d(features, eps=CHAINER_BN_EPS)
        self.dc1 = nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1)
        self.bn1 = nn.BatchNorm2d(ch // 2, eps=CHAINER_BN_EPS)
        self.dc2 = nn.ConvTranspose2d(ch // 2, ch // 4, 4, 2, 1)
        self.bn2 = nn.BatchNorm2d(ch // 4, eps=CHAINER_BN_EPS)
        self.dc3 = nn.ConvTranspose2d(ch // 4, ch // 8, 4, 2, 1)
        self.bn3 = nn.BatchNorm2d(ch // 8, eps=CHAINER_BN_EPS)
        self.dc4 = nn.ConvTranspose2d(ch // 8, 3, 3, 1, 1)
        _normal_init(self)
        self.spec = {"arch": "dcgan_generator", "z_dim": z_dim, "bottom_width": bottom_width, "ch": ch}

    @property
    def image_size(self) -> int:
        return 8 * self.bottom_width

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn0(self.l0(z.flatten(1))))
        h = h.view(h.shape[0], self.ch, self.bottom_width, self.bottom_width)
        h = F.relu(self.bn1(self.dc1(h)))
        h = F.relu(self.bn2(self.dc2(h)))
        h = F.relu(self.bn3(self.dc3(h)))
        return torch.tanh(self.dc4(h))


class SNDCGANDiscriminator(nn.Module):
    """images (N, 3, 8·bw, 8·bw) -> logits / critic values of shape (N,).

    spectral_norm=True: every conv and the final Linear are wrapped with
    torch.nn.utils.parametrizations.spectral_norm (one power iteration per training-mode forward, as in
    chainer-gan-lib's Ip=1). spectral_norm=False is chainer-gan-lib's WGAN-GP critic architecture."""

    def __init__(self, bottom_width: int = 4, ch: int = 512, spectral_norm: bool = True, slope: float = 0.2):
        super().__init__()
        _check_ch(ch)
        self.bottom_width, self.ch, self.slope = bottom_width, ch, slope
        self.conv_names = tuple(name for name, *_ in discriminator_conv_layout(ch))
        for name, c_in, c_out, k, s, p in discriminator_conv_layout(ch):
            setattr(self, name, nn.Conv2d(c_in, c_out, k, s, p))
        self.l4 = nn.Linear(bottom_width * bottom_width * ch, 1)
        _normal_init(self)  # on the raw weights, before the spectral-norm parametrization wraps them
        if spectral_norm:
            for name in (*self.conv_names, "l4"):
                setattr(self, name, _add_spectral_norm(getattr(self, name)))
        self.spec = {"arch": "dcgan_discriminator", "bottom_width": bottom_width, "ch": ch,
                     "spectral_norm": bool(spectral_norm), "slope": slope}

    @property
    def image_size(self) -> int:
        return 8 * self.bottom_width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for name in self.conv_names:
            h = F.leaky_relu(getattr(self, name)(h), self.slope)
        return self.l4(h.flatten(1)).squeeze(-1)


def build_wgan_gp_critic(bottom_width: int = 4, ch: int = 512, slope: float = 0.2) -> SNDCGANDiscriminator:
    """chainer-gan-lib's WGANDiscriminator: the SN-DCGAN architecture without spectral norm."""
    return SNDCGANDiscriminator(bottom_width, ch, spectral_norm=False, slope=slope)


def from_spec(spec: dict) -> nn.Module:
    """Rebuild a DCGAN-family net (fresh weights) from its ``.spec``; load the state_dict afterwards."""
    arch = spec.get("arch")
    if arch == "dcgan_generator":
        return DCGANGenerator(spec["z_dim"], spec["bottom_width"], spec["ch"])
    if arch == "dcgan_discriminator":
        return SNDCGANDiscriminator(spec["bottom_width"], spec["ch"], spec["spectral_norm"],
                                    spec.get("slope", 0.2))
    raise ValueError(f"not a DCGAN-family spec (arch {arch!r}); expected 'dcgan_generator' or "
                     "'dcgan_discriminator'")


# ---- spectral norm helpers (shared with resnet.py) ----

def spectral_norm_modules(net: nn.Module) -> dict[str, tuple[nn.Module, nn.Module]]:
    """{module name: (module, its spectral-norm parametrization)} for every spectrally normalised weight."""
    out = {}
    for name, module in net.named_modules():
        if parametrize.is_parametrized(module, "weight"):
            for p in module.parametrizations.weight:
                if hasattr(p, "_u") and hasattr(p, "_v"):  # torch's _SpectralNorm (a private class)
                    out[name] = (module, p)
    return out


def weight_matrix(weight: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """The (out, -1) matrix whose largest singular value spectral norm divides by (torch's and Chainer's)."""
    return weight.movedim(dim, 0).flatten(1)


@torch.no_grad()
def set_exact_spectral_norm(net: nn.Module) -> dict[str, float]:
    """Make every spectral-norm layer divide by the exact largest singular value from the next forward on.

    torch's parametrization computes sigma = u·(W v) from its buffers ``_u`` and ``_v``; setting them to the
    top left / right singular vectors of the raw weight (``parametrizations.weight.original``), from an SVD
    in float64, makes that sigma exact. A further power iteration (training-mode forward) maps exact
    singular vectors to themselves, so the value stays exact in train and eval mode until W changes.
    This replaces the official code's "thermalisation" by 5,000 forward passes. Returns {name: sigma}."""
    sigmas = {}
    for name, (module, p) in spectral_norm_modules(net).items():
        W = weight_matrix(module.parametrizations.weight.original, p.dim).double()
        U, S, Vh = torch.linalg.svd(W, full_matrices=False)
        p._u.copy_(U[:, 0].to(p._u.dtype))
        p._v.copy_(Vh[0].to(p._v.dtype))
        sigmas[name] = float(S[0])
    return sigmas


for _arch in ('dcgan_generator', 'dcgan_discriminator'):
    ARCHITECTURES.register(_arch, lambda spec, rebuild: from_spec(spec))
