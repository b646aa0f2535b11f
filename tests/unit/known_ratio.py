"""A known density ratio for the rejection baselines' tests: proposal N(0, 1) (the prior, data space, no
generator) and target N(mu, s^2), whose exact log-ratio is the optimal discriminator's logit."""

import math

import torch

F64 = torch.float64
MU, S = 0.5, 0.8  # s < 1 keeps the ratio to N(0, 1) bounded (M ~ 1.77)


def gen_rng(seed=0):
    return torch.Generator().manual_seed(seed)


def log_ratio(mu=MU, s=S):
    """d(x) = log N(x; mu, s^2) - log N(x; 0, 1), exactly: the optimal discriminator's logit."""
    return lambda x: -math.log(s) - (x.reshape(-1) - mu) ** 2 / (2 * s * s) + x.reshape(-1) ** 2 / 2


def log_max_ratio(mu=MU, s=S):
    """log M: the ratio's maximum, at x* = mu / (1 - s^2)."""
    return float(log_ratio(mu, s)(torch.tensor([mu / (1 - s * s)], dtype=F64)))


def base_latents(n, dim=1, seed=1):
    return torch.randn(n, dim, generator=gen_rng(seed), dtype=F64)


def target_samples(n, seed=3, mu=MU, s=S):
    """Real rows (n, 1) from the target, for the calibration fits."""
    return mu + s * torch.randn(n, 1, generator=gen_rng(seed), dtype=F64)


def assert_target_moments(x, mu=MU, s=S, k=4.0):
    """Mean within k * s / sqrt(n), variance within k * s^2 sqrt(2 / (n - 1)) (k = 4: ~4 standard errors)."""
    x = x.reshape(-1)
    n = x.numel()
    assert abs(float(x.mean()) - mu) < k * s / math.sqrt(n)
    assert abs(float(x.var()) - s * s) < k * s * s * math.sqrt(2 / (n - 1))


def linear_tanh_generator():
    weight = torch.tensor([[1.0, -0.5, 0.3], [0.2, 0.8, -1.1]], dtype=F64)
    return lambda z: torch.tanh(z @ weight)


class Counting:
    """Wraps a network and counts the samples it sees, independently of the method's own count."""

    def __init__(self, fn):
        self.fn, self.samples = fn, 0

    def __call__(self, x):
        self.samples += x.shape[0]
        return self.fn(x)


def counts(gf=0, gb=0, df=0, db=0):
    return {"generator_forward": gf, "generator_backward": gb, "discriminator_forward": df,
            "discriminator_backward": db}
