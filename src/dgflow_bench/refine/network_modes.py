"""How the networks behave during refinement, as options recorded with every result.

- Generator BatchNorm: 'eval' uses the running statistics, so a sample depends on its own latent only and
  results do not depend on the refinement batch size. 'batch' normalises with the statistics of the current
  batch, as the official DGflow code (a Chainer/PyTorch generator left in training mode) does; samples then
  interact through the batch mean and variance, and the flow's gradient includes that coupling.
- Spectral norm (``spectral_norm``, one of SN_MODES):
  'frozen': ``refine.sn_power_iterations`` power iterations (torch's own order) on every spectral-normalised
  weight of d, then eval mode: sigma stays fixed during refinement.
  'dgflow-release' / 'dot-release': what each release does (SN_RELEASES below, with sources): a thermalisation
  of the given networks, then the sigma estimate keeps moving during refinement, one power iteration per
  discriminator forward of the release, in the release's own order and normalisation.

  How the updates are counted. During refinement DGflow's release runs D and C once per step, for the
  gradient (``_velocity``); DOT's runs D twice per step, the gradient taken from the first call, the second
  only read for its output's shape (once in its naive mode). Our methods call d at other times too (DOT's K
  estimate and closing objective, the rejection methods' scoring, calibration fits), so the updates are not
  tied to torch's training-mode forward: d stays in eval mode, and ``ReleaseSpectralNorm`` advances u, v
  itself on each *gradient pass* (a call with autograd on and an input that requires grad; our DGflow, DOT and
  DDLS make one per step, MALA one more for its start): one power iteration before the forward the gradient
  comes from, the release's remaining ones for that step right after it. Calls without a gradient leave u, v
  as they are (so DOT's eff_k, two forwards after its thermalisation, DOT.py:15-25, is not counted).
  torch's training-mode forward would also apply the wrong rule: the parametrization this project uses
  (torch.nn.utils.parametrizations.spectral_norm) updates u from v first, torch 1.6's hook (DGflow's
  requirements.txt) v from u first, so the two sit half an iteration apart.
  Every latent batch starts from the thermalised state (``restart``), so a batch's result depends on its own
  latents only and a run cut short after a divergence repeats the first steps of the longer one exactly. The
  releases carry u on from batch to batch: their later batches start a few steps' iterations further on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..models.corrected import CorrectedLogit
from .method_params import SN_MODES

BN_MODES = ("eval", "batch")
DISCRIMINATOR, CORRECTOR = "discriminator", "corrector"  # d_phi (or a raw critic), d_lambda


@dataclass(frozen=True)
class SNRelease:
    """A release's spectral-norm behaviour. ``passes``: thermalisation passes (one power iteration each) on the
    SN layers of the networks in ``thermalised``; ``rule``: its power iteration (TORCH_1_6 or CHAINER_SND);
    ``forwards_per_step``: discriminator forwards per refinement step, the gradient taken from the first (all
    SN layers of d, also those not thermalised, advance once per forward); ``naive_forwards_per_step``: the same
    for DOT's naive mode."""

    passes: int
    thermalised: tuple
    rule: str
    forwards_per_step: int
    naive_forwards_per_step: int
    source: str


TORCH_1_6, CHAINER_SND = "torch-1.6", "chainer-snd"
SN_RELEASES = {
    # D alone: 5000 train-mode forwards on U[0, 1) noise (stabilize_sn); C keeps the u, v of its saved state
    # dict; no .eval() anywhere, so each step's D(img) and C(img) (one each, _velocity) do one iteration each.
    # The input never enters a power iteration, so the thermalisation here runs the iterations without one.
    "dgflow-release": SNRelease(
        5000, (DISCRIMINATOR,), TORCH_1_6, 1, 1,
        "clear-nus/DGflow db7ea7b dgflow.py:79-83 (stabilize_sn, iters=5000), 122-124 (on tD only), 34-42 "
        "(_velocity: D(img_t), C(img_t) once per step), util.py:51-55 (C from its state dict), torch_models.py:"
        "117-152 (torch.nn.utils.spectral_norm, torch==1.6.0 in requirements.txt: SpectralNorm.compute_weight, "
        "do_power_iteration=module.training)"),
    # 100 forwards; Chainer's SN links overwrite u on every W_bar access, whatever chainer.config.train says
    # (thermalize_spectral_norm even runs under train=False); H_zy / H_y call D twice per step in 'dot' mode
    # (the second call only for its output's shape), once in naive mode. DOT has no corrector: any SN layer
    # of d is treated as Chainer treats every SN link.
    "dot-release": SNRelease(
        100, (DISCRIMINATOR, CORRECTOR), CHAINER_SND, 2, 1,
        "AkinoriTanaka-phys/DOT d748a3e DOT.py:114-120 (100 passes), 90-96 and 56-60 (D called twice per step in "
        "'dot' mode), snd/sn_convolution_2d.py:67-80 and snd/sn_linear.py:56-67 (u replaced on every forward), "
        "snd/max_sv.py:12-28 (v = uW/(|uW|+1e-12), then u = vW^T/(|vW^T|+1e-12), sigma = u W v^T)"),
}


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


def _spectral_norms(module: nn.Module):  # (layer, its _SpectralNorm) pairs
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


def sn_layers_by_network(logit: nn.Module) -> list[tuple[str, nn.Module, nn.Module]]:
    """(DISCRIMINATOR or CORRECTOR, layer, its _SpectralNorm) for every spectral-normalised weight of d; the
    corrector's layers are those inside a CorrectedLogit's d_lambda."""
    corrector = {id(m) for net in logit.modules() if isinstance(net, CorrectedLogit) for m in net.corrector.modules()}
    return [(CORRECTOR if id(sub) in corrector else DISCRIMINATOR, sub, sn) for sub, sn in _spectral_norms(logit)]


@torch.no_grad()
def release_power_iteration(layer: nn.Module, sn: nn.Module, rule: str) -> None:
    """One power iteration on the layer's stored u, v, as the release does it: v from u first, then u from v
    (torch 1.6 and Chainer alike); torch 1.6 divides by max(|x|, eps) (F.normalize), Chainer's
    _l2normalize by |x| + 1e-12."""
    matrix = sn._reshape_weight_to_matrix(layer.parametrizations["weight"].original)
    if rule == TORCH_1_6:
        sn._v.copy_(F.normalize(torch.mv(matrix.t(), sn._u), dim=0, eps=sn.eps))
        sn._u.copy_(F.normalize(torch.mv(matrix, sn._v), dim=0, eps=sn.eps))
    elif rule == CHAINER_SND:
        v = torch.mv(matrix.t(), sn._u)
        sn._v.copy_(v / (v.norm() + 1e-12))
        u = torch.mv(matrix, sn._v)
        sn._u.copy_(u / (u.norm() + 1e-12))
    else:
        raise ValueError(f"unknown power-iteration rule {rule!r}: {TORCH_1_6} or {CHAINER_SND}")


class ReleaseSpectralNorm(nn.Module):
    """d whose spectral-norm estimates advance as in a release (module docstring): on each gradient pass,
    one power iteration of every SN layer before the forward and ``per_step - 1`` after it; other calls leave
    them. ``restart`` puts every u, v back to the state it had when this wrapper was made."""

    def __init__(self, logit: nn.Module, rule: str, per_step: int):
        super().__init__()
        self.logit, self.rule, self.per_step = logit, rule, int(per_step)
        self._layers = [(sub, sn) for _, sub, sn in sn_layers_by_network(logit)]
        self._start = [(sn._u.clone(), sn._v.clone()) for _, sn in self._layers]

    def advance(self, iterations: int = 1) -> None:
        for _ in range(iterations):
            for sub, sn in self._layers:
                release_power_iteration(sub, sn, self.rule)

    @torch.no_grad()
    def restart(self) -> None:
        for (_, sn), (u, v) in zip(self._layers, self._start):
            sn._u.copy_(u)
            sn._v.copy_(v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (torch.is_grad_enabled() and x.requires_grad):
            return self.logit(x)
        self.advance(1)
        out = self.logit(x)  # sigma = u . W v from the stored vectors: eval mode, which computes (and saves) clones
        self.advance(self.per_step - 1)
        return out


def restart_spectral_norm(logit) -> None:
    """Before each latent batch: a release-mode d back to its thermalised state (others: nothing to do)."""
    if isinstance(logit, ReleaseSpectralNorm):
        logit.restart()


def prepare_spectral_norm(logit: nn.Module, mode: str, frozen_iterations: int,
                          naive: bool = False) -> tuple[nn.Module, dict]:
    """d set up for refinement in spectral-norm ``mode`` (SN_MODES) -> (the logit to refine with, the facts
    for the refine record's ``networks``). 'frozen' is thermalise_spectral_norm itself (same module, same
    numbers as before the modes existed); a release mode thermalises its networks (SN_RELEASES) and wraps d
    in ReleaseSpectralNorm. ``naive``: DOT's naive mode, one D forward per step."""
    if mode not in SN_MODES:
        raise ValueError(f"spectral_norm must be one of {SN_MODES}, got {mode!r} (set refine.spectral_norm or the "
                         "method's spectral_norm)")
    if mode == "frozen":
        return logit, {"spectral_norm": mode, **thermalise_spectral_norm(logit, frozen_iterations)}
    release = SN_RELEASES[mode]
    layers = sn_layers_by_network(logit)
    logit.eval()  # the updates are ours (ReleaseSpectralNorm): torch's own would run in the other order
    max_change = 0.0
    for network, sub, sn in layers:
        if network not in release.thermalised:
            continue
        before = _sigma(sub, sn)
        for _ in range(release.passes):
            release_power_iteration(sub, sn, release.rule)
        after = _sigma(sub, sn)
        max_change = max(max_change, float((after - before).abs() / after.abs().clamp_min(1e-12)))
    per_step = release.naive_forwards_per_step if naive else release.forwards_per_step
    counts = {name: sum(1 for network, _, _ in layers if network == name) for name in (DISCRIMINATOR, CORRECTOR)}
    info = {"spectral_norm": mode, "sn_layers": len(layers), "sn_layers_by_network": counts,
            "sn_power_iterations": release.passes, "sn_thermalised_networks": list(release.thermalised),
            "sn_updates_per_gradient_pass": per_step, "sn_update_rule": release.rule,
            "sn_sigma_max_rel_change": max_change, "sn_source": release.source}
    return (ReleaseSpectralNorm(logit, release.rule, per_step) if layers else logit), info


@torch.no_grad()
def _sigma(layer: nn.Module, sn: nn.Module) -> torch.Tensor:
    matrix = sn._reshape_weight_to_matrix(layer.parametrizations["weight"].original)
    return torch.dot(sn._u, torch.mv(matrix, sn._v))
