"""Generator BatchNorm mode and spectral-norm thermalisation, the two refinement options recorded with results."""

from __future__ import annotations

import pytest
import torch

from dgflow_bench.models.dcgan import DCGANGenerator, SNDCGANDiscriminator
from dgflow_bench.refine.network_modes import set_generator_bn_mode, thermalise_spectral_norm


def _generator() -> DCGANGenerator:
    torch.manual_seed(0)
    g = DCGANGenerator(z_dim=8, bottom_width=4, ch=16)
    g.train()
    with torch.no_grad():  # non-trivial running statistics, so 'eval' and 'batch' really differ
        for _ in range(3):
            g(torch.randn(32, 8) * 2 + 1)
    return g


def test_eval_mode_makes_samples_independent_of_their_batch():
    g = _generator()
    assert set_generator_bn_mode(g, "eval") == 4
    z = torch.randn(6, 8)
    with torch.no_grad():
        alone, together = g(z[:3]), g(z)[:3]
    torch.testing.assert_close(alone, together)


def test_batch_mode_uses_batch_statistics_and_never_changes_the_generator():
    g = _generator()
    before = {k: v.clone() for k, v in g.state_dict().items()}
    set_generator_bn_mode(g, "batch")
    z = torch.randn(6, 8)
    with torch.no_grad():
        alone, together = g(z[:3]), g(z)[:3]
    assert not torch.allclose(alone, together)  # samples interact through the batch mean and variance
    for key, value in g.state_dict().items():
        torch.testing.assert_close(value, before[key], msg=key)  # running statistics untouched
    with pytest.raises(ValueError, match="generator_bn"):
        set_generator_bn_mode(g, "train")


def test_thermalisation_converges_sigma_to_the_largest_singular_value():
    torch.manual_seed(1)
    d = SNDCGANDiscriminator(bottom_width=4, ch=16, spectral_norm=True).eval()
    layers = [m for m in d.modules() if hasattr(m, "parametrizations")]
    for layer in layers:  # stale power-iteration vectors, as after a copy at an arbitrary step
        sn = layer.parametrizations["weight"][0]
        sn._u.copy_(torch.nn.functional.normalize(torch.randn_like(sn._u), dim=0))
        sn._v.copy_(torch.nn.functional.normalize(torch.randn_like(sn._v), dim=0))

    @torch.no_grad()
    def worst_sigma_error() -> float:
        errors = []
        for layer in layers:
            sn = layer.parametrizations["weight"][0]
            matrix = sn._reshape_weight_to_matrix(layer.parametrizations["weight"].original)
            estimate = torch.dot(sn._u, torch.mv(matrix, sn._v))
            errors.append(float(abs(estimate / torch.linalg.matrix_norm(matrix, ord=2) - 1)))
        return max(errors)

    stale = worst_sigma_error()
    info = thermalise_spectral_norm(d, 0)
    assert info["sn_layers"] == len(layers) == 8 and worst_sigma_error() == stale  # 0 iterations: untouched
    info = thermalise_spectral_norm(d, 200)
    assert stale > 0.05 and worst_sigma_error() < 1e-3 and info["sn_sigma_max_rel_change"] > 0.05
    assert not d.training
