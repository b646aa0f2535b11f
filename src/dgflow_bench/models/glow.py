"""Glow (Kingma & Dhariwal 2018) for small RGB images, as a "generator": a standardised N(0, I) latent -> image.

Where the settings come from. clear-nus/DGflow ``configs/cifar10-glow.yaml`` names ``gen_type: t_glow``,
``gen_path: trained_models/glow-cifar10.pt`` and ``glow_params: trained_models/hparams.json``; no stored
repository holds that hparams.json, the DGflow code never reads it, and nothing says which code made the two
files. That it is y0ast/Glow-PyTorch is our inference: its ``train.py:471-472`` writes an ``hparams.json``
(``json.dump`` of its argparse options) beside its checkpoints, and it trains CIFAR-10 at 32x32. It is not
proof: its checkpoints are named by ignite's ModelCheckpoint with prefix "glow" (``train.py:196-198``; its
``Sample_from_Glow.ipynb`` loads ``glow_model_250.pth``), not glow-cifar10.pt, and chaiyujin/glow-pytorch
(which y0ast builds on) also keeps its settings in hparams JSON files (``hparams/celeba.json``, CelebA 64x64).
So the defaults here are y0ast's ``train.py`` defaults (13c7b01, ``train.py:326-366``): hidden_channels 512,
K 32 steps per level, L 3 levels, actnorm_scale 1.0, flow_permutation "invconv", flow_coupling "affine",
LU_decomposed True (``--no_LU_decomposed`` turns it off), learn_top True (``--no_learn_top``), no class
conditioning. The same K/L/learntop/permutation are openai/glow ``README.md``'s CIFAR-10 command
(``--n_level 3 --depth 32 --flow_permutation 2 --flow_coupling 1 --learntop --n_bits_x 8``).

Layer conventions, as in y0ast/Glow-PyTorch ``model.py`` / ``modules.py`` / ``utils.py`` (and openai/glow
``model.py``), kept so that a key-renaming converter could load such a checkpoint:
  * squeeze: (C, H, W) -> (4C, H/2, W/2), output channel c*4 + 2*dy + dx;
  * one step = ActNorm -> invertible 1x1 conv (W = P L (U + diag(sign_s * exp(log_s))) when LU-decomposed,
    random orthogonal init) -> coupling. Coupling: first channel half conditions the second; the net is
    conv3x3 -> ActNorm -> ReLU -> conv1x1 -> ActNorm -> ReLU -> zero-init conv3x3 (convs without bias,
    weights N(0, 0.05); the last one has a bias and a per-channel gain exp(3 * logs)); affine: shift =
    h[:, 0::2], scale = sigmoid(h[:, 1::2] + 2), z2 -> (z2 + shift) * scale; additive: z2 -> z2 + h;
  * ActNorm data-dependent init: bias = -mean, logs = log(actnorm_scale / (std + 1e-6)) per channel;
  * split (after every level but the last): keep the first half z1, factor out z2 ~ N(mean, exp(logs)^2)
    with (mean, logs) = zero-init conv3x3 of z1, mean = h[:, 0::2], logs = h[:, 1::2];
  * top prior: a zero-init conv3x3 of an all-zero input (learn_top), mean = h[:, :C], logs = h[:, C:];
    without learn_top it is N(0, I);
  * data: y0ast ``datasets.py`` (following openai/glow ``model.py``) maps uint8 k to k / 2**n_bits - 0.5
    (after k -> floor(k / 2**(8 - n_bits)) when n_bits < 8) and adds U[0, 1/2**n_bits) noise; the loss is
    -(log p(y) - D log 2**n_bits) / (D log 2) bits per dimension (y0ast ``utils.py``
    uniform_binning_correction, ``model.py``). So the flow lives on y in [-0.5, 0.5]; here images are
    x = 2y in [-1, 1] and every density of x carries the -D log 2 of that scaling.
  * temperature multiplies the std of every prior (top and splits), as the reference's sampling does
    (y0ast ``modules.py:25-29`` gaussian_sample, used by ``model.py:291-297`` and ``modules.py:286-290``).

Our own choices: the ActNorm "initialised" flag and the shuffle permutation are buffers (the reference
keeps them as plain attributes, so a reload needs ``set_actnorm_init()``); ActNorm initialises only during
``encode`` in training mode (it raises in eval mode, as the reference does); the 1x1 inverse is taken in
float64. The flat latent is standardised: every part is eps = (z - mean) / std under its own prior, so
eps ~ N(0, I), concatenated finest first: [split 1 | split 2 | ... | top], each part flattened in (C, H, W)
order (for 32x32x3, L=3: 6x16x16, 12x8x8, then the 48x4x4 top = 1536 + 768 + 768 = 3072 values).
``decode`` does not clamp: its output can leave [-1, 1] slightly (clamp when saving images). ``latent_dim``
is that flat latent's size (= C*H*W, the D of the likelihood); the generator's input (``forward``) is the flat
latent by default (``latent: flat``, our design) or y0ast's top level with re-sampled split latents
(``latent: top``): models/glow_latent.py.
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import nn
from torch.nn import functional as F
from ..registry import ARCHITECTURES
from .glow_latent import LatentChoice, check_latent_options

LOG_2PI = math.log(2 * math.pi)


def squeeze(x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, c * 4, h // 2, w // 2)


def unsqueeze(x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    x = x.reshape(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(b, c // 4, h * 2, w * 2)


class ActNorm(nn.Module):
    """Per-channel affine map y = (x + bias) * exp(logs), initialised from the first encoded batch."""

    def __init__(self, channels: int, scale: float = 1.0):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.logs = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(False))  # a buffer: state_dict carries it
        self.scale = scale
        self.allow_init = False  # set by Glow.encode only, so decoding never initialises from latents

    @torch.no_grad()
    def _initialize(self, x: torch.Tensor) -> None:
        if not self.training:
            raise RuntimeError("ActNorm is not initialised: encode a batch in training mode first "
                               "(or load a state_dict)")
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = (x - mean).pow(2).mean(dim=(0, 2, 3), keepdim=True).sqrt()
        self.bias.copy_(-mean)
        self.logs.copy_(torch.log(self.scale / (std + 1e-6)))
        self.initialized.fill_(True)

    def forward(self, x: torch.Tensor, reverse: bool = False):
        hw = x.shape[2] * x.shape[3]
        if reverse:
            return x * torch.exp(-self.logs) - self.bias, -self.logs.sum() * hw
        if self.allow_init and not bool(self.initialized):
            self._initialize(x)
        return (x + self.bias) * torch.exp(self.logs), self.logs.sum() * hw


class ConvActNorm(nn.Module):
    """Bias-free conv followed by ActNorm (the coupling net's hidden layers)."""

    def __init__(self, cin: int, cout: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False)
        nn.init.normal_(self.conv.weight, 0.0, 0.05)
        self.norm = ActNorm(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))[0]


class ZeroConv(nn.Module):
    """3x3 conv starting at zero, output times exp(3 * logs): each step / prior starts as the identity / N(0, I)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        self.logs = nn.Parameter(torch.zeros(cout, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * torch.exp(3.0 * self.logs)


class InvConv1x1(nn.Module):
    """Invertible 1x1 convolution; log|det| = h * w * log|det W|."""

    def __init__(self, channels: int, lu_decomposed: bool):
        super().__init__()
        w = torch.linalg.qr(torch.randn(channels, channels))[0]
        self.lu_decomposed = lu_decomposed
        if lu_decomposed:
            p, lower, upper = torch.linalg.lu(w)
            s = torch.diagonal(upper)
            self.register_buffer("perm", p)
            self.register_buffer("sign_s", torch.sign(s))
            self.lower = nn.Parameter(lower)
            self.upper = nn.Parameter(torch.triu(upper, 1))
            self.log_s = nn.Parameter(torch.log(s.abs()))
        else:
            self.weight = nn.Parameter(w)

    def matrix(self):
        if not self.lu_decomposed:
            return self.weight, torch.linalg.slogdet(self.weight)[1]
        eye = torch.eye(self.log_s.numel(), dtype=self.log_s.dtype, device=self.log_s.device)
        lower = torch.tril(self.lower, -1) + eye
        upper = torch.triu(self.upper, 1) + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.perm @ lower @ upper, self.log_s.sum()

    def forward(self, x: torch.Tensor, reverse: bool = False):
        w, logdet = self.matrix()
        hw = x.shape[2] * x.shape[3]
        if reverse:  # the inverse in float64 keeps float32 round trips tight
            w, logdet = torch.linalg.inv(w.double()).to(w.dtype), -logdet
        return F.conv2d(x, w[:, :, None, None]), logdet * hw


class Permute(nn.Module):
    """Fixed channel reversal or shuffle (the reference's non-learned alternatives to the 1x1 conv)."""

    def __init__(self, channels: int, shuffle: bool):
        super().__init__()
        idx = torch.randperm(channels) if shuffle else torch.arange(channels - 1, -1, -1)
        self.register_buffer("perm", idx)
        self.register_buffer("inverse", torch.argsort(idx))

    def forward(self, x: torch.Tensor, reverse: bool = False):
        return x[:, self.inverse if reverse else self.perm], 0.0


class Coupling(nn.Module):
    def __init__(self, channels: int, hidden: int, affine: bool):
        super().__init__()
        self.affine = affine
        self.net = nn.Sequential(ConvActNorm(channels // 2, hidden, 3), nn.ReLU(),
                                 ConvActNorm(hidden, hidden, 1), nn.ReLU(),
                                 ZeroConv(hidden, channels if affine else channels // 2))

    def forward(self, x: torch.Tensor, reverse: bool = False):
        a, b = x.chunk(2, dim=1)
        h = self.net(a)
        if not self.affine:
            return torch.cat([a, b - h if reverse else b + h], 1), 0.0
        shift, raw = h[:, 0::2], h[:, 1::2]
        scale = torch.sigmoid(raw + 2.0)  # bounded in (0, 1): the reference's stabilised affine coupling
        log_scale = F.logsigmoid(raw + 2.0).sum(dim=(1, 2, 3))
        if reverse:
            return torch.cat([a, b / scale - shift], 1), -log_scale
        return torch.cat([a, (b + shift) * scale], 1), log_scale


class FlowStep(nn.Module):
    def __init__(self, channels, hidden, actnorm_scale, permutation, lu_decomposed, affine):
        super().__init__()
        self.norm = ActNorm(channels, actnorm_scale)
        self.mix = (InvConv1x1(channels, lu_decomposed) if permutation == "invconv"
                    else Permute(channels, shuffle=permutation == "shuffle"))
        self.coupling = Coupling(channels, hidden, affine)

    def forward(self, x: torch.Tensor, reverse: bool = False):
        logdet = 0.0
        layers = (self.norm, self.mix, self.coupling)
        for layer in reversed(layers) if reverse else layers:
            x, d = layer(x, reverse)
            logdet = logdet + d
        return x, logdet


class Glow(LatentChoice, nn.Module):
    """Multi-scale Glow on images in [-1, 1]; see the module docstring for the latent layout and
    models/glow_latent.py for the generator's input (``latent``: flat or top, ``temperature``, ``split_noise``)."""

    def __init__(self, image_size: int = 32, channels: int = 3, hidden_channels: int = 512, K: int = 32,
                 L: int = 3, actnorm_scale: float = 1.0, lu_decomposed: bool = True, coupling: str = "affine",
                 learn_top: bool = True, n_bits: int = 8, flow_permutation: str = "invconv", latent: str = "flat",
                 temperature: float = 1.0, split_noise: str = "particle"):
        super().__init__()
        check_latent_options(latent, float(temperature), split_noise)
        if L < 1 or image_size % (2 ** L):
            raise ValueError(f"image_size {image_size} must be divisible by 2**L = {2 ** L}")
        if coupling not in ("affine", "additive"):
            raise ValueError(f"coupling must be 'affine' or 'additive', got {coupling!r}")
        if flow_permutation not in ("invconv", "shuffle", "reverse"):
            raise ValueError(f"flow_permutation must be invconv, shuffle or reverse, got {flow_permutation!r}")
        if not 1 <= n_bits <= 8:
            raise ValueError(f"n_bits must be in 1..8, got {n_bits}")
        self.spec = {"arch": "glow", "image_size": image_size, "channels": channels,
                     "hidden_channels": hidden_channels, "K": K, "L": L, "actnorm_scale": actnorm_scale,
                     "lu_decomposed": bool(lu_decomposed), "coupling": coupling, "learn_top": bool(learn_top),
                     "n_bits": n_bits, "flow_permutation": flow_permutation, "latent": latent,
                     "temperature": float(temperature), "split_noise": split_noise}
        self.latent, self.temperature, self.split_noise = latent, float(temperature), split_noise
        self._latent_init()
        self.image_shape = (channels, image_size, image_size)
        self.n_bits = n_bits
        self.levels = nn.ModuleList()
        self.split_priors = nn.ModuleList()
        self.part_shapes: list[tuple[int, int, int]] = []  # the latent parts, in flat order
        c, s = channels, image_size
        for i in range(L):
            c, s = c * 4, s // 2
            self.levels.append(nn.ModuleList(
                FlowStep(c, hidden_channels, actnorm_scale, flow_permutation, lu_decomposed,
                         coupling == "affine") for _ in range(K)))
            if i < L - 1:
                self.split_priors.append(ZeroConv(c // 2, c))
                c //= 2
                self.part_shapes.append((c, s, s))
        self.part_shapes.append((c, s, s))
        self.top_prior = ZeroConv(2 * c, 2 * c) if learn_top else None

    @property
    def latent_dim(self) -> int:
        return math.prod(self.image_shape)

    # ---- priors: (mean, logs) of each latent part ----

    def _top_stats(self, like: torch.Tensor):
        c, s, _ = self.part_shapes[-1]
        h = like.new_zeros(1, 2 * c, s, s)
        if self.top_prior is not None:
            h = self.top_prior(h)
        return h[:, :c], h[:, c:]

    def _split_stats(self, level: int, kept: torch.Tensor):
        h = self.split_priors[level](kept)
        return h[:, 0::2], h[:, 1::2]

    @contextlib.contextmanager
    def _actnorm_init_allowed(self):
        norms = [m for m in self.modules() if isinstance(m, ActNorm)]
        for m in norms:
            m.allow_init = True
        try:
            yield
        finally:
            for m in norms:
                m.allow_init = False

    # ---- the bijection ----

    def encode(self, x: torch.Tensor):
        """Images in [-1, 1] (N, C, H, W) -> (eps (N, latent_dim), log|det d eps / d x| (N,)).

        The logdet is that of the whole map x -> eps: the x/2 rescaling, the flow and the standardisations,
        so log p(x) = log N(eps; 0, I) + logdet."""
        z = x / 2  # the reference's [-0.5, 0.5] range
        logdet = x.new_full((x.shape[0],), -self.latent_dim * math.log(2.0))
        parts = []
        with self._actnorm_init_allowed():
            for i, steps in enumerate(self.levels):
                z = squeeze(z)
                for step in steps:
                    z, d = step(z)
                    logdet = logdet + d
                if i < len(self.levels) - 1:
                    z, out = z.chunk(2, dim=1)
                    mean, logs = self._split_stats(i, z)
                    parts.append((out - mean) * torch.exp(-logs))
                    logdet = logdet - logs.sum(dim=(1, 2, 3))
        mean, logs = self._top_stats(z)
        parts.append((z - mean) * torch.exp(-logs))
        logdet = logdet - logs.sum()
        return torch.cat([p.flatten(1) for p in parts], dim=1), logdet

    def decode(self, eps: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Flat standardised latents (N, latent_dim) -> images (N, C, H, W), nominally in [-1, 1] (unclamped).

        Each part becomes z = mean + temperature * std * eps under its prior; temperature 1 inverts encode."""
        sizes = [math.prod(shape) for shape in self.part_shapes]
        parts = [p.reshape(-1, *shape) for p, shape in zip(eps.flatten(1).split(sizes, dim=1), self.part_shapes)]
        mean, logs = self._top_stats(eps)
        z = mean + temperature * torch.exp(logs) * parts[-1]
        for i in reversed(range(len(self.levels))):
            if i < len(self.levels) - 1:
                mean, logs = self._split_stats(i, z)
                z = torch.cat([z, mean + temperature * torch.exp(logs) * parts[i]], dim=1)
            for step in reversed(self.levels[i]):
                z, _ = step(z, reverse=True)
            z = unsqueeze(z)
        return 2 * z

    # ---- densities ----

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Continuous log density (nats) of images x in [-1, 1], per image."""
        eps, logdet = self.encode(x)
        return -0.5 * (eps.pow(2) + LOG_2PI).sum(dim=1) + logdet

    def dequantize(self, x_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 images -> 2 * (k / 2**n_bits - 0.5 + U[0, 1/2**n_bits)) in [-1, 1] (the reference's
        preprocessing plus uniform noise, rescaled to [-1, 1]); k = floor(k / 2**(8-n_bits)) first."""
        dtype = next(self.parameters()).dtype
        k = x_uint8.to(dtype)
        if self.n_bits < 8:
            k = torch.floor(k / 2 ** (8 - self.n_bits))
        y = (k + torch.rand_like(k)) / 2 ** self.n_bits - 0.5
        return 2 * y

    def nll_bits_per_dim(self, x_uint8: torch.Tensor) -> torch.Tensor:
        """Per-image negative log-likelihood in bits per dimension under uniform dequantisation:
        -(log p_y(y) - D log 2**n_bits) / (D log 2) with y = dequantised image in [-0.5, 0.5] and
        log p_y(y) = log p_x(2y) + D log 2, D = C*H*W (the reference's objective)."""
        d = self.latent_dim
        log_py = self.log_prob(self.dequantize(x_uint8)) + d * math.log(2.0)
        return -(log_py - d * self.n_bits * math.log(2.0)) / (d * math.log(2.0))

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] -> uint8 as openai/glow's postprocess: floor((x/2 + 0.5) * 2**n_bits) * 2**(8-n_bits)."""
        y = torch.clamp(x / 2, -0.5, 0.5) + 0.5
        k = torch.floor(y * 2 ** self.n_bits) * 2 ** (8 - self.n_bits)
        return k.clamp(0, 255).to(torch.uint8)


def from_spec(spec: dict) -> Glow:
    """Rebuild a Glow (fresh weights) from its ``.spec``; load the state_dict afterwards."""
    if spec.get("arch") != "glow":
        raise ValueError(f"not a Glow spec (arch {spec.get('arch')!r})")
    return Glow(**{k: v for k, v in spec.items() if k != "arch"})


ARCHITECTURES.register("glow", lambda spec, rebuild: from_spec(spec))
