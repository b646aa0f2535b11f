"""Critics of the kernel GANs whose generators DGflow refines: MMD-GAN's encoder + decoder critic and the
OCFGAN-GP feature critic.

Both critics map an image to a feature *vector* (not a scalar); the kernel or characteristic-function
distance between the feature clouds of real and generated batches is the training signal
(training/kernel_losses.py).

Sources (facts, not code, are taken over):

- OctoberChang/MMD-GAN ``base_module.py`` (class Encoder): conv(nc -> ndf, 4, stride 2, pad 1) + LeakyReLU(0.2),
  then while the map is wider than 4 px: conv(c -> 2c, 4, 2, 1) + BatchNorm + LeakyReLU(0.2), then a final
  conv(c -> k, 4, 1, 0) to a (N, k, 1, 1) map; no biases. Its Decoder is the DCGAN decoder that
  models/release_cnn.py already builds (widths ngf·isize/8 ... ngf, no biases, tanh), so it is reused here.
  ``weights_init`` there: conv weights N(0, 0.02), BatchNorm scale N(1, 0.02) and shift 0.
- OctoberChang/MMD-GAN ``mmd_gan.py``: NetD = (encoder, decoder); the decoder reconstructs an image from the
  encoder's k features (k = nz, the generator's latent size); only the *encoder* is weight-clipped.
- clear-nus/OCFGAN ``src/networks.py`` (Encoder with ``bn``) and ``src/cfgan.py`` / ``src/gan.py``: the
  CFGAN-GP critic is the same encoder built *without* BatchNorm (``batch_norm=False``, because of the
  gradient penalty) with ``k = dout_dim`` outputs (32 in ``cifar10.sh`` / ``stl10.sh``), ndf 64.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import ARCHITECTURES
from .release_cnn import LEAKY_SLOPE, ReleaseCNNDecoder, mmd_gan_init, pyramid_widths



def _dcgan_encoder(isize: int, channels: int, k: int, ndf: int, batch_norm: bool) -> nn.Sequential:
    widths = pyramid_widths(isize, ndf)
    layers = nn.Sequential()
    layers.add_module("conv0", nn.Conv2d(channels, widths[0], 4, 2, 1, bias=False))
    layers.add_module("act0", nn.LeakyReLU(LEAKY_SLOPE))
    for i, (c_in, c_out) in enumerate(zip(widths, widths[1:]), start=1):
        layers.add_module(f"conv{i}", nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False))
        if batch_norm:
            layers.add_module(f"bn{i}", nn.BatchNorm2d(c_out))
        layers.add_module(f"act{i}", nn.LeakyReLU(LEAKY_SLOPE))
    layers.add_module("final", nn.Conv2d(widths[-1], k, 4, 1, 0, bias=False))
    return layers


class MMDGANCritic(nn.Module):
    """MMD-GAN's critic: images (N, C, isize, isize) -> features (N, k); ``autoencode`` also returns the
    decoder's reconstruction (N, C, isize, isize) for the autoencoder term of the critic loss.

    ``encoder`` is the part MMD-GAN clips to [-0.01, 0.01] before every critic step (BatchNorm affine
    parameters included, as ``netD.encoder.parameters()`` are clamped there); ``decoder`` is never clipped."""

    def __init__(self, isize: int = 32, channels: int = 3, k: int = 128, ndf: int = 64, ngf: int = 64):
        super().__init__()
        self.encoder = _dcgan_encoder(isize, channels, k, ndf, batch_norm=True)
        self.decoder = ReleaseCNNDecoder(k, isize=isize, ngf=ngf, output="tanh", channels=channels)
        mmd_gan_init(self.encoder)  # the decoder initialises itself the same way
        self.isize, self.channels, self.k = isize, channels, k
        self.spec = {"arch": "mmd_gan_critic", "isize": isize, "channels": channels, "k": k, "ndf": ndf,
                     "ngf": ngf}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x).flatten(1)

    def autoencode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.forward(x)
        return features, self.decoder(features)


class OCFGANCritic(nn.Module):
    """OCFGAN-GP's critic: images (N, C, isize, isize) -> features (N, k), k = 32 in the CIFAR10 / STL10
    recipes; the DCGAN encoder without BatchNorm."""

    def __init__(self, isize: int = 32, channels: int = 3, k: int = 32, ndf: int = 64):
        super().__init__()
        self.encoder = _dcgan_encoder(isize, channels, k, ndf, batch_norm=False)
        mmd_gan_init(self)
        self.isize, self.channels, self.k = isize, channels, k
        self.spec = {"arch": "ocfgan_critic", "isize": isize, "channels": channels, "k": k, "ndf": ndf}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x).flatten(1)


def from_spec(spec: dict) -> nn.Module:
    """Rebuild a kernel-GAN critic (fresh weights) from its ``.spec``; load the state_dict afterwards."""
    arch = spec.get("arch")
    if arch == "mmd_gan_critic":
        return MMDGANCritic(spec["isize"], spec["channels"], spec["k"], spec["ndf"], spec["ngf"])
    if arch == "ocfgan_critic":
        return OCFGANCritic(spec["isize"], spec["channels"], spec["k"], spec["ndf"])
    raise ValueError(f"not a kernel-GAN critic spec (arch {arch!r}); expected 'mmd_gan_critic' or 'ocfgan_critic'")


for _arch in ("mmd_gan_critic", "ocfgan_critic"):
    ARCHITECTURES.register(_arch, lambda spec, rebuild: from_spec(spec))
