"""MMD-GAN and OCFGAN-GP objectives (training/kernel_losses.py) and critics (models/kernel_critics.py):
the MMD estimators against a double loop, the characteristic-function distance against its closed form for
Gaussians, the gradient penalty against hand computations, loss compositions, critic shapes and specs."""

from __future__ import annotations

import math

import pytest
import torch

from dgflow_bench.models import kernel_critics
from dgflow_bench.models.kernel_critics import MMDGANCritic, OCFGANCritic
from dgflow_bench.registry import ARCHITECTURES
from dgflow_bench.training import kernel_losses as kl

F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def loop_mmd2(x, y, sigmas, biased):
    """MMD^2 by explicit sums over pairs (the textbook V- and U-statistics)."""
    def k(a, b):
        d2 = sum((float(a[i]) - float(b[i])) ** 2 for i in range(len(a)))
        return sum(math.exp(-d2 / (2 * s * s)) for s in sigmas)
    n, m = len(x), len(y)
    if biased:
        xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n)) / n ** 2
        yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m)) / m ** 2
    else:
        xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
        yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2 * xy


# ---- (1) MMD against a double loop ----

@pytest.mark.parametrize("biased", [True, False])
@pytest.mark.parametrize("n,m", [(5, 5), (4, 6)])
def test_mmd2_matches_double_loop(biased, n, m):
    g = gen(0)
    x = torch.randn(n, 3, generator=g, dtype=F64)
    y = 0.7 * torch.randn(m, 3, generator=g, dtype=F64) + 0.3
    for sigmas in (kl.MMD_GAN_SIGMAS, (0.5,)):
        got = kl.mix_rbf_mmd2(x, y, sigmas, biased=biased)
        assert float(got) == pytest.approx(loop_mmd2(x, y, sigmas, biased), rel=1e-12, abs=1e-14)


def test_mmd_gan_sigmas_and_default_estimator():
    assert kl.MMD_GAN_SIGMAS == (1.0, 2.0, 4.0, 8.0, 16.0)
    x, y = torch.randn(6, 4, generator=gen(1), dtype=F64), torch.randn(6, 4, generator=gen(2), dtype=F64)
    assert torch.equal(kl.mix_rbf_mmd2(x, y), kl.mix_rbf_mmd2(x, y, kl.MMD_GAN_SIGMAS, biased=True))
    kxx, kxy, kyy = kl.mix_rbf_kernel(x, y)
    assert torch.allclose(kxx.diagonal(), torch.full((6,), 5.0, dtype=F64))  # five kernels, each 1 at 0
    assert torch.allclose(kxy, kl.mix_rbf_kernel(y, x)[1].t())


# ---- (2) MMD of a set with itself; growth with a mean shift ----

def test_mmd2_self_is_zero_and_grows_with_shift():
    g = gen(3)
    x = torch.randn(64, 8, generator=g, dtype=F64)
    assert float(kl.mix_rbf_mmd2(x, x, biased=True)) == 0.0
    # unbiased: two independent samples of one law give ~0 (either sign), far below a unit shift
    y = torch.randn(64, 8, generator=g, dtype=F64)
    same = abs(float(kl.mix_rbf_mmd2(x, y, biased=False)))
    values = [float(kl.mix_rbf_mmd2(x, y + c, biased=b)) for b in (True, False) for c in (0.0, 0.5, 1.0, 2.0)]
    biased, unbiased = values[:4], values[4:]
    assert biased == sorted(biased) and unbiased == sorted(unbiased)
    assert same < 0.1 * unbiased[2]


# ---- (3) characteristic-function distance ----

def gaussian_cfd_closed_form(delta2: float, s1: float, s2: float, sigma: float, d: int) -> tuple[float, float, float]:
    """E_t |phi_1(t) - phi_2(t)|^2 for N(mu1, s1^2 I_d), N(mu2, s2^2 I_d), t ~ N(0, sigma^2 I_d), |mu1-mu2|^2 = delta2.

    |phi_1 - phi_2|^2 = e^{-s1^2|t|^2} + e^{-s2^2|t|^2} - 2 cos(t.delta) e^{-(s1^2+s2^2)|t|^2/2}, and per
    coordinate E[e^{i t delta_j - b t^2}] = (1 + 2 b sigma^2)^{-1/2} exp(-sigma^2 delta_j^2 / (2 (1 + 2 b sigma^2))).
    Returns (distance, E e^{-s1^2|t|^2}, E e^{-s2^2|t|^2}); the last two give the estimator's finite-sample
    bias (1 - E|phi_1|^2)/n + (1 - E|phi_2|^2)/m."""
    a = (1 + 2 * s1 ** 2 * sigma ** 2) ** (-d / 2)
    b = (1 + 2 * s2 ** 2 * sigma ** 2) ** (-d / 2)
    c = 1 + (s1 ** 2 + s2 ** 2) * sigma ** 2
    return a + b - 2 * c ** (-d / 2) * math.exp(-sigma ** 2 * delta2 / (2 * c)), a, b


def test_cf_distance_matches_gaussian_closed_form():
    d, s1, s2, sigma, n, k = 3, 0.5, 1.0, 0.8, 2000, 2000
    mu2 = torch.ones(d, dtype=F64)
    closed, a, b = gaussian_cfd_closed_form(float(mu2.pow(2).sum()), s1, s2, sigma, d)
    expected = closed + (1 - a) / n + (1 - b) / n  # exact mean of the estimator (bias 4e-4 here)
    g = gen(4)
    x = s1 * torch.randn(n, d, generator=g, dtype=F64)
    y = mu2 + s2 * torch.randn(n, d, generator=g, dtype=F64)
    freqs = sigma * torch.randn(k, d, generator=g, dtype=F64)
    # Over 10 seeds this configuration's estimate has standard deviation ~0.012 (2.5% of 0.464):
    # a 0.05 tolerance is about four standard deviations.
    assert float(kl.cf_distance(x, y, freqs)) == pytest.approx(expected, abs=0.05)
    assert closed == pytest.approx(0.4640, abs=1e-4)
    # identical sets: exactly zero; the same law: ~ the 2/n bias only
    assert float(kl.cf_distance(x, x, freqs)) == 0.0
    x2 = s1 * torch.randn(n, d, generator=g, dtype=F64)
    assert float(kl.cf_distance(x, x2, freqs)) < 0.01


def test_empirical_cf_converges_to_gaussian_cf():
    g = gen(5)
    mu, s = torch.tensor([0.3, -0.5], dtype=F64), 0.7
    x = mu + s * torch.randn(200_000, 2, generator=g, dtype=F64)
    t = torch.tensor([[0.0, 0.0], [1.0, 0.5], [-0.4, 1.2]], dtype=F64)
    re, im = kl.empirical_cf(x, t)
    phase, modulus = t @ mu, torch.exp(-0.5 * s ** 2 * t.pow(2).sum(1))
    assert torch.allclose(re, modulus * torch.cos(phase), atol=0.01)
    assert torch.allclose(im, modulus * torch.sin(phase), atol=0.01)


def test_cf_distance_matches_complex_loop():
    g = gen(6)
    x, y = torch.randn(7, 3, generator=g, dtype=F64), torch.randn(5, 3, generator=g, dtype=F64) + 1
    t = torch.randn(4, 3, generator=g, dtype=F64)
    direct = 0.0
    for tk in t:
        px = sum(complex(math.cos(float(tk @ xi)), math.sin(float(tk @ xi))) for xi in x) / len(x)
        py = sum(complex(math.cos(float(tk @ yi)), math.sin(float(tk @ yi))) for yi in y) / len(y)
        direct += abs(px - py) ** 2 / len(t)
    assert float(kl.cf_distance(x, y, t)) == pytest.approx(direct, rel=1e-12)


def test_ecfd_weightings_draw_scaled_frequencies():
    g = gen(7)
    x, y = torch.randn(16, 4, generator=g, dtype=F64), torch.randn(16, 4, generator=g, dtype=F64) + 0.5
    # fixed sigmas: the sum over sigmas of cf_distance at N(0, sigma^2) draws, in draw order
    got = kl.gaussian_ecfd(x, y, (1.0, 2.0), n_freqs=8, generator=gen(8))
    g8 = gen(8)
    e1, e2 = torch.randn(8, 4, generator=g8, dtype=F64), torch.randn(8, 4, generator=g8, dtype=F64)
    assert float(got) == pytest.approx(float(kl.cf_distance(x, y, e1) + kl.cf_distance(x, y, 2 * e2)), rel=1e-12)
    # optimised: t = eps * exp(log_sigma) per feature, divided by ||sigma||_2; gradient reaches log_sigma
    log_sigma = torch.tensor([[0.0, 0.5, -0.5, 1.0]], dtype=F64, requires_grad=True)
    got = kl.optimized_gaussian_ecfd(x, y, log_sigma, n_freqs=8, generator=gen(9))
    sigma = log_sigma.detach().exp()
    eps = torch.randn(8, 4, generator=gen(9), dtype=F64)
    assert float(got.detach()) == pytest.approx(float(kl.cf_distance(x, y, eps * sigma) / sigma.norm()), rel=1e-12)
    got.backward()
    assert log_sigma.grad is not None and torch.isfinite(log_sigma.grad).all() and log_sigma.grad.abs().sum() > 0


# ---- (4) gradient penalty ----

def test_gradient_penalty_linear_critic_meets_target():
    # f(x) = W x with the summed row vector of unit norm: every gradient is that vector, so the penalty is
    # (sqrt(1 + D·eps) - 1)^2 ~ (D·eps/2)^2, zero up to the 1e-7 stabiliser; scaled by 2 it is (sqrt(4 + D·eps) - 1)^2.
    g = gen(10)
    D = 3 * 4 * 4
    W = torch.randn(5, D, generator=g, dtype=F64)
    W = W / W.sum(0).norm()
    real, fake = torch.randn(6, 3, 4, 4, generator=g, dtype=F64), torch.randn(6, 3, 4, 4, generator=g, dtype=F64)
    for scale, target in ((1.0, 1.0), (2.0, 4.0)):
        critic = lambda x: x.flatten(1) @ (scale * W).t()  # noqa: E731
        gp = float(kl.ocfgan_gradient_penalty(critic, real, fake, generator=gen(11)))
        assert gp == pytest.approx((math.sqrt(target + D * 1e-7) - 1) ** 2, rel=1e-9, abs=1e-15)
    assert (math.sqrt(1 + D * 1e-7) - 1) ** 2 < 1e-10


def test_gradient_penalty_quadratic_critic_by_hand():
    # f(x) = 0.5 ||x||^2 (one output): the gradient at x_hat_i is x_hat_i itself
    g = gen(12)
    real, fake = torch.randn(5, 2, 3, 3, generator=g, dtype=F64), torch.randn(5, 2, 3, 3, generator=g, dtype=F64)
    gp = kl.ocfgan_gradient_penalty(lambda x: 0.5 * x.flatten(1).pow(2).sum(1), real, fake, generator=gen(13))
    alpha = torch.rand(5, 1, 1, 1, generator=gen(13), dtype=F64)
    x_hat = (alpha * real + (1 - alpha) * fake).flatten(1)
    by_hand = ((torch.sqrt((x_hat ** 2 + 1e-7).sum(1)) - 1) ** 2).mean()
    assert float(gp.detach()) == pytest.approx(float(by_hand), rel=1e-12)


# ---- loss compositions ----

def test_one_sided_penalty_and_loss_compositions():
    f_real = torch.tensor([[1.0, 0.0], [3.0, 2.0]], dtype=F64)  # feature means (2, 1)
    f_fake = torch.tensor([[0.0, 2.0], [2.0, 4.0]], dtype=F64)  # feature means (1, 3)
    pen = kl.one_sided_penalty(f_real, f_fake)
    assert float(pen) == pytest.approx((0.0 + 2.0) / 2)
    assert float(kl.one_sided_penalty(f_fake, f_real)) == pytest.approx(0.5)
    g = gen(14)
    real, fake = torch.rand(2, 1, 4, 4, generator=g, dtype=F64), torch.rand(2, 1, 4, 4, generator=g, dtype=F64)
    rec_r, rec_f = real + 0.1, fake - 0.2
    mmd = math.sqrt(float(kl.mix_rbf_mmd2(f_real, f_fake)))
    crit = kl.mmd_gan_critic_loss(f_real, f_fake, real, fake, rec_r, rec_f)
    assert float(crit.loss) == pytest.approx(-mmd + 16 * 1.0 + 8 * 0.01 + 8 * 0.04, rel=1e-12)
    assert crit.terms["ae_real"] == pytest.approx(0.01) and crit.terms["one_sided"] == pytest.approx(1.0)
    assert float(kl.mmd_gan_generator_loss(f_real, f_fake).loss) == pytest.approx(mmd - 16.0, rel=1e-12)
    # OCFGAN with fixed sigma, same draws for both calls
    ecfd = math.sqrt(float(kl.gaussian_ecfd(f_real, f_fake, (1.0,), 8, gen(15))))
    oc = kl.ocfgan_critic_loss(f_real, f_fake, torch.tensor(0.3, dtype=F64), generator=gen(15))
    assert float(oc.loss) == pytest.approx(-ecfd + 10 * 0.3 + 16 * 1.0, rel=1e-12)
    og = kl.ocfgan_generator_loss(f_real, f_fake, generator=gen(15))
    assert float(og.loss) == pytest.approx(ecfd - 16.0, rel=1e-12)


def test_mmd_gan_schedule_and_clipping():
    steps = [kl.mmd_gan_critic_steps(i) for i in (0, 24, 25, 26, 499, 500, 501, 1000)]
    assert steps == [100, 100, 5, 5, 5, 100, 5, 100]
    critic = MMDGANCritic(isize=16, channels=1, k=4, ndf=4, ngf=4)
    kl.clip_parameters_(critic.encoder)
    assert max(float(p.detach().abs().max()) for p in critic.encoder.parameters()) <= 0.01
    assert max(float(p.detach().abs().max()) for p in critic.decoder.parameters()) > 0.01  # decoder untouched


# ---- (5) critics ----

@pytest.mark.parametrize("isize", [32, 64])
def test_critic_shapes_and_spec_round_trip(isize):
    torch.manual_seed(0)
    x = torch.randn(3, 3, isize, isize)
    mmd = MMDGANCritic(isize=isize, channels=3, k=16, ndf=8, ngf=8)
    feats, rec = mmd.autoencode(x)
    assert feats.shape == (3, 16) and rec.shape == x.shape and rec.abs().max() <= 1
    assert torch.equal(mmd(x), feats)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in OCFGANCritic(isize=isize, ndf=8).modules())
    ocf = OCFGANCritic(isize=isize, channels=3, k=32, ndf=8)
    assert ocf(x).shape == (3, 32)
    for net in (mmd, ocf):
        for rebuilt in (kernel_critics.from_spec(net.spec), ARCHITECTURES[net.spec["arch"]](net.spec, None)):
            assert rebuilt.spec == net.spec and type(rebuilt) is type(net)
            rebuilt.load_state_dict(net.state_dict())
            net.eval(), rebuilt.eval()
            assert torch.equal(rebuilt(x), net(x))
    with pytest.raises(ValueError):
        kernel_critics.from_spec({"arch": "dcgan_generator"})
    with pytest.raises(ValueError):
        OCFGANCritic(isize=48)


def test_critic_layer_widths_follow_reference():
    # 32 px, ndf 64: convs 3->64 (16 px), 64->128 (8 px), 128->256 (4 px), 256->k (1 px); no biases
    convs = [m for m in OCFGANCritic(isize=32, k=32).modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 64), (64, 128), (128, 256), (256, 32)]
    assert all(c.bias is None for c in convs)
    mmd = MMDGANCritic(isize=32, k=128)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in mmd.encoder.modules()) == 2
    assert mmd.decoder.spec["z_dim"] == 128


def test_gradient_penalty_through_ocfgan_critic():
    torch.manual_seed(1)
    critic = OCFGANCritic(isize=16, channels=3, k=8, ndf=4)
    real, fake = torch.rand(4, 3, 16, 16) * 2 - 1, torch.rand(4, 3, 16, 16) * 2 - 1
    gp = kl.ocfgan_gradient_penalty(critic, real, fake, generator=gen(16))
    log_sigma = torch.zeros(1, 8, requires_grad=True)
    parts = kl.ocfgan_critic_loss(critic(real), critic(fake), gp, log_sigma=log_sigma, generator=gen(17))
    parts.loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in critic.parameters())
    assert log_sigma.grad is not None and set(parts.terms) == {"ecfd2", "gp", "one_sided"}
