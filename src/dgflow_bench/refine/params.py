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


def resolve_discriminator(method_spec: dict, model_spec: dict) -> Optional[str]:
    """'raw' or 'finetuned' for a method block on a model block; None for a method that follows no
    discriminator (base). 'model' takes the model's own choice, models.<m>.discriminator (default raw)."""
    kind = method_spec.get("discriminator")
    if kind == "model":
        return model_spec.get("discriminator", "raw")
    return kind


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

    @classmethod
    def from_config(cls, spec: dict) -> "MethodParams":
        """From a validated (default-filled) ``methods.<name>`` block; keys the class lacks are refused."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(spec) - names - {"kind"})
        if unknown:
            raise ValueError(f"method kind {cls.kind!r} has no parameters {unknown}; it has {sorted(names)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.items() if k != "kind"}
        return cls(**values)

    @classmethod
    def schema(cls) -> dict:
        properties = {"kind": {"const": cls.kind}}
        for f in dataclasses.fields(cls):
            block = dict(f.metadata.get("schema", {}))
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            block["default"] = list(default) if isinstance(default, tuple) else default
            properties[f.name] = block
        return {"additionalProperties": False, "properties": properties}

    def as_dict(self) -> dict:
        """The config block this object is built from (tuples as JSON lists)."""
        values = dataclasses.asdict(self)
        return {"kind": self.kind, **{k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}}

    def bn_mode(self, shared: str) -> str:
        """The generator BatchNorm mode this method runs with: its own, else the shared refine.generator_bn."""
        return getattr(self, "generator_bn", None) or shared

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


@method("base")
@dataclass(frozen=True)
class BaseParams(MethodParams):
    """The unrefined base model, G(z0): the reference row."""

    generator_bn: Optional[str] = knob(None, **GENERATOR_BN)
    latent_prior: Optional[str] = knob(None, **LATENT_PRIOR)

    def run(self, z0, generator, logit_fn, rng, *, prior: str, progress: bool = False):
        from .common import RefinementResult, to_data

        return RefinementResult(snapshots={0: to_data(z0, generator)}, info={})


@method("dgflow")
@dataclass(frozen=True)
class DGflowParams(MethodParams):
    discriminator: str = knob("model", **DISCRIMINATOR)
    generator_bn: Optional[str] = knob(None, **GENERATOR_BN)
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
