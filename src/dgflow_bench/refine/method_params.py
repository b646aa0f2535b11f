"""What every refinement method declares, torch-free: the ``MethodParams`` base class, ``knob`` (a field with
its default and JSON-schema bounds: the one home of a method's defaults; config.load_schema builds the
config's method blocks from them), the ``@method`` decorator that registers a class under its kind in
``registry.METHODS``, and the knobs several methods share.

Each method is one module of ``refine/methods/`` (catalog.py imports them all): its parameter class, its
algorithm, its paper-table column, its step-size name and its comparison with the authors' settings. Those
modules import torch inside their functions only, so the planner (the Snakefile) reads every declaration
without importing torch.
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


def snapshot_steps(steps: int, every: int) -> list[int]:
    """0, every, 2*every, ... and always the final step."""
    if steps < 0 or every < 1:
        raise ValueError(f"need steps >= 0 and snapshot_every >= 1, got steps={steps}, every={every}")
    out = list(range(0, steps + 1, every))
    if out[-1] != steps:
        out.append(steps)
    return out


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
    step_size_name: ClassVar[str] = ""  # the knob a divergence message tells the user to lower ("" = none)
    column: ClassVar[str] = ""  # the paper's table column (report/images_tables.py); "" = the kind itself

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
                             "(refine.method_params.resolve_discriminator; config.refine_params does it)")
        return kind

    @classmethod
    def paper_column(cls, spec: dict) -> str:
        """The paper's table column a ``methods.<name>`` block of this kind fills (published values are keyed
        by it); a method the paper has no column for shows its kind."""
        return cls.column or cls.kind

    def compared_with(self, spec: dict, cell) -> "tuple[list[str], dict, dict] | None":
        """(reasons, ours, theirs) of this row against the authors' release (settings/official.py hands in
        ``cell``, its helpers for the parts every row shares); None: no release has settings for this kind."""
        return None

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
        last = max([s for s in snapshot_steps(self.steps, self.snapshot_every) if s < diverged_step], default=0)
        return dataclasses.replace(self, steps=last), last

    def prepare(self, real, generator, logit_fn, rng, *, prior: str, latent_dim: int) -> "MethodParams":
        """Before the first batch, for a method with ``needs_real_data``: ``real`` holds held-out real samples
        (model input form); returns the parameters to run with (e.g. a fitted calibration)."""
        return self


# ---- the rejection baselines (methods/drs.py, methods/mhgan.py): their shared knobs, with the reference's
# defaults (uber-research/metropolis-hastings-gans at 41857c9, mhgan/: demo_mhgan.py, mh.py, classification.py)

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


def calibration_real_samples(params) -> int:
    """Held-out real rows the calibration (and a real chain start) needs, once per run; 0 once fitted."""
    if params.fitted is not None:
        return 0
    fits = params.calibration == "isotonic" or (params.calibration == "platt" and params.platt is None)
    return params.calibration_size if fits or getattr(params, "start", None) == "real" else 0


def fitted_field():  # the fit prepare() stores (calibration.CalibrationFit): run-time state, no config key, no equality
    return dataclasses.field(default=None, compare=False, repr=False)
