"""The inference network (encoder) of the convolutional VAE that DGflow refines on CIFAR10 and STL10.

What the DGflow release fixes, and what it leaves open
------------------------------------------------------
- The release ships only the VAE's *decoder* (``VAE_CIFAR.pth``, ``VAE_STL.pth``): util.py builds generator
  type ``t_cnn_vae`` as ``CNNDecoder(isize=32, nc=3, k=z_dim, act=Sigmoid())`` and torch_models.py maps the
  sigmoid output to [-1, 1] by (x - 0.5) * 2 (clear-nus/DGflow util.py, torch_models.py). Our copy of that
  decoder is models/release_cnn.py (``ReleaseCNNDecoder(..., output="sigmoid")``).
- z_dim is 64 for both data sets (clear-nus/DGflow configs/cifar10-vae.yml and configs/stl10-vae.yml).
- The decoder is built with isize=32 for both; for STL10 (config image_size 48) the 32 px output is only
  resized for the discriminator, so the VAE itself works on 32 px images (util.py, torch_models.py).
- No VAE encoder and no VAE training code are public: the release has neither, and we found none in the
  authors' other repositories (clear-nus/*, abdulfatir/*; clear-nus/CHyVAE is a TensorFlow VAE for
  disentanglement, another architecture). **The encoder below is therefore ours.**

Our design
----------
The decoder is OctoberChang/MMD-GAN's base_module.py DCGAN-style decoder; the same code base pairs it with
a mirror-image DCGAN-style encoder, which the first author's OCFGAN repository also uses as its
"flexible-dcgan" discriminator (clear-nus/OCFGAN src/networks.py ``Encoder``). We take that layout:

  x (N, 3, isize, isize) -> Conv(3 -> ndf, 4, 2, 1) + LeakyReLU(0.2)
    -> [Conv(c -> 2c, 4, 2, 1) + BN + LeakyReLU(0.2)] until 4 x 4
    -> Conv(c -> 2 * z_dim, 4, 1, 0) -> (mu, logvar), each (N, z_dim)

For isize 32 and ndf 64 this is Conv 3->64->128->256 (16, 8, 4 px) and a 4x4 conv to 2 * z_dim, the exact
mirror of the decoder's 256->128->64->3. Like MMD-GAN the convs have no bias (BN follows them), except the
final head (our choice): a VAE head needs a free offset, above all for the log-variance. Weights are
initialised as MMD-GAN's weights_init (conv N(0, 0.02), BN scale N(1, 0.02), shift 0), the head bias at 0.
Module names follow the MMD-GAN encoder's (``main.initial-conv-3-64`` ...). The first half of the head's
channels is the mean, the second half the log-variance of the diagonal Gaussian q(z|x).
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import ARCHITECTURES
from .release_cnn import LEAKY_SLOPE, mmd_gan_init, pyramid_widths



class VAEEncoder(nn.Module):
    """images (N, channels, isize, isize) in [-1, 1] -> (mu, logvar), each of shape (N, z_dim)."""

    def __init__(self, z_dim: int, isize: int = 32, ndf: int = 64, channels: int = 3):
        super().__init__()
        if z_dim < 1 or ndf < 1:
            raise ValueError(f"z_dim and ndf must be positive, got z_dim={z_dim}, ndf={ndf}")
        self.z_dim = z_dim
        self.spec = {"arch": "vae_encoder", "z_dim": z_dim, "isize": isize, "ndf": ndf, "channels": channels}
        widths = pyramid_widths(isize, ndf)
        main = nn.Sequential()
        main.add_module(f"initial-conv-{channels}-{ndf}", nn.Conv2d(channels, ndf, 4, 2, 1, bias=False))
        main.add_module(f"initial-relu-{ndf}", nn.LeakyReLU(LEAKY_SLOPE, inplace=True))
        for narrow, wide in zip(widths, widths[1:]):
            main.add_module(f"pyramid-{narrow}-{wide}-conv", nn.Conv2d(narrow, wide, 4, 2, 1, bias=False))
            main.add_module(f"pyramid-{wide}-batchnorm", nn.BatchNorm2d(wide))
            main.add_module(f"pyramid-{wide}-relu", nn.LeakyReLU(LEAKY_SLOPE, inplace=True))
        main.add_module(f"final-{widths[-1]}-{2 * z_dim}-conv", nn.Conv2d(widths[-1], 2 * z_dim, 4, 1, 0))
        self.main = main
        mmd_gan_init(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.main(x).flatten(1)
        return h[:, : self.z_dim], h[:, self.z_dim:]


def from_spec(spec: dict) -> VAEEncoder:
    """Rebuild the encoder (fresh weights) from its ``.spec``; load the state_dict afterwards."""
    if spec.get("arch") != "vae_encoder":
        raise ValueError(f"not a VAE encoder spec (arch {spec.get('arch')!r}); expected 'vae_encoder'")
    return VAEEncoder(spec["z_dim"], spec["isize"], spec["ndf"], spec.get("channels", 3))


ARCHITECTURES.register("vae_encoder", lambda spec, rebuild: from_spec(spec))
