"""The VAE's training objective, the negative evidence lower bound, as pure functions.

    ELBO(x) = E_{q(z|x)}[log p(x|z)] - KL(q(z|x) || N(0, I)),    loss = -(recon - kl_weight * kl)

with q(z|x) = N(mu, diag(exp(logvar))) from models/vae.py and one reparameterised sample of z per image.

Likelihood (our choice, from the facts): the released VAE decoder ends in a sigmoid whose [0, 1] output is
mapped to [-1, 1] (clear-nus/DGflow util.py ``t_cnn_vae``, torch_models.py ``CNNDecoder.forward``), and
DGflow's generator is that output. A sigmoid mean over [0, 1] pixels is the Bernoulli VAE; the first
author's own VAE code trains exactly so, sigmoid cross-entropy on [0, 1] images (clear-nus/CHyVAE
code/models.py). So the default is ``"bernoulli"``: pixels t = (x + 1) / 2 in [0, 1], decoder probability
lambda = sigmoid(logit), log p(x|z) = sum t log lambda + (1 - t) log(1 - lambda) (the cross-entropy used on
grey levels, not a normalised density for t strictly between 0 and 1). Its mean is lambda, so the
generator "decoder mean mapped to [-1, 1]" is exactly the release's output. ``"continuous_bernoulli"``
(Loaiza-Ganem & Cunningham, 2019) adds the normaliser log C(lambda) and is a proper density on [0, 1], but
its mean is not lambda, so the release's generator would not be its mean; it is offered, not the default.
The log-likelihood is taken from the decoder's pre-sigmoid logits (``decoder_logits``) for precision.

Recipe: none is public (no VAE training code in clear-nus/DGflow); the schema block ``vae_model``
(schemas/definitions/image_families.yaml) holds the defaults and says where each comes from.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LIKELIHOODS = ("bernoulli", "continuous_bernoulli")
_LOGIT_EPS = 1e-6

def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per sample, shape (N,):
    0.5 * sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(1)


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I) drawn from ``generator``; differentiable in mu, logvar."""
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    return mu + torch.exp(0.5 * logvar) * eps


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] -> pixel targets in [0, 1] (the inverse of the release's (x - 0.5) * 2)."""
    return (x + 1.0) * 0.5


def decoder_logits(decoder: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """Pre-sigmoid outputs of a sigmoid decoder at z.

    A decoder with a ``logits(z)`` method is asked; a ReleaseCNNDecoder-like net (``main`` an nn.Sequential
    ending in nn.Sigmoid) runs ``main`` without its last layer; any other decoder's [-1, 1] output is mapped
    back through the inverse sigmoid, clamped to [eps, 1 - eps]."""
    if hasattr(decoder, "logits"):
        return decoder.logits(z)
    main = getattr(decoder, "main", None)
    if isinstance(main, nn.Sequential) and isinstance(main[-1], nn.Sigmoid):
        return main[:-1](z.reshape(z.shape[0], -1, 1, 1))
    p = to_unit(decoder(z)).clamp(_LOGIT_EPS, 1.0 - _LOGIT_EPS)
    return torch.log(p) - torch.log1p(-p)


def _log_cb_normaliser(logits: torch.Tensor) -> torch.Tensor:
    """log C(lambda), C = 2 atanh(1 - 2 lambda) / (1 - 2 lambda) = logit(lambda) / (2 lambda - 1); C(1/2) = 2."""
    lam = torch.sigmoid(logits)
    near_half = logits.abs() < 1e-3
    safe = torch.where(near_half, torch.ones_like(logits), logits)
    exact = torch.log(safe / (2.0 * torch.sigmoid(safe) - 1.0))
    # Taylor expansion about logit 0: log C = log 2 + (2 lambda - 1)^2 / 3 + O((2 lambda - 1)^4)
    taylor = math.log(2.0) + (2.0 * lam - 1.0).pow(2) / 3.0
    return torch.where(near_half, taylor, exact)


def recon_log_likelihood(logits: torch.Tensor, x: torch.Tensor, likelihood: str = "bernoulli") -> torch.Tensor:
    """log p(x|z) per sample, shape (N,), for images x in [-1, 1] and decoder logits of the same shape."""
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
    target = to_unit(x)
    ll = -F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    if likelihood == "continuous_bernoulli":
        ll = ll + _log_cb_normaliser(logits)
    return ll.flatten(1).sum(1)


def elbo_terms(encoder: nn.Module, decoder: nn.Module, x: torch.Tensor, generator: torch.Generator,
               likelihood: str = "bernoulli", kl_weight: float = 1.0) -> dict:
    """One-sample ELBO estimate on the batch x (images in [-1, 1]), every term a mean over the batch.

    Returns {"recon": E_q log p(x|z) (a log-likelihood; higher is better), "kl": KL(q(z|x) || p(z)),
    "elbo": recon - kl, "loss": kl_weight * kl - recon (= -ELBO when kl_weight is 1), "z": the sample}."""
    mu, logvar = encoder(x)
    z = reparameterise(mu, logvar, generator)
    recon = recon_log_likelihood(decoder_logits(decoder, z), x, likelihood).mean()
    kl = gaussian_kl(mu, logvar).mean()
    return {"recon": recon, "kl": kl, "elbo": recon - kl, "loss": kl_weight * kl - recon, "z": z}
