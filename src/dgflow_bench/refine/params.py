"""Typed parameters of the refinement methods, one frozen dataclass per method kind, registered under its
kind in ``registry.METHODS``. Each field is a knob: its default, its description and its JSON-schema bounds
live here and nowhere else (config.load_schema builds the config's method blocks from these classes).

A parameter object also runs its method (``run``): the algorithm module is imported only then, so the
planner (the Snakefile) reads these declarations without importing torch.

Adding a method is one module: a ``MethodParams`` subclass with ``@method("name")`` and a ``run``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from ..registry import METHODS

# The passes every method counts (refine/common.Counter) and the evaluate stage sums per sample; here, beside
# the other declarations, because the evaluate stage must not import torch (start-up of every job).
EVALUATION_KEYS = ("generator_forward", "generator_backward", "discriminator_forward", "discriminator_backward")
# How DRS and MH-GAN map a logit to P(real | d) (refine/calibration.py); here, torch-free, for the schema
CALIBRATIONS = ("none", "platt", "isotonic")

DISCRIMINATOR = {
    "enum": ["model", "raw", "finetuned"],
    "description": "model: the discriminator the model's block names (models.<m>.discriminator; raw for the GANs, "
                   "the corrected d_phi + d_lambda for MMDGAN, OCFGAN-GP and the VAE, as the official configs); "
                   "raw: the model's own discriminator / critic logit (or models.<m>.logit_from's), as the official "
                   "GAN configs run it (clear-nus/DGflow configs/*.yml: disc_type c_wgan for WGAN-GP, c_sndcgan for "
                   "SN-DCGAN); finetuned: the density-ratio estimator of the finetune stage",
}
SUPPORT = {"enum": ["clip", "reflect", "none"]}
LATENT_PRIOR = {
    "enum": [None, "uniform", "normal"],
    "description": "initial latents drawn from this prior instead of the model's (same seed and size); the "
                   "official DGflow code draws N(0, I) even for DCGANs trained on U[-1, 1], DOT's draws U[-1, 1] "
                   "for them (settings/official.yaml)",
}
GENERATOR_BN = {
    "enum": [None, "eval", "batch"],
    "description": "this method's generator BatchNorm mode; null: refine.generator_bn. The releases differ: DGflow's "
                   "code never leaves train mode (batch statistics), DOT's runs train=False (stored statistics) "
                   "(settings/official.yaml)",
}

# spectral norm of d during refinement (refine/network_modes.py: what each mode does, the releases' numbers in
# its table SN_RELEASES); here, torch-free, because the schema is built from these declarations
SN_MODES = ("frozen", "dgflow-release", "dot-release")
SPECTRAL_NORM = {
    "enum": [None, *SN_MODES],
    "description": "this method's spectral-norm mode; null: refine.spectral_norm. frozen: refine.sn_power_iterations "
                   "power iterations, then u fixed; dgflow-release: D alone thermalised as clear-nus/DGflow "
                   "dgflow.py:79-83 does, then one power iteration of D and of the corrector per refinement step "
                   "(no .eval(): dgflow.py:118-124, torch_models.py:117-152); dot-release: DOT's thermalisation "
                   "(DOT.py:114-120), then u updated on every D forward of a step (snd/sn_convolution_2d.py:74-76). "
                   "Counts and sources: refine/network_modes.py SN_RELEASES",
}


def resolve_discriminator(method_spec: dict, model_spec: dict) -> Optional[str]:
    """'raw' or 'finetuned' for a method block on a model block; None for a method that follows no
    discriminator (base). 'model' takes the model's own choice, models.<m>.discriminator (default raw)."""
    kind = method_spec.get("discriminator")
    if kind == "model":
        return model_spec.get("discriminator", "raw")
    return kind


def knobs(cls) -> list:
    """The config keys of a parameter class: its dataclass fields made by ``knob`` (a field without a schema,
    e.g. a fit that ``prepare`` stores, is run-time state, not configuration)."""
    return [f for f in dataclasses.fields(cls) if "schema" in f.metadata]


def knob(default: Any, description: str = "", **schema: Any):
    """A dataclass field with its default and the JSON schema of its config key."""
    if description:
        schema["description"] = description
    return dataclasses.field(default=default, metadata={"schema": schema})


def method(kind: str):
    """Class decorator: name the method kind and register its parameter class."""

    def register(cls):
        cls.kind = kind
        return METHODS.register(kind)(cls)

    return register


@dataclass(frozen=True)
class MethodParams:
    """Base of every method's parameters. ``steps`` / ``snapshot_every``: refinement steps and the interval
    of kept snapshots (the base row has none)."""

    kind: ClassVar[str] = ""
    steps: ClassVar[int] = 0
    snapshot_every: ClassVar[int] = 1
    needs_real_data: ClassVar[bool] = False  # the refine stage then hands prepare() held-out real samples
    real_samples: ClassVar[int] = 0  # how many (held out from the training array, never the metrics' split)

    @classmethod
    def from_config(cls, spec: dict) -> "MethodParams":
        """From a validated (default-filled) ``methods.<name>`` block; keys the class lacks are refused."""
        names = {f.name for f in knobs(cls)}
        unknown = sorted(set(spec) - names - {"kind"})
        if unknown:
            raise ValueError(f"method kind {cls.kind!r} has no parameters {unknown}; it has {sorted(names)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.items() if k != "kind"}
        return cls(**values)

    @classmethod
    def schema(cls) -> dict:
        properties = {"kind": {"const": cls.kind}}
        for f in knobs(cls):
            block = dict(f.metadata.get("schema", {}))
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            block["default"] = list(default) if isinstance(default, tuple) else default
            properties[f.name] = block
        return {"additionalProperties": False, "properties": properties}

    def as_dict(self) -> dict:
        """The config block this object is built from (tuples as JSON lists)."""
        values = {f.name: getattr(self, f.name) for f in knobs(self)}
        return {"kind": self.kind, **{k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}}

    def bn_mode(self, shared: str) -> str:
        """The generator BatchNorm mode this method runs with: its own, else the shared refine.generator_bn."""
        return getattr(self, "generator_bn", None) or shared

    def sn_mode(self, shared: str) -> str:
        """The spectral-norm mode this method runs with: its own, else the shared refine.spectral_norm."""
        return getattr(self, "spectral_norm", None) or shared

    def prior(self, model_prior: str) -> str:
        """The prior its initial latents are drawn from: its own latent_prior, else the model's."""
        return getattr(self, "latent_prior", None) or model_prior

    @property
    def discriminator_kind(self) -> str:
        """'raw' or 'finetuned': which logit the method follows (the base row follows none). The stage gets
        parameters whose 'model' is already resolved (resolve_discriminator)."""
        kind = getattr(self, "discriminator", "raw")
        if kind == "model":
            raise ValueError("discriminator 'model' must be resolved against the model's block first "
                             "(refine.params.resolve_discriminator; config.refine_params does it)")
        return kind

    def run(self, z0, generator, logit_fn, rng, *, prior: str, progress: bool = False):
        """Refine one batch of latents ``z0`` -> refine.common.RefinementResult."""
        raise NotImplementedError(f"method kind {self.kind!r} does not implement run()")

    def after_first_batch(self, info: dict) -> "MethodParams":
        """The parameters for the remaining batches, given the first batch's result info (a method that fixes
        a quantity once per run, as DOT's K, returns a copy holding it)."""
        return self

    def shortened(self, diverged_step: int) -> "tuple[MethodParams, int] | None":
        """After a divergence at ``diverged_step``: (these parameters cut to the last kept snapshot before it,
        that step), or None for a method whose step count is not a knob (DRS, MH-GAN: nothing to cut)."""
        if "steps" not in {f.name for f in dataclasses.fields(self)}:
            return None
        from .common import snapshot_steps

        last = max([s for s in snapshot_steps(self.steps, self.snapshot_every) if s < diverged_step], default=0)
        return dataclasses.replace(self, steps=last), last

    def prepare(self, real, generator, logit_fn, rng, *, prior: str, latent_dim: int) -> "MethodParams":
        """Before the first batch, for a method with ``needs_real_data``: ``real`` holds held-out real samples
        (model input form); returns the parameters to run with (e.g. a fitted calibration)."""
        return self


@method("base")
@dataclass(frozen=True)
class BaseParams(MethodParams):
    """The unrefined base model, G(z0): the reference row."""

    generator_bn: Optional[str] = knob(None, **GENERATOR_BN)
    spectral_norm: Optional[str] = knob(None, **SPECTRAL_NORM)
    latent_prior: Optional[str] = knob(None, **LATENT_PRIOR)

    def run(self, z0, generator, logit_fn, rng, *, prior: str, progress: bool = False):
        from .common import Counter, RefinementResult, to_data

        nets = Counter(generator, logit_fn)  # counts the one generator forward
        return RefinementResult(snapshots={0: to_data(z0, nets.generator)}, info=nets.info(0))


@method("dgflow")
@dataclass(frozen=True)
class DGflowParams(MethodParams):
    discriminator: str = knob("model", **DISCRIMINATOR)
    generator_bn: Optional[str] = knob(None, **GENERATOR_BN)
    spectral_norm: Optional[str] = knob(None, **SPECTRAL_NORM)
    latent_prior: Optional[str] = knob(None, **LATENT_PRIOR)
    f: str = knob("KL", "f-divergence", enum=["KL", "JS", "logD"])
    space: str = knob("latent", enum=["latent", "data"])
    eta: float = knob(0.01, "step size", type="number", exclusiveMinimum=0)
    gamma: float = knob(0.01, "entropy weight (0 = deterministic flow)", type="number", minimum=0)
    steps: int = knob(25, type="integer", minimum=0)
    snapshot_every: int = knob(5, type="integer", minimum=1)
    support: str = knob("clip", "latent space, bounded (uniform) prior only: what a latent that leaves [-1, 1] "
                        "becomes: clip (to the face, as DOT does), reflect (mirrored back), none (left outside, "
                        "as the official code, whose latents are normal)", **SUPPORT)

    def run(self, z0, generator, logit_fn, rng, *, prior: str, progress: bool = False):
        from .dgflow import run_dgflow

        return run_dgflow(z0, generator, logit_fn, self, rng, prior=prior, progress=progress)


@method("dot")
@dataclass(frozen=True)
class DOTParams(MethodParams):
    discriminator: str = knob("model", **DISCRIMINATOR)
    generator_bn: Optional[str] = knob(None, **GENERATOR_BN)
    spectral_norm: Optional[str] = knob(None, **SPECTRAL_NORM)
    latent_prior: Optional[str] = knob(None, **LATENT_PRIOR)
    space: str = knob("latent", enum=["latent", "data"])
    lr: float = knob(0.01, type="number", exclusiveMinimum=0)
    steps: int = knob(100, type="integer", minimum=0)
    snapshot_every: int = knob(10, type="integer", minimum=1)
    optimizer: str = knob("adam", enum=["adam", "sgd"])
    betas: tuple = knob((0.0, 0.9), **{"$ref": "#/definitions/betas"})
    k_eff: Any = knob("auto", "'auto' estimates it from the initial batch",
                      anyOf=[{"const": "auto"}, {"type": "number", "exclusiveMinimum": 0}])
    k_eff_pairs: int = knob(100, type="integer", minimum=1)
    k_eff_repeats: int = knob(10, type="integer", minimum=1)
    k_eff_scope: str = knob("batch", "batch: K estimated on each latent batch; run: once, on the first batch, "
                            "then kept for the run (DOT's execute_dot.py estimates it once per run)",
                            enum=["batch", "run"])
    k_eff_sample: str = knob("batch", "where K's pairs come from: batch: random pairs of the batch's own samples; "
                             "fresh: k_eff_pairs pairs of new latents drawn from the prior for each repeat, as DOT.py "
                             "eff_k / eff_K do (AkinoriTanaka-phys/DOT DOT.py:15-37)", enum=["batch", "fresh"])
    radial: str = knob("exact", "normal prior, latent space: exact removes the radial part of the gradient "
                       "(tangent projection); dot-release subtracts z (g . z) / 11.31 as DOT.py does (11.31 = "
                       "sqrt(128), fixed; not a projection)", enum=["exact", "dot-release"])
    clip: float = knob(2.0, "data-space box [-clip, clip]", type="number", exclusiveMinimum=0)
    naive: bool = knob(False, "drop the transport-distance term", type="boolean")
    norm_eps: float = knob(0.001, type="number", minimum=0)

    def run(self, z0, generator, logit_fn, rng, *, prior: str, progress: bool = False):
        from .dot import run_dot

        return run_dot(z0, generator, logit_fn, self, rng, prior=prior, progress=progress)

    def after_first_batch(self, info: dict) -> "DOTParams":
        if self.k_eff_scope == "run" and self.k_eff == "auto":
            return dataclasses.replace(self, k_eff=info["k_eff"])
        return self


@method("ddls")
@dataclass(frozen=True)
class DDLSParams(MethodParams):
    discriminator: str = knob("model", **{**DISCRIMINATOR, "description": (
        "model: the model's own choice (models.<m>.discriminator); raw: the model's own discriminator logit, as "
        "DDLS (Che et al. 2020) uses its SN-GAN discriminator; finetuned: the finetune stage's density-ratio "
        "estimator")})
    generator_bn: Optional[str] = knob(None, **GENERATOR_BN)
    spectral_norm: Optional[str] = knob(None, **SPECTRAL_NORM)
    latent_prior: Optional[str] = knob(None, **LATENT_PRIOR)
    eps: float = knob(0.01, "Langevin step (noise std sqrt(eps))", type="number", exclusiveMinimum=0)
    steps: int = knob(25, type="integer", minimum=0)
    snapshot_every: int = knob(5, type="integer", minimum=1)
    mala: bool = knob(False, "Metropolis-adjusted (normal prior only)", type="boolean")
    support: str = knob("reflect", "bounded (uniform) prior only: reflect (mirrored back into [-1, 1]; keeps the "
                        "uniform law stationary, refine/ddls.py), clip, or none", **SUPPORT)

    def run(self, z0, generator, logit_fn, rng, *, prior: str, progress: bool = False):
        from .ddls import run_ddls

        return run_ddls(z0, generator, logit_fn, self, rng, prior=prior, progress=progress)


# ---- the rejection baselines: their shared knobs, with the reference's defaults (uber-research/
# metropolis-hastings-gans at 41857c9, mhgan/: demo_mhgan.py, mh.py, classification.py)

CALIBRATION = {
    "enum": list(CALIBRATIONS),
    "description": "how the logit d becomes P(real | d), fitted once per run on held-out real rows against as many "
                   "generator samples (refine/calibration.py): isotonic (the reference's default, "
                   "classification.py:131, which calibrates the scores of both DRS and MH-GAN, demo_mhgan.py:169-177), "
                   "platt (sigmoid(a d + b)) or none (d as is)",
}
CALIBRATION_SIZE = {"description": "held-out real samples (and as many generated) for the calibration fit (and MH-GAN's "
                                   "real chain starts)", "type": "integer", "minimum": 2}
PLATT = {"description": "calibration platt: (a, b) fixed by hand instead of the fit (null: fit)",
         "type": ["array", "null"], "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
SNAPSHOT_AT = {"description": "intermediate budgets kept as snapshots besides 0 and the final one (a value at or past "
                              "the final budget is that final snapshot, so it is dropped): a quality-against-compute "
                              "curve from one run, each snapshot charged its own counted passes",
               "type": "array", "items": {"type": "integer", "minimum": 1}}


def _calibration_real_samples(params) -> int:
    """Held-out real rows the calibration (and a real chain start) needs, once per run; 0 once fitted."""
    if params.fitted is not None:
        return 0
    fits = params.calibration == "isotonic" or (params.calibration == "platt" and params.platt is None)
    return params.calibration_size if fits or getattr(params, "start", None) == "real" else 0


def _fit_calibration(params, real, generator, logit_fn, rng, prior: str, latent_dim: int):
    if not params.real_samples:
        return params
    from .calibration import fit_on

    fitted = fit_on(real[: params.calibration_size], generator, logit_fn, rng, kind=params.calibration,
                    prior=prior, latent_dim=latent_dim, platt=params.platt)
    return dataclasses.replace(params, fitted=fitted)


def _fitted():  # the fit prepare() stores (calibration.CalibrationFit): run-time state, no config key, no equality
    return dataclasses.field(default=None, compare=False, repr=False)


@method("drs")
@dataclass(frozen=True)
class DRSParams(MethodParams):
    """Discriminator Rejection Sampling (Azadi et al., ICLR 2019; refine/drs.py): proposals G(z), the first
    batch being the shared latents z0, accepted with probability sigmoid(F(x)), F = c - c_M - log(1 - exp(c -
    c_M - eps)) - gamma, where c is the calibrated logit (exp(c) the density-ratio estimate) and c_M the largest
    seen (from a burn-in sample, then kept up to date). With gamma = 0 and the true maximum this is exact
    rejection sampling (acceptance exp(c - c_M)); the default shifts F by its 95th percentile per batch, as the
    reference (mh.py:96, 123-125)."""

    needs_real_data: ClassVar[bool] = True  # the calibration is fitted on the held-out real split

    discriminator: str = knob("finetuned", **{**DISCRIMINATOR, "description": (
        "DRS needs a density-ratio estimate: its paper fine-tunes D with the logistic loss, the `finetuned` "
        "estimator here (default); raw or model as for the other methods")})
    generator_bn: Optional[str] = knob(None, **GENERATOR_BN)
    spectral_norm: Optional[str] = knob(None, **SPECTRAL_NORM)
    latent_prior: Optional[str] = knob(None, **LATENT_PRIOR)
    calibration: str = knob("isotonic", **CALIBRATION)
    calibration_size: int = knob(2000, **CALIBRATION_SIZE)
    platt: Optional[tuple] = knob(None, **PLATT)
    burn_in: int = knob(10000, "generator samples whose largest logit starts d_M, once per run (the reference: "
                        "156 batches of 64, demo_mhgan.py:208-213)", type="integer", minimum=1)
    gamma_percentile: Optional[float] = knob(
        95.0, "gamma is this percentile of F over each proposal batch (the reference's 95, mh.py:96; a higher p "
        "means a larger gamma and fewer acceptances); null: gamma = 0, exact rejection sampling against the "
        "calibrated d", type=["number", "null"], minimum=0, maximum=100)
    eps: float = knob(1e-6, "keeps log(1 - exp(c - c_M - eps)) finite at the maximum (mh.py:96)", type="number",
                      exclusiveMinimum=0)
    max_proposals_per_sample: int = knob(
        640, "proposal budget: a batch stops drawing after this many proposals per sample (the reference draws "
        "640 per output image, demo_mhgan.py:206-207); places still empty take the unused proposals most likely "
        "to be accepted (the reference: the highest score, mh.py:130-133), counted in the info",
        type="integer", minimum=1)
    max_logit: Optional[float] = knob(None, "d_M (raw logit) fixed by hand instead of the burn-in estimate (null: "
                                      "estimate)", type=["number", "null"])
    snapshot_at: tuple = knob((2, 8, 32), **{**SNAPSHOT_AT, "description": "proposal budgets per sample " +
                                             SNAPSHOT_AT["description"]})
    fitted: Any = _fitted()

    @property
    def steps(self) -> int:  # type: ignore[override]  # the final snapshot's key
        return int(self.max_proposals_per_sample)

    @property
    def real_samples(self) -> int:  # type: ignore[override]
        return _calibration_real_samples(self)

    def run(self, z0, generator, logit_fn, rng, *, prior: str, progress: bool = False):
        from .drs import run_drs

        return run_drs(z0, generator, logit_fn, self, rng, prior=prior, progress=progress)

    def prepare(self, real, generator, logit_fn, rng, *, prior: str, latent_dim: int) -> "DRSParams":
        return _fit_calibration(self, real, generator, logit_fn, rng, prior, latent_dim)

    def after_first_batch(self, info: dict) -> "DRSParams":
        # d_M once per run: the burn-in runs on the first batch; later batches start from its final value
        return dataclasses.replace(self, max_logit=info["max_logit"]) if self.max_logit is None else self


@method("mh-gan")
@dataclass(frozen=True)
class MHGANParams(MethodParams):
    """MH-GAN (Turner et al., ICML 2019; refine/mhgan.py): independence Metropolis-Hastings with the generator
    as proposal and the calibrated discriminator's odds as the density ratio, one chain of K generator samples
    per output sample. By default each chain starts at a real held-out sample and, where it never accepts,
    restarts from its first generator sample G(z0) (demo_mhgan.py:155-187); start: base starts it at G(z0)."""

    needs_real_data: ClassVar[bool] = True  # the calibration and the real starts come from the held-out split

    discriminator: str = knob("finetuned", **{**DISCRIMINATOR, "description": (
        "the discriminator whose calibrated odds are the density ratio: finetuned (default), raw or model")})
    generator_bn: Optional[str] = knob(None, **GENERATOR_BN)
    spectral_norm: Optional[str] = knob(None, **SPECTRAL_NORM)
    latent_prior: Optional[str] = knob(None, **LATENT_PRIOR)
    k: int = knob(640, "chain length: generator samples per output sample (the reference's 10 batches of 64, "
                  "demo_mhgan.py:206-207)", type="integer", minimum=1)
    start: str = knob(
        "real", "real: each chain starts at a random held-out real sample (its logit from the calibration rows), "
        "its first proposal is G(z0), and a chain that never accepts restarts from G(z0) over the remaining "
        "proposals (the reference, demo_mhgan.py:155-187); base: the chain starts at G(z0) and draws K fresh "
        "proposals (no real sample; a chain that never moves returns G(z0))", enum=["real", "base"])
    calibration: str = knob("isotonic", **CALIBRATION)
    calibration_size: int = knob(2000, **CALIBRATION_SIZE)
    platt: Optional[tuple] = knob(None, **PLATT)
    snapshot_at: tuple = knob((10, 40, 160), **{**SNAPSHOT_AT, "description": "chain lengths k " +
                                                SNAPSHOT_AT["description"] + " (the state after k proposals is "
                                                "the MH-GAN output for K = k)"})
    fitted: Any = _fitted()

    @property
    def steps(self) -> int:  # type: ignore[override]  # the final snapshot's key: the chain length
        return int(self.k)

    @property
    def real_samples(self) -> int:  # type: ignore[override]
        return _calibration_real_samples(self)

    def run(self, z0, generator, logit_fn, rng, *, prior: str, progress: bool = False):
        from .mhgan import run_mhgan

        return run_mhgan(z0, generator, logit_fn, self, rng, prior=prior, progress=progress)

    def prepare(self, real, generator, logit_fn, rng, *, prior: str, latent_dim: int) -> "MHGANParams":
        return _fit_calibration(self, real, generator, logit_fn, rng, prior, latent_dim)
