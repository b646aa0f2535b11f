"""Training objectives of the kernel GANs whose generators DGflow refines: MMD-GAN (Li et al., NeurIPS 2017)
and OCFGAN-GP (Ansari, Scarlett & Soh, CVPR 2020). Pure functions of feature batches (and, for the gradient
penalty, of the critic); the critics themselves are in models/kernel_critics.py.

Every loss here is a quantity to *minimise*; each loss function returns ``LossParts(loss, terms)`` with the
scalar to back-propagate and its pieces (detached) for logging.

MMD-GAN facts (OctoberChang/MMD-GAN, ``mmd_gan.py`` unless noted; ``mmd.py`` is not in our index, its
``mix_rbf_mmd2`` / ``_mmd2`` were read in the verbatim copy Memirlan/MMD-GAN ``mmd.py``):

- kernel: sum over sigma in (1, 2, 4, 8, 16) of exp(-||a - b||^2 / (2 sigma^2)) on the encoder features;
- MMD^2 estimator: ``biased=True`` (the V-statistic, diagonal kept) in both critic and generator steps;
  ``biased=False`` drops the diagonals of K_XX, K_YY (U-statistic; K_XY keeps all m·m terms);
- the distance used is sqrt(relu(MMD^2));
- one-sided penalty: mean over feature dimensions of relu(mean f(fake) - mean f(real)) (class ONE_SIDED
  applied to mean f(real) - mean f(fake)), weight lambda_rg = 16;
- autoencoder term: mean squared error between each batch and its decoder reconstruction, weights
  lambda_AE_X = lambda_AE_Y = 8 (``util.match(..., 'L2')``);
- critic maximises sqrt(MMD^2) + 16·(-penalty) - 8·L2_X - 8·L2_Y (``errD.backward(mone)``), i.e. minimises
  ``mmd_gan_critic_loss``; the generator minimises sqrt(MMD^2) + 16·(-penalty) (``errG.backward(one)``), so
  the generator term *rewards* the penalty, as in the reference;
- critic steps: 100 while fewer than 25 generator steps are done and on every 500th generator step,
  otherwise 5 (``mmd_gan_critic_steps``); encoder weights clamped to [-0.01, 0.01] before each critic step.

OCFGAN-GP facts (clear-nus/OCFGAN ``src/ecfd.py`` and ``src/cfgan.py``):

- empirical characteristic function at frequency t: mean over the batch of exp(i t·f(x)); ECFD^2 = mean over
  the drawn frequencies of |phi_real(t) - phi_fake(t)|^2 (``_gaussian_ecfd``), fresh frequencies on every call;
- Gaussian weighting t ~ N(0, diag(sigma^2)); the "O" variant optimises sigma: log sigma is a (1, k)
  parameter initialised to 0 (sigma = 1), trained by the critic's optimiser, and the distance is divided by
  ||sigma||_2 (``gaussian_ecfd(..., optimize_sigma=True)``); with fixed sigmas the distances are summed;
- critic minimises -sqrt(ECFD^2) + 10·GP + 16·penalty; generator minimises sqrt(ECFD^2) - 16·penalty
  (``disc_loss``, ``gen_loss``; the penalty is MMD-GAN's one-sided one);
- GP: per-sample uniform interpolates, the gradient of the *sum of all critic outputs* (grad_outputs of
  ones over the (N, k) output), norm sqrt(sum(g^2 + 1e-7)), penalty mean((norm - 1)^2)
  (``CFGANGP.gradient_penalty``).
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import torch
import torch.nn.functional as F

MMD_GAN_SIGMAS = (1.0, 2.0, 4.0, 8.0, 16.0)  # mmd_gan.py sigma_list (base 1.0)
MMD_GAN_LAMBDA_AE = 8.0  # lambda_AE_X = lambda_AE_Y
MMD_GAN_LAMBDA_RG = 16.0  # lambda_rg (OCFGAN's reg_lambda is the same 16)
MMD_GAN_CLIP = 0.01  # encoder parameters clamped to [-0.01, 0.01]
OCFGAN_GP_WEIGHT = 10.0  # CFGANGP gp_lambda
OCFGAN_NUM_FREQS = 8  # main.py --num_freqs / cifar10.sh NUM_FREQS
OCFGAN_GP_EPS = 1e-7  # added to every squared gradient entry before the square root


class LossParts(NamedTuple):
    loss: torch.Tensor  # scalar to minimise
    terms: dict  # its pieces, detached, for logging


# ---- MMD with a mixture of Gaussian RBF kernels ----

def _sq_dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # Direct differences, not the |a|^2 - 2ab + |b|^2 Gram trick: exact zeros on the diagonal, no negatives.
    return (a[:, None, :] - b[None, :, :]).pow(2).sum(-1)


def mix_rbf_kernel(x: torch.Tensor, y: torch.Tensor, sigmas: Sequence[float] = MMD_GAN_SIGMAS):
    """(K_xx, K_xy, K_yy) for k(a, b) = sum_s exp(-||a - b||^2 / (2 s^2)); x (n, d), y (m, d)."""
    x, y = x.flatten(1), y.flatten(1)

    def k(a, b):
        d2 = _sq_dists(a, b)
        return sum(torch.exp(-d2 / (2.0 * float(s) ** 2)) for s in sigmas)

    return k(x, x), k(x, y), k(y, y)


def mix_rbf_mmd2(x: torch.Tensor, y: torch.Tensor, sigmas: Sequence[float] = MMD_GAN_SIGMAS,
                 biased: bool = True) -> torch.Tensor:
    """Squared MMD between feature batches x (n, d) and y (m, d).

    biased: (1/n^2) sum K_xx + (1/m^2) sum K_yy - (2/nm) sum K_xy (MMD-GAN's choice in training).
    unbiased: the diagonals of K_xx and K_yy left out and their sums divided by n(n-1), m(m-1)."""
    kxx, kxy, kyy = mix_rbf_kernel(x, y, sigmas)
    n, m = kxx.shape[0], kyy.shape[0]
    cross = 2.0 * kxy.sum() / (n * m)
    if biased:
        return kxx.sum() / (n * n) + kyy.sum() / (m * m) - cross
    if n < 2 or m < 2:
        raise ValueError("the unbiased MMD estimator needs at least two samples per set")
    xx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    yy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return xx + yy - cross


def one_sided_penalty(f_real: torch.Tensor, f_fake: torch.Tensor) -> torch.Tensor:
    """mean_j relu(mean_i f_fake[i, j] - mean_i f_real[i, j]): nonzero where the fake batch's feature mean
    exceeds the real one (MMD-GAN's ONE_SIDED, sign flipped so the value is >= 0)."""
    return F.relu(f_fake.flatten(1).mean(0) - f_real.flatten(1).mean(0)).mean()


def reconstruction_l2(target: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """Mean squared error over every element (util.match(..., 'L2'))."""
    return (target.reshape(target.shape[0], -1) - reconstruction.reshape(reconstruction.shape[0], -1)).pow(2).mean()


def mmd_gan_critic_loss(f_real, f_fake, real, fake, rec_real, rec_fake, *,
                        sigmas: Sequence[float] = MMD_GAN_SIGMAS, biased: bool = True,
                        lambda_ae_real: float = MMD_GAN_LAMBDA_AE, lambda_ae_fake: float = MMD_GAN_LAMBDA_AE,
                        lambda_rg: float = MMD_GAN_LAMBDA_RG) -> LossParts:
    """-sqrt(relu(MMD^2)) + lambda_rg·penalty + lambda_ae·(L2(real, rec_real) + L2(fake, rec_fake)).

    f_*: encoder features (N, k); rec_*: decoder(f_*) reconstructions of the images real / fake
    (``MMDGANCritic.autoencode``). ``fake`` must come from a frozen generator (detached)."""
    mmd2 = F.relu(mix_rbf_mmd2(f_real, f_fake, sigmas, biased))
    penalty = one_sided_penalty(f_real, f_fake)
    ae_real, ae_fake = reconstruction_l2(real, rec_real), reconstruction_l2(fake, rec_fake)
    loss = -torch.sqrt(mmd2) + lambda_rg * penalty + lambda_ae_real * ae_real + lambda_ae_fake * ae_fake
    return LossParts(loss, _terms(mmd2=mmd2, one_sided=penalty, ae_real=ae_real, ae_fake=ae_fake))


def mmd_gan_generator_loss(f_real, f_fake, *, sigmas: Sequence[float] = MMD_GAN_SIGMAS, biased: bool = True,
                           lambda_rg: float = MMD_GAN_LAMBDA_RG) -> LossParts:
    """sqrt(relu(MMD^2)) - lambda_rg·penalty (no autoencoder term)."""
    mmd2 = F.relu(mix_rbf_mmd2(f_real, f_fake, sigmas, biased))
    penalty = one_sided_penalty(f_real, f_fake)
    return LossParts(torch.sqrt(mmd2) - lambda_rg * penalty, _terms(mmd2=mmd2, one_sided=penalty))


def mmd_gan_critic_steps(generator_step: int, *, warmup: int = 25, every: int = 500, heavy: int = 100,
                         normal: int = 5) -> int:
    """Critic steps before generator step ``generator_step`` (0-based count of generator steps done):
    100 for the first 25 and on every 500th, else 5. (The reference also cuts a critic run short at the end
    of a data-loader epoch, and each generator step consumes a batch of the same epoch.)"""
    return heavy if generator_step < warmup or generator_step % every == 0 else normal


@torch.no_grad()
def clip_parameters_(module: torch.nn.Module, bound: float = MMD_GAN_CLIP) -> None:
    """Clamp every parameter of ``module`` to [-bound, bound] in place (MMD-GAN: the critic's encoder,
    before each critic step)."""
    for p in module.parameters():
        p.clamp_(-bound, bound)


# ---- OCFGAN-GP: empirical characteristic function distance ----

def _normal(shape, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    device = generator.device if generator is not None else like.device
    return torch.randn(shape, generator=generator, device=device, dtype=like.dtype).to(like.device)


def empirical_cf(x: torch.Tensor, freqs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Real and imaginary parts, each (K,), of (1/N) sum_i exp(i t_k·x_i) for x (N, d), freqs (K, d)."""
    proj = freqs @ x.flatten(1).t()  # (K, N)
    return torch.cos(proj).mean(1), torch.sin(proj).mean(1)


def cf_distance(x_feat: torch.Tensor, y_feat: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """Mean over the K frequencies (rows of freqs) of |phi_x(t) - phi_y(t)|^2, phi the empirical CFs."""
    re_x, im_x = empirical_cf(x_feat, freqs)
    re_y, im_y = empirical_cf(y_feat, freqs)
    return ((re_x - re_y) ** 2 + (im_x - im_y) ** 2).mean()


def gaussian_ecfd(x_feat, y_feat, sigmas: Sequence[float] = (1.0,), n_freqs: int = OCFGAN_NUM_FREQS,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Fixed bandwidths: sum over sigma of cf_distance with n_freqs fresh draws t ~ N(0, sigma^2 I)."""
    dim = x_feat.flatten(1).shape[1]
    return sum(cf_distance(x_feat, y_feat, _normal((n_freqs, dim), x_feat, generator) * float(s)) for s in sigmas)


def optimized_gaussian_ecfd(x_feat, y_feat, log_sigma: torch.Tensor, n_freqs: int = OCFGAN_NUM_FREQS,
                            generator: torch.Generator | None = None) -> torch.Tensor:
    """OCFGAN's optimised weighting: sigma = exp(log_sigma) (shape (1, d), one scale per feature),
    t = eps * sigma with eps ~ N(0, I), distance divided by ||sigma||_2. Differentiable in log_sigma."""
    sigma = torch.exp(log_sigma).reshape(1, -1)
    eps = _normal((n_freqs, sigma.shape[1]), x_feat, generator)
    return cf_distance(x_feat, y_feat, eps * sigma) / torch.linalg.vector_norm(sigma)


def ocfgan_gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                            fake: torch.Tensor, generator: torch.Generator | None = None,
                            eps: float = OCFGAN_GP_EPS) -> torch.Tensor:
    """mean_i (sqrt(sum_j (g_ij^2 + eps)) - 1)^2, g_i the gradient of sum(critic(x_hat)) (all outputs summed)
    at x_hat_i = a_i real_i + (1 - a_i) fake_i, a_i ~ U[0, 1)."""
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    device = generator.device if generator is not None else real.device
    alpha = torch.rand(shape, generator=generator, device=device, dtype=real.dtype).to(real.device)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    norm = torch.sqrt((grad.flatten(1) ** 2 + eps).sum(1))
    return ((norm - 1.0) ** 2).mean()


def _ecfd(f_real, f_fake, log_sigma, sigmas, n_freqs, generator):
    if log_sigma is not None:
        return optimized_gaussian_ecfd(f_real, f_fake, log_sigma, n_freqs, generator)
    return gaussian_ecfd(f_real, f_fake, sigmas, n_freqs, generator)


def ocfgan_critic_loss(f_real, f_fake, gradient_penalty: torch.Tensor | float, *,
                       log_sigma: torch.Tensor | None = None, sigmas: Sequence[float] = (1.0,),
                       n_freqs: int = OCFGAN_NUM_FREQS, gp_weight: float = OCFGAN_GP_WEIGHT,
                       lambda_rg: float = MMD_GAN_LAMBDA_RG, generator: torch.Generator | None = None) -> LossParts:
    """-sqrt(ECFD^2) + gp_weight·GP + lambda_rg·penalty. ``log_sigma`` (OCFGAN: a (1, k) tensor, zeros at
    start, in the critic's optimiser) selects the optimised weighting; None uses the fixed ``sigmas``.
    ``gradient_penalty`` is ``ocfgan_gradient_penalty(critic, real, fake)`` (0 when gp_weight is 0)."""
    ecfd = _ecfd(f_real, f_fake, log_sigma, sigmas, n_freqs, generator)
    penalty = one_sided_penalty(f_real, f_fake)
    loss = -torch.sqrt(ecfd) + gp_weight * gradient_penalty + lambda_rg * penalty
    return LossParts(loss, _terms(ecfd2=ecfd, gp=gradient_penalty, one_sided=penalty))


def ocfgan_generator_loss(f_real, f_fake, *, log_sigma: torch.Tensor | None = None, sigmas: Sequence[float] = (1.0,),
                          n_freqs: int = OCFGAN_NUM_FREQS, lambda_rg: float = MMD_GAN_LAMBDA_RG,
                          generator: torch.Generator | None = None) -> LossParts:
    """sqrt(ECFD^2) - lambda_rg·penalty, with fresh frequencies (pass ``log_sigma.detach()``: the generator
    step does not train sigma)."""
    ecfd = _ecfd(f_real, f_fake, log_sigma, sigmas, n_freqs, generator)
    penalty = one_sided_penalty(f_real, f_fake)
    return LossParts(torch.sqrt(ecfd) - lambda_rg * penalty, _terms(ecfd2=ecfd, one_sided=penalty))


def _terms(**values) -> dict:
    # detached tensors, not floats: reading a value back waits for the device, so only a logger should
    return {k: v.detach() if isinstance(v, torch.Tensor) else float(v) for k, v in values.items()}
