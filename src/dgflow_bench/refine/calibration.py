"""Calibration of a discriminator logit d into P(real | d), shared by DRS and MH-GAN: a monotone map fitted
once per run by labelling held-out real samples 1 and as many generator samples 0. Both samplers then read
the calibrated logit c = log(P / (1 - P)), i.e. the log density-ratio estimate log(p_data / p_G).

Kinds (``CALIBRATIONS``):

* ``none``: c = d, the logit as the discriminator gives it.
* ``platt``: c = a d + b, a logistic regression of the label on d (``fit_platt``).
* ``isotonic``: P = the isotonic (monotone, piecewise-linear) regression of the label on d, scikit-learn's
  ``IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip")`` as the MH-GAN reference builds it
  (uber-research/metropolis-hastings-gans, mhgan/classification.py:75-88, chosen as its calibrator 'iso' at
  :131). Isotonic fits reach P = 0 and 1 at the ends, so P is clipped to [1e-14, 1 - 1e-14] before taking
  the log odds, the clip the reference applies before its DRS logit (mhgan/mh.py:109-112): c stays within
  +-32.2 and every odds ratio finite. The reference fits on the sigmoid probability; isotonic regression
  is invariant under that strictly increasing map, so fitting on d gives the same map except where float
  rounding of sigmoid would merge distinct logits (|d| > ~36), which fitting on d keeps apart.

``fit_calibration(real_logits, fake_logits, kind)`` is the one entry point (also for analyses of a
calibration); ``fit_on`` computes the logits with the networks and counts their passes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch

from ..runtime import latent_sampler
from .common import Counter, GeneratorFn, LogitFn
from .method_params import CALIBRATIONS, EVALUATION_KEYS

PROBABILITY_CLIP = 1e-14  # mh.py:110: keeps logit(P) finite where a calibrator says 0 or 1
CHUNK = 1024  # samples per forward when computing the fit's logits (the held-out set may be large)


@dataclass(frozen=True)
class Calibration:
    """A fitted calibration: call it on logits d (a tensor) for the calibrated logits c (same device and
    dtype); ``probability`` gives P(real | d); ``record`` is what a run's info says was used."""

    kind: str
    platt: Optional[tuple] = None  # (a, b) for kind platt
    isotonic: Any = field(default=None, compare=False)  # the fitted sklearn IsotonicRegression

    def __post_init__(self):
        if self.kind not in CALIBRATIONS:
            raise ValueError(f"unknown calibration {self.kind!r}: choose one of {', '.join(CALIBRATIONS)}")
        if (self.kind == "platt") != (self.platt is not None) or (self.kind == "isotonic") != (self.isotonic is not None):
            raise ValueError(f"calibration {self.kind!r} needs exactly its own fit (platt pair for platt, an "
                             "isotonic model for isotonic): build it with fit_calibration")

    def __call__(self, d: torch.Tensor) -> torch.Tensor:
        if self.kind == "none":
            return d
        if self.kind == "platt":
            a, b = self.platt
            return a * d + b
        p = np.clip(self._isotonic_probability(d), PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP)
        return torch.from_numpy(np.log(p) - np.log1p(-p)).to(device=d.device, dtype=d.dtype)

    def probability(self, d: torch.Tensor) -> torch.Tensor:
        """P(real | d); the isotonic one unclipped (0 and 1 where the fit says so)."""
        if self.kind == "isotonic":
            return torch.from_numpy(self._isotonic_probability(d)).to(device=d.device, dtype=torch.float64)
        return torch.sigmoid(self(d).double())

    def _isotonic_probability(self, d: torch.Tensor) -> np.ndarray:
        return np.asarray(self.isotonic.predict(d.detach().reshape(-1).to("cpu", torch.float64).numpy()),
                          dtype=np.float64)

    def record(self) -> dict:
        """JSON-ready account of the map: the Platt pair, or the isotonic breakpoints' count, range and hash."""
        if self.kind == "none":
            return {"kind": "none"}
        if self.kind == "platt":
            return {"kind": "platt", "a": float(self.platt[0]), "b": float(self.platt[1])}
        x = np.asarray(self.isotonic.X_thresholds_, dtype=np.float64)
        y = np.asarray(self.isotonic.y_thresholds_, dtype=np.float64)
        return {"kind": "isotonic", "breakpoints": int(x.size),
                "logit_range": [float(x[0]), float(x[-1])], "probability_range": [float(y[0]), float(y[-1])],
                "sha256": hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()}


@dataclass(frozen=True)
class CalibrationFit:
    """What a run's ``prepare`` keeps: the calibration, the raw logits of the held-out real rows (MH-GAN's
    chain starts) and the passes the fit cost (``EVALUATION_KEYS``), counted apart from the refinement's."""

    calibration: Calibration
    real_logits: torch.Tensor = field(compare=False)
    evaluations: dict = field(compare=False)


def fit_calibration(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str) -> Calibration:
    """The calibration of ``kind`` fitted on logits of real samples (label 1) against generator samples
    (label 0). Deterministic: no randomness in any of the fits."""
    if kind not in CALIBRATIONS:
        raise ValueError(f"unknown calibration {kind!r}: choose one of {', '.join(CALIBRATIONS)}")
    if kind == "none":
        return Calibration("none")
    if kind == "platt":
        return Calibration("platt", platt=fit_platt(real_logits, fake_logits))
    d, y = _labelled(real_logits, fake_logits)
    from sklearn.isotonic import IsotonicRegression  # scikit-learn: only runs that fit an isotonic map load it

    model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    return Calibration("isotonic", isotonic=model.fit(d.numpy(), y.numpy()))


def _labelled(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    d = torch.cat([real_logits.detach().reshape(-1), fake_logits.detach().reshape(-1)]).to("cpu", torch.float64)
    if real_logits.numel() < 1 or fake_logits.numel() < 1 or not torch.isfinite(d).all():
        raise ValueError(f"a calibration needs finite logits of both sets; got {real_logits.numel()} real and "
                         f"{fake_logits.numel()} generated, {int((~torch.isfinite(d)).sum())} non-finite")
    y = torch.cat([torch.ones(real_logits.numel()), torch.zeros(fake_logits.numel())]).to(torch.float64)
    return d, y


def fit_platt(real_logits: torch.Tensor, fake_logits: torch.Tensor, iterations: int = 100,
              ridge: float = 1e-8) -> tuple[float, float]:
    """(a, b) of the logistic regression P(real | d) = sigmoid(a d + b), by Newton's method (IRLS) in float64
    from (1, 0). The tiny ridge keeps the Newton system solvable (and the fit finite) when the two sets are
    separable. Deterministic: no randomness, a fixed iteration cap."""
    d, y = _labelled(real_logits, fake_logits)
    features = torch.stack([d, torch.ones_like(d)], 1)
    w = torch.tensor([1.0, 0.0], dtype=torch.float64)
    eye = torch.eye(2, dtype=torch.float64)

    def objective(w: torch.Tensor) -> float:  # penalised log-likelihood, the quantity each step must raise
        t = features @ w
        return float((y * t - torch.nn.functional.softplus(t)).sum() - 0.5 * ridge * (w @ w))

    value = objective(w)
    for _ in range(iterations):
        p = torch.sigmoid(features @ w)
        grad = features.T @ (y - p) - ridge * w
        hess = (features * (p * (1 - p)).unsqueeze(1)).T @ features + ridge * eye
        step = torch.linalg.solve(hess, grad)
        # step halving: a full Newton step can overshoot far from the optimum; halving keeps it an ascent
        for _ in range(30):
            new_value = objective(w + step)
            if new_value >= value:
                break
            step = step / 2
        else:
            break  # no ascent left: the optimum, up to rounding
        w, value = w + step, new_value
        if float(step.abs().max()) < 1e-12:
            break
    return float(w[0]), float(w[1])


@torch.no_grad()
def fit_on(real: torch.Tensor, generator: GeneratorFn, logit_fn: LogitFn, rng: torch.Generator, *, kind: str,
           prior: str, latent_dim: int, platt: Optional[tuple] = None) -> CalibrationFit:
    """Logits of ``real`` (model input form) and, when the kind fits anything, of as many generator samples
    drawn with ``rng`` from ``prior`` (generator None: prior draws taken as data, shaped like ``real``); the
    calibration of ``kind`` fitted on them (a hand-set Platt pair ``platt`` is used as given)."""
    nets = Counter(generator, logit_fn)
    m = real.shape[0]
    real_d = torch.cat([_logits(nets, real[start:start + CHUNK]) for start in range(0, m, CHUNK)])
    if kind == "none" or (kind == "platt" and platt is not None):
        calibration = Calibration("platt", platt=tuple(map(float, platt))) if kind == "platt" else Calibration("none")
    else:
        fake_d = []
        for start in range(0, m, CHUNK):
            size = min(CHUNK, m - start)
            if generator is None:
                z = latent_sampler(prior, real[0].numel(), rng.device)(size, rng)
                x = z.reshape(size, *real.shape[1:]).to(device=real.device, dtype=real.dtype)
            else:
                x = nets.generator(latent_sampler(prior, latent_dim, rng.device)(size, rng).to(real.device))
            fake_d.append(_logits(nets, x))
        calibration = fit_calibration(real_d, torch.cat(fake_d), kind)
    return CalibrationFit(calibration, real_d.to("cpu", torch.float64), {k: nets.counts[k] for k in EVALUATION_KEYS})


def _logits(nets: Counter, x: torch.Tensor) -> torch.Tensor:
    d = nets.logit(x).detach().reshape(-1)
    if not torch.isfinite(d).all():
        raise ValueError(f"the discriminator returned non-finite logits on {int((~torch.isfinite(d)).sum())} of "
                         f"{d.numel()} calibration samples: it (or the generator) is broken")
    return d
