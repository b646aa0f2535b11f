"""Which latent a Glow generator takes (models/glow.py): ``flat`` (ours, the default) or ``top`` (y0ast's).

``flat``: the whole standardised latent, one N(0, I) value per pixel and channel (3,072 at 32x32x3), every
part z = mean + T * std * eps under its prior. Refinement moves all of it; G is deterministic.

``top``: y0ast/Glow-PyTorch 13c7b01's sampling. ``model.py:291-297`` (reverse_flow) draws the top z at a
temperature T from the learned top prior and decodes; on the way down every Split2d draws its factored-out
half afresh, z2 ~ N(mean(z1), (T * std(z1))^2) (``modules.py:286-290``, gaussian_sample at ``modules.py:25-29``;
its sampling notebook ``Sample_from_Glow.ipynb`` uses T = 1). Here the generator's input is the standardised
top latent eps_top ~ N(0, I) (z_top = mean + T * std * eps_top, the same law as y0ast's draw), so the
refined latent is the top level only: 768 values for 32x32x3 with L = 3 (C*H*W / 2**(L-1)). The split
latents are not refined; each decode re-samples them at T, as y0ast does. (y0ast's reverse_flow runs under
``torch.no_grad()``, ``model.py:292``: its sampler gives no latent gradient, so a refinement through it needs
a decode like this one anyway.)

Re-sampling on every call makes G(z) random, and a gradient flow in z would then follow a different G at each
step, and each snapshot would show split noise the steps before it never saw. So ``split_noise: particle``
(the default) fixes the split noise of each particle: the refine stage holds one seeded draw per row of a
latent batch for the whole refinement of that batch (``particles``), so G_i(z) = decode(z, xi_i) is a fixed,
smooth function for particle i and every method refines z_top given xi_i. Marginally each starting sample is
still y0ast's sample (xi_i ~ N(0, I) independent of z_top). Outside a hold (previews, the corrector's and the
calibration's model samples) and for calls whose row count is not the held batch's, every decode draws fresh
noise: those are independent model samples. Calls of the held batch's size inside a hold use the held draw: in
DRS's and MH-GAN's proposal batches (len(z0) rows) the proposals of row i are all decoded with xi_i; each is
still marginally a model sample, but they share their split latents. ``split_noise: fresh`` keeps y0ast's
fresh draw on every decode, refinement included (G stochastic). Fresh draws come from seeded generators (a
per-model call counter), so a job is reproducible; y0ast draws from torch's global RNG.
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where used: the family's declaration (latent_size) is read by the planner,
    import torch   # which imports no torch

LATENTS = ("flat", "top")
SPLIT_NOISE = ("particle", "fresh")
FRESH_SEED = 0x5EED  # base of the fresh draws' seeds (one generator per draw: call counter added)


def latent_size(channels: int, image_size: int, L: int, latent: str) -> int:
    """Size of the generator's input: every value (flat) or the top level's (C*H*W / 2**(L-1))."""
    full = channels * image_size ** 2
    if latent == "flat":
        return full
    if latent == "top":
        return full // 2 ** (L - 1)
    raise ValueError(f"glow latent must be one of {', '.join(LATENTS)}, got {latent!r}")


def check_latent_options(latent: str, temperature: float, split_noise: str) -> None:
    if latent not in LATENTS:
        raise ValueError(f"glow latent must be one of {', '.join(LATENTS)}, got {latent!r}")
    if not (math.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"glow temperature must be finite and >= 0, got {temperature!r}")
    if split_noise not in SPLIT_NOISE:
        raise ValueError(f"glow split_noise must be one of {', '.join(SPLIT_NOISE)}, got {split_noise!r}")


class LatentChoice:
    """Mixed into Glow: the generator interface (``forward``) for either latent, and the split-noise hold.
    Needs ``part_shapes``, ``latent``, ``temperature``, ``split_noise`` and ``decode(eps, temperature)``."""

    def _latent_init(self) -> None:
        self._held: torch.Tensor | None = None
        self._fresh_draws = 0

    @property
    def split_dim(self) -> int:
        """Values of the split latents (every part but the top), finest first as in the flat latent."""
        return sum(math.prod(shape) for shape in self.part_shapes[:-1])

    @property
    def input_dim(self) -> int:
        """Size of the latent ``forward`` takes (the model file's latent dim)."""
        return self.split_dim + math.prod(self.part_shapes[-1]) if self.latent == "flat" \
            else math.prod(self.part_shapes[-1])

    def _noise(self, n: int, seed: int) -> torch.Tensor:
        import torch

        dtype = next(self.parameters()).dtype
        return torch.randn(n, self.split_dim, generator=torch.Generator().manual_seed(int(seed)), dtype=dtype)

    def split_noise_for(self, z_top: torch.Tensor) -> torch.Tensor:
        """The standardised split latents decoded with ``z_top``: the held draw of its batch, else fresh."""
        n = z_top.shape[0]
        if self.split_noise == "particle" and self._held is not None and self._held.shape[0] == n:
            noise = self._held
        else:
            noise = self._noise(n, FRESH_SEED + self._fresh_draws)
            self._fresh_draws += 1
        return noise.to(device=z_top.device, dtype=z_top.dtype)

    @contextlib.contextmanager
    def particles(self, n: int, seed: int):
        """Within the block, decodes of ``n`` rows use one fixed split-noise draw per row, seeded by ``seed``
        (the refine stage holds one per latent batch). A no-op for the flat latent and for ``fresh``."""
        if self.latent != "top" or self.split_noise != "particle":
            yield
            return
        previous, self._held = self._held, self._noise(n, seed)
        try:
            yield
        finally:
            self._held = previous

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """The generator: latents (N, input_dim) -> images (N, C, H, W) at ``temperature``."""
        import torch

        if self.latent == "flat":
            return self.decode(z, self.temperature)
        if z.dim() != 2 or z.shape[1] != self.input_dim:
            raise ValueError(f"this Glow (latent: top) takes latents of shape (N, {self.input_dim}), got "
                             f"{tuple(z.shape)}")
        # the flat order is [split 1 | ... | split L-1 | top]: the noise goes in front of the top latent
        return self.decode(torch.cat([self.split_noise_for(z), z], dim=1), self.temperature)
