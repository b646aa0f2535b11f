"""The convolutional decoder of the DGflow release's MMDGAN, OCFGAN-GP and VAE generators (clear-nus/DGflow
torch_models.py CNNDecoder, itself MMD-GAN's DCGAN-style decoder, OctoberChang/MMD-GAN base_module.py).

z (N, z_dim) -> ConvT(z_dim -> c, 4, 1, 0) + BN + ReLU -> [ConvT(c -> c/2, 4, 2, 1) + BN + ReLU] ... ->
ConvT(ngf -> 3, 4, 2, 1) -> tanh, with c = ngf · isize / 8 (256 for 32 px and ngf 64); no biases; torch's
default BatchNorm (eps 1e-5). The VAE's decoder ends in a sigmoid whose [0, 1] output is mapped to [-1, 1]
by (x - 0.5) · 2, as the release does.

Module names are the release's (``main.initial-32-256-convt`` ...), so its state dicts load name for name.
"""

from __future__ import annotations

from torch import nn

from ..registry import ARCHITECTURES

OUTPUTS = ("tanh", "sigmoid")
LEAKY_SLOPE = 0.2  # the encoders' LeakyReLU (MMD-GAN base_module.py, clear-nus/OCFGAN src/networks.py)


def pyramid_widths(isize: int, base: int) -> list[int]:
    """Channel widths of MMD-GAN's DCGAN pyramid at isize/2, isize/4, ... 4 px: [base, 2 base, ...]
    (e.g. [64, 128, 256] for 32 px). Its encoders go up this list, its decoder down it."""
    if isize < 16 or isize & (isize - 1):
        raise ValueError(f"isize must be a power of two >= 16 (the nets halve or double between it and 4 px), "
                         f"got {isize}")
    widths, size = [base], isize // 2
    while size > 4:
        widths.append(widths[-1] * 2)
        size //= 2
    return widths


class ReleaseCNNDecoder(nn.Module):
    def __init__(self, z_dim: int, isize: int = 32, ngf: int = 64, output: str = "tanh", channels: int = 3):
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        self.spec = {"arch": "release_cnn_decoder", "z_dim": z_dim, "isize": isize, "ngf": ngf, "output": output,
                     "channels": channels}
        self.output = output
        widths = pyramid_widths(isize, ngf)[::-1]
        main = nn.Sequential()
        main.add_module(f"initial-{z_dim}-{widths[0]}-convt", nn.ConvTranspose2d(z_dim, widths[0], 4, 1, 0, bias=False))
        main.add_module(f"initial-{widths[0]}-batchnorm", nn.BatchNorm2d(widths[0]))
        main.add_module(f"initial-{widths[0]}-relu", nn.ReLU(True))
        for wide, narrow in zip(widths, widths[1:]):
            main.add_module(f"pyramid-{wide}-{narrow}-convt", nn.ConvTranspose2d(wide, narrow, 4, 2, 1, bias=False))
            main.add_module(f"pyramid-{narrow}-batchnorm", nn.BatchNorm2d(narrow))
            main.add_module(f"pyramid-{narrow}-relu", nn.ReLU(True))
        main.add_module(f"final-{widths[-1]}-{channels}-convt",
                        nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1, bias=False))
        main.add_module(f"final-{channels}-act", nn.Tanh() if output == "tanh" else nn.Sigmoid())
        self.main = main
        mmd_gan_init(self)

    def forward(self, z):
        x = self.main(z.reshape(z.shape[0], -1, 1, 1))
        return (x - 0.5) * 2 if self.output == "sigmoid" else x


def mmd_gan_init(net: nn.Module) -> None:
    """MMD-GAN's weights_init (base_module.py; OCFGAN networks.py): conv weights N(0, 0.02), BatchNorm scale
    N(1, 0.02) and shift 0; a conv bias (these nets have none but the VAE encoder's head) starts at 0."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def from_spec(spec: dict) -> ReleaseCNNDecoder:
    return ReleaseCNNDecoder(spec["z_dim"], spec["isize"], spec["ngf"], spec["output"], spec.get("channels", 3))


ARCHITECTURES.register("release_cnn_decoder", lambda spec, rebuild: from_spec(spec))
