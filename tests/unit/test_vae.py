"""The VAE encoder (models/vae.py) and the ELBO terms (training/vae_loss.py)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import ContinuousBernoulli, Normal

from dgflow_bench.models import vae
from dgflow_bench.models.release_cnn import ReleaseCNNDecoder
from dgflow_bench.registry import ARCHITECTURES
from dgflow_bench.training import vae_loss
from dgflow_bench.training.vae_loss import (decoder_logits, elbo_terms, gaussian_kl, recon_log_likelihood,
                                            reparameterise)


# ---- (1) KL(q || N(0, I)) ----

def test_gaussian_kl_matches_hand_values():
    # one dimension: KL = 0.5 (mu^2 + s^2 - 1 - log s^2)
    mu = torch.tensor([[0.0], [1.0], [0.0], [-2.0]], dtype=torch.float64)
    logvar = torch.tensor([[0.0], [0.0], [math.log(4.0)], [math.log(0.25)]], dtype=torch.float64)
    expected = [0.0, 0.5, 0.5 * (4.0 - 1.0 - math.log(4.0)), 0.5 * (4.0 + 0.25 - 1.0 - math.log(0.25))]
    assert gaussian_kl(mu, logvar).tolist() == pytest.approx(expected, abs=1e-12)
    # dimensions add up
    both = gaussian_kl(torch.cat([mu, mu.flip(0)], 1), torch.cat([logvar, logvar.flip(0)], 1))
    assert both.tolist() == pytest.approx([a + b for a, b in zip(expected, expected[::-1])], abs=1e-12)


def test_gaussian_kl_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu = torch.tensor([[0.3, -1.2, 0.8]], dtype=torch.float64)
    logvar = torch.tensor([[-0.5, 0.4, 0.0]], dtype=torch.float64)
    n = 200_000
    std = (0.5 * logvar).exp()
    z = mu + std * torch.randn((n, 3), generator=g, dtype=torch.float64)
    log_ratio = (Normal(mu, std).log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum(1)
    estimate, stderr = log_ratio.mean().item(), log_ratio.std().item() / math.sqrt(n)
    # tolerance: 4 standard errors of the Monte-Carlo mean (seeded, so the check is deterministic)
    assert abs(estimate - gaussian_kl(mu, logvar).item()) < 4 * stderr


# ---- (2) reconstruction log-likelihood ----

def test_bernoulli_recon_matches_direct_formula():
    g = torch.Generator().manual_seed(1)
    logits = 3 * torch.randn((2, 3, 4, 4), generator=g, dtype=torch.float64)
    x = torch.rand((2, 3, 4, 4), generator=g, dtype=torch.float64) * 2 - 1
    x[0, 0, 0, 0], x[1, 2, 3, 3] = -1.0, 1.0  # the ends of the range
    t, lam = (x + 1) / 2, torch.sigmoid(logits)
    direct = (t * lam.log() + (1 - t) * (1 - lam).log()).flatten(1).sum(1)
    assert torch.allclose(recon_log_likelihood(logits, x), direct, atol=1e-10)
    assert torch.allclose(recon_log_likelihood(logits, x, "bernoulli"), direct, atol=1e-10)


def test_continuous_bernoulli_recon_matches_its_density():
    g = torch.Generator().manual_seed(2)
    logits = 2 * torch.randn((3, 1, 4, 4), generator=g, dtype=torch.float64)
    logits[0, 0, 0, :2] = torch.tensor([0.0, 1e-4])  # the removable singularity at lambda = 1/2
    x = torch.rand((3, 1, 4, 4), generator=g, dtype=torch.float64) * 2 - 1
    t, lam = (x + 1) / 2, torch.sigmoid(logits)
    safe = torch.where(logits.abs() < 1e-8, torch.full_like(logits, 1e-8), logits)
    log_c = torch.log(safe / (2 * torch.sigmoid(safe) - 1))  # 2 atanh(1 - 2 lam) / (1 - 2 lam)
    direct = (t * lam.log() + (1 - t) * (1 - lam).log() + log_c).flatten(1).sum(1)
    ours = recon_log_likelihood(logits, x, "continuous_bernoulli")
    assert torch.allclose(ours, direct, atol=1e-8)
    torch_cb = ContinuousBernoulli(logits=logits).log_prob(t).flatten(1).sum(1)
    assert torch.allclose(ours, torch_cb, atol=1e-4)  # torch approximates near 1/2 over a wider window
    with pytest.raises(ValueError):
        recon_log_likelihood(logits, x, "gaussian")


def test_decoder_logits_are_the_release_decoder_presigmoid():
    torch.manual_seed(3)
    dec = ReleaseCNNDecoder(3, isize=16, ngf=8, output="sigmoid").eval()
    z = torch.randn(4, 3)
    with torch.no_grad():
        assert torch.allclose((torch.sigmoid(decoder_logits(dec, z)) - 0.5) * 2, dec(z), atol=1e-6)


# ---- (3) reparameterisation ----

def test_reparameterise_moments_and_gradients():
    n = 200_000
    mu = torch.tensor([0.5, -2.0, 0.0], dtype=torch.float64).expand(n, 3).clone().requires_grad_(True)
    logvar = torch.tensor([0.0, math.log(0.1), math.log(3.0)], dtype=torch.float64)
    logvar = logvar.expand(n, 3).clone().requires_grad_(True)
    z = reparameterise(mu, logvar, torch.Generator().manual_seed(4))
    var = logvar[0].detach().exp()
    # 5 standard errors: of the mean, sqrt(var / n); of the variance, var * sqrt(2 / n)
    assert ((z.mean(0) - mu[0]).abs() < 5 * (var / n).sqrt()).all()
    assert ((z.var(0) - var).abs() < 5 * var * math.sqrt(2 / n)).all()
    z.sum().backward()
    eps = torch.randn((n, 3), generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    assert torch.equal(mu.grad, torch.ones_like(mu))
    assert torch.allclose(logvar.grad, 0.5 * (0.5 * logvar.detach()).exp() * eps)
    # the same generator state gives the same z: the noise comes only from the generator
    again = reparameterise(mu.detach(), logvar.detach(), torch.Generator().manual_seed(4))
    assert torch.equal(again, z.detach())


# ---- (4) a tiny VAE learns (z_dim 3, 16 px, ndf = ngf = 8) ----

def _toy_images() -> torch.Tensor:
    """Four fixed 16 px images in [-1, 1]: a colour block in a different quadrant of each."""
    x = torch.full((4, 3, 16, 16), -0.8)
    for i, (r, c) in enumerate([(0, 0), (0, 8), (8, 0), (8, 8)]):
        x[i, i % 3, r:r + 8, c:c + 8] = 0.8
    return x


def _adam_step(params, state, lr=3e-3, b1=0.9, b2=0.999, eps=1e-8):
    """A plain Adam update, written out: torch.optim's first use imports torch._dynamo (about 2 s here)."""
    state["t"] = t = state.get("t", 0) + 1
    with torch.no_grad():
        for i, p in enumerate(params):
            m, v = state.setdefault(i, (torch.zeros_like(p), torch.zeros_like(p)))
            m.mul_(b1).add_(p.grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            p.sub_(lr * (m / (1 - b1 ** t)) / ((v / (1 - b2 ** t)).sqrt() + eps))


def _train(steps: int) -> list[float]:
    torch.manual_seed(5)
    enc, dec = vae.VAEEncoder(3, isize=16, ndf=8), ReleaseCNNDecoder(3, isize=16, ngf=8, output="sigmoid")
    params, state = [*enc.parameters(), *dec.parameters()], {}
    g, x, losses = torch.Generator().manual_seed(6), _toy_images(), []
    for _ in range(steps):
        terms = elbo_terms(enc, dec, x, g)
        for p in params:
            p.grad = None
        terms["loss"].backward()
        _adam_step(params, state)
        losses.append(terms["loss"].item())
    return losses


def test_tiny_vae_training_reduces_loss_deterministically():
    losses = _train(200)  # under 2 s on one thread
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert all(math.isfinite(v) for v in losses)
    assert last < 0.75 * first, (first, last)  # observed: about 490 -> 265
    assert _train(5) == losses[:5]  # seeded: the same run gives the same losses


def test_elbo_terms_are_consistent():
    torch.manual_seed(7)
    enc, dec = vae.VAEEncoder(2, isize=16, ndf=8), ReleaseCNNDecoder(2, isize=16, ngf=8, output="sigmoid")
    terms = elbo_terms(enc, dec, _toy_images(), torch.Generator().manual_seed(8), kl_weight=0.5)
    assert terms["z"].shape == (4, 2)
    assert torch.allclose(terms["elbo"], terms["recon"] - terms["kl"])
    assert torch.allclose(terms["loss"], 0.5 * terms["kl"] - terms["recon"])
    assert terms["recon"].item() < 0 and terms["kl"].item() >= 0


# ---- (5) the encoder's spec ----

def test_encoder_shapes_and_spec_round_trip():
    torch.manual_seed(9)
    enc = vae.VAEEncoder(64)
    assert enc.spec == {"arch": "vae_encoder", "z_dim": 64, "isize": 32, "ndf": 64, "channels": 3}
    convs = [m for m in enc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 64), (64, 128), (128, 256), (256, 128)]
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    rebuilt = vae.from_spec(enc.spec)
    assert rebuilt.spec == enc.spec
    rebuilt.load_state_dict(enc.state_dict())  # strict: the same names and shapes
    via_registry = ARCHITECTURES["vae_encoder"](enc.spec, None)
    via_registry.load_state_dict(enc.state_dict())
    enc.eval(), rebuilt.eval(), via_registry.eval()
    with torch.no_grad():
        mu, logvar = enc(x)
        assert mu.shape == logvar.shape == (2, 64)
        for other in (rebuilt, via_registry):
            assert all(torch.equal(a, b) for a, b in zip(other(x), (mu, logvar)))
    with pytest.raises(ValueError):
        vae.from_spec({"arch": "dcgan_generator"})
    with pytest.raises(ValueError):
        vae.VAEEncoder(4, isize=24)
