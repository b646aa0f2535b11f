"""How the networks behave during refinement, as options recorded with every result.

- Generator BatchNorm: 'eval' uses the running statistics, so a sample depends on its own latent only and
  results do not depend on the refinement batch size. 'batch' normalises with the statistics of the current
  batch, as the official DGflow code (a Chainer/PyTorch generator left in training mode) does; samples then
  interact through the batch mean and variance, and the flow's gradient includes that coupling.
- Spectral-norm thermalisation: torch's ``spectral_norm`` parametrization estimates sigma with one power
  iteration per training-mode forward. A discriminator whose ``u`` vector is stale (e.g. copied at an
  arbitrary training step) divides by a slightly wrong sigma; running extra power iterations before
  refinement settles it. The discriminator then runs in eval mode, so sigma stays fixed during refinement.
"""

from __future__ import annotations

import torch
from torch import nn

BN_MODES = ("eval", "batch")


def set_generator_bn_mode(generator: nn.Module, mode: str) -> int:
    """Put every BatchNorm of ``generator`` in ``mode``; returns how many there are. Running statistics are
    never updated in 'batch' mode (momentum 0 would be wrong: torch treats None as cumulative), so the
    generator stays exactly the loaded one."""
    if mode not in BN_MODES:
        raise ValueError(f"refine.generator_bn must be one of {BN_MODES}, got {mode!r}")
    generator.eval()
    norms = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        if mode == "batch":
            norm.train()
            norm.track_running_stats = False  # batch statistics, and no running-stat updates
    return len(norms)


def _spectral_norms(module: nn.Module):
    for sub in module.modules():
        params = getattr(sub, "parametrizations", None)
        if params is None or "weight" not in params:
            continue
        for p in params["weight"]:
            if hasattr(p, "_power_method"):
                yield sub, p


@torch.no_grad()
def thermalise_spectral_norm(discriminator: nn.Module, iterations: int) -> dict:
    """Run ``iterations`` power iterations on every spectral-normalised weight; returns the largest relative
    change of the sigma estimate, which tells how far from converged the stored vectors were."""
    if iterations < 0:
        raise ValueError(f"refine.sn_power_iterations must be >= 0, got {iterations}")
    layers, max_change = 0, 0.0
    for sub, sn in _spectral_norms(discriminator):
        layers += 1
        if iterations == 0:
            continue
        weight = sub.parametrizations["weight"].original
        matrix = sn._reshape_weight_to_matrix(weight)
        before = torch.dot(sn._u, torch.mv(matrix, sn._v))
        sn._power_method(matrix, iterations)
        after = torch.dot(sn._u, torch.mv(matrix, sn._v))
        max_change = max(max_change, float((after - before).abs() / after.abs().clamp_min(1e-12)))
    discriminator.eval()
    return {"sn_layers": layers, "sn_power_iterations": iterations, "sn_sigma_max_rel_change": max_change}
