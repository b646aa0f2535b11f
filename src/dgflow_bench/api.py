"""The Python API: refine your own generator's samples with any registered method, from a notebook or another
codebase, on the code the pipeline runs (refine/methods/*.py through refine/driver.py).

Stable (the names in ``__all__``; everything else in the package may move between versions):

- ``method_params(kind, **params)``: a method's typed parameters, with the config's defaults, validation and
  error messages (a ``methods.<name>`` block of a config, checked against the same schema).
- ``refine(method, latents, generator, logit, *, prior, seed, device, real, batch_size, divergence_bound,
  on_divergence, progress)``: one refinement of a batch of latents -> ``Refinement``.
- ``Refinement``: the result (snapshots, final latents, counted cost, the method's info); ``save(path)``
  writes the pipeline's snapshots file, the only file the API ever writes.
- ``draw_latents(n, dim, prior, seed)``: the pipeline's seeded initial latents.
- ``DivergenceAt``: raised by ``refine(..., on_divergence="raise")``.

The networks are plain torch callables: ``generator(z) -> x`` ((n, dim) latents to samples; None: the latents
are the samples) and ``logit(x) -> (n,)`` or ``(n, 1)``, the discriminator logit d (log p_data / p_G for the
density-ratio methods). They are used as given: put them in eval mode yourself (the pipeline's
``generator_bn`` and ``spectral_norm`` knobs act on the networks it loads and are refused here; the
``discriminator`` knob is ignored: ``logit`` is the discriminator).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

import torch

from .catalog import METHODS
from .config import _key_path, _non_finite, load_schema  # the config's own key paths and finiteness check
from .io import derive_seed
from .refine.common import sample_latents
from .refine.driver import DivergenceAt, RefinementRun, measured, merge_info
from .refine.method_params import MethodParams
from .runtime import resolve_device, seeded_generator
from .snapshots import write_snapshots
from .stages.evaluate import cost_summary, one_off_costs

__all__ = ["DivergenceAt", "Refinement", "draw_latents", "method_params", "refine"]

Method = Union[str, dict, MethodParams]
PIPELINE_ONLY = ("generator_bn", "spectral_norm")  # knobs that set modes of the networks the pipeline loads


def method_params(kind: str, **params: Any) -> MethodParams:
    """The typed parameters of method ``kind`` (dgflow, dot, ddls, drs, mh-gan, base, or a kind an imported
    extension registers), exactly as a config's ``methods.<name>`` block with these keys builds them: the same
    defaults, bounds and messages. An unknown kind, an unknown key or a value out of range is a ValueError
    naming the key and what it allows, e.g. ``method_params("dgflow", eta=0.05, steps=50)``."""
    block = {"kind": kind, **{key: _plain(value) for key, value in params.items()}}
    _check_block(block)
    return METHODS[kind].from_config(block)


def draw_latents(n: int, dim: int, prior: str = "normal", seed: int = 0) -> torch.Tensor:
    """(n, dim) initial latents on the CPU from ``prior`` ('normal': N(0, I), 'uniform': U[-1, 1]): the numbers
    the pipeline's refinement seed ``seed`` starts every method from."""
    return sample_latents(prior, int(n), int(dim), int(seed))


@dataclass(frozen=True)
class Refinement:
    """One refinement. ``snapshots``: {step: (n, ...) samples on the CPU}, step 0 the base samples G(z0) and the
    last the refined ones (``samples``); ``latents``: z0; ``final_latents``: the latents of the refined samples
    (None where the method does not move latents: data space, the base row). ``cost``: the evaluate stage's
    cost block (``network_evaluations_per_sample`` by pass of method_params.EVALUATION_KEYS and in total,
    ``evaluations_per_sample_by_step``, ``wall_s_per_sample``, ``cpu_s_per_sample``; a DRS / MH-GAN fit's passes
    under ``calibration``) plus the run's ``wall_s`` and ``cpu_s``. ``info``: the method's facts (a list per key
    where there were several batches). ``diverged``: None, or the pipeline's record of a cut run ({'step',
    'reason', 'kept_until_step', 'seed_index'}). ``method``: the parameters it ran with (a fitted calibration
    included: pass it again to skip the fit)."""

    method: MethodParams
    snapshots: dict
    latents: torch.Tensor
    final_latents: Optional[torch.Tensor]
    cost: dict
    info: dict
    diverged: Optional[dict]
    prior: str
    seed: int
    device: str

    @property
    def samples(self) -> torch.Tensor:
        """The refined samples: the last kept snapshot."""
        return self.snapshots[max(self.snapshots)]

    @property
    def base(self) -> torch.Tensor:
        """The unrefined samples G(z0): snapshot 0."""
        return self.snapshots[0]

    def save(self, path: str | Path) -> str:
        """Write the snapshots in the refine stage's format (snapshots.py; one shard per step, the samples as
        float32 arrays as they are, not a suite's storage form), atomically: the file appears only complete."""
        with write_snapshots(path) as writer:
            writer.add_batch({step: x.numpy().astype("float32") for step, x in self.snapshots.items()})
            final = None if self.final_latents is None else self.final_latents.numpy()
            writer.finish(latents=self.latents.numpy(), final_latents=final)
        return str(path)


def refine(method: Method, latents, generator: Optional[Callable], logit: Callable, *, prior: str = "normal",
           seed: int = 0, device: str = "auto", real: Optional[torch.Tensor] = None,
           batch_size: Optional[int] = None, divergence_bound: Optional[float] = None,
           on_divergence: str = "cut", progress: bool = False) -> Refinement:
    """Refine ``generator(latents)`` with ``method``: a kind name (its defaults), a config block
    ``{"kind": ..., **params}`` or ``method_params(...)``'s object (validated as a config's block).

    ``latents``: (n, dim) initial latents (``draw_latents`` gives the pipeline's), or the data points
    themselves with ``generator=None``. ``prior``: the prior they come from ('normal' or 'uniform'; a method's
    ``latent_prior`` knob replaces it, as in the pipeline); the methods use it for their box, prior term and
    fresh proposals. ``seed``: batch k draws its noise from seed + 1 + k, as the pipeline's refinement seed
    ``seed`` does; the same inputs give the same numbers. ``device``: 'auto' (CUDA when present), 'cpu' or
    'cuda[:i]'; nn.Module networks are moved there (in place), other callables must already run there.
    ``batch_size`` / ``divergence_bound``: the config's refine.batch_size / refine.divergence_bound (defaults
    and bounds from its schema). ``real``: real samples (shaped like the generator's output), which DRS and
    MH-GAN need when they fit a calibration (calibration isotonic, or platt without a hand-set pair) or start
    chains at real samples (MH-GAN start: real); the first ``method.real_samples`` rows are used, with the
    pipeline's fit seed; a method that needs them refuses to run without them.

    Divergence, as the pipeline: a step whose iterates are NaN / Inf or whose samples leave ``divergence_bound``
    times the base samples' largest |value| ends the run; with ``on_divergence="cut"`` (default) it runs again to
    the last kept snapshot before that step and says so in ``Refinement.diverged`` (and on stderr); with
    ``"raise"`` it raises ``DivergenceAt`` (its ``step`` and ``reason``). With "cut", non-finite base samples (step
    0) or a divergence of DRS / MH-GAN (no steps to cut) are a ValueError. No NaN sample is ever returned."""
    params = _as_params(method)
    refused = [key for key in PIPELINE_ONLY if getattr(params, key, None) is not None]
    if refused:
        raise ValueError(f"{refused[0]}={getattr(params, refused[0])!r} sets a mode of the networks the pipeline "
                         f"loads; refine() runs your callables as given: set the mode on them yourself "
                         f"(.eval() / .train()) and leave {refused[0]} unset")
    if on_divergence not in ("cut", "raise"):
        raise ValueError(f"on_divergence={on_divergence!r}: choose 'cut' (the pipeline's) or 'raise'")
    z0 = _latent_batch(latents)
    n, dim = z0.shape[0], z0[0].numel()
    run_prior = params.prior(prior)
    if run_prior not in ("normal", "uniform"):
        raise ValueError(f"prior={run_prior!r}: use 'normal' (N(0, I)) or 'uniform' (U[-1, 1])")
    common = {"seed": int(seed), "n_samples": n, "seeds": 1,
              "batch_size": _refine_setting("batch_size", batch_size),
              "divergence_bound": _refine_setting("divergence_bound", divergence_bound)}
    dev = resolve_device(device)
    generator, logit = _on(generator, dev), _on(logit, dev)
    if params.real_samples:
        params = _prepared(params, real, generator, logit, int(seed), dev, run_prior, dim)
    run = RefinementRun(_IN_MEMORY, generator, logit, run_prior, dim, common, "default", dev, params.kind)

    def attempt(m: MethodParams):
        memory = _Memory()
        with measured() as cost:
            infos = run.run_seed(memory, m, z0, int(seed), 0, progress)
        return memory, infos, cost

    if on_divergence == "raise":
        (memory, infos, cost), diverged = attempt(params), None
    else:
        (memory, infos, cost), diverged = run.until_diverged(attempt, params, "the generator passed to refine()")
    info = merge_info(infos)
    costs = {**cost_summary([{"info": info, **cost}], n, str(dev)), **one_off_costs({"info": info}, n), **cost}
    return Refinement(method=params, snapshots=memory.snapshots(), latents=z0, final_latents=memory.final_latents,
                      cost=costs, info=info, diverged=diverged, prior=run_prior, seed=int(seed), device=str(dev))


# ---- parameters: the config's schema and messages


def _plain(value: Any) -> Any:
    """A Python value as a config holds it: tuples as lists, numpy / torch scalars as numbers."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    return value


def _check_block(block: dict) -> None:
    """Refuse a method block the config would refuse, with the config's message for the same mistake."""
    import jsonschema

    kind = block.get("kind")
    where = f"method {kind!r}" if isinstance(kind, str) else "method"
    bad = [f"{key}: {value} (numbers must be finite)" for key, value in _non_finite(block)]
    if bad:
        raise ValueError(f"{where} parameter {'; '.join(bad)}")
    schema = _schema()
    validator = jsonschema.validators.validator_for(schema)(
        {"$ref": "#/definitions/method", "definitions": schema["definitions"]})
    errors = sorted(validator.iter_errors(block), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    lines = []
    for error in errors:
        path = list(error.absolute_path)
        if path == ["kind"]:
            lines.append(f"method kind: {error.message}")
        elif path:
            lines.append(f"{where} parameter {_key_path(path)}: {error.message}")
        else:  # an unknown key: name the ones there are
            names = ", ".join(sorted(k for k in METHODS[kind].schema()["properties"] if k != "kind"))
            lines.append(f"{where}: {error.message}; its parameters are {names or 'none'}")
    raise ValueError("; ".join(lines))


_SCHEMAS: dict = {}


def _schema() -> dict:
    """config.load_schema(), built again only when the method registry changed (an extension imported since)."""
    key = tuple((kind, id(cls)) for kind, cls in METHODS.items())
    if key not in _SCHEMAS:
        _SCHEMAS.clear()
        _SCHEMAS[key] = load_schema()
    return _SCHEMAS[key]


def _as_params(method: Method) -> MethodParams:
    if isinstance(method, MethodParams):
        _check_block(method.as_dict())  # an object built by hand gets the config's bounds too
        return method
    if isinstance(method, str):
        return method_params(method)
    if isinstance(method, dict):
        if "kind" not in method:
            raise ValueError(f"method block {method!r} has no kind: add kind: one of {', '.join(METHODS)}")
        return method_params(**method)
    raise TypeError(f"method={method!r}: pass a kind name, a {{'kind': ..., **params}} block or method_params(...)")


def _refine_setting(key: str, value: Any) -> Any:
    """A setting of the config's refine block: its schema default when None, else checked by its schema."""
    import jsonschema

    sub = _schema()["properties"]["refine"]["properties"][key]
    if value is None:
        return sub["default"]
    errors = list(jsonschema.Draft7Validator(sub).iter_errors(_plain(value)))
    if errors:
        raise ValueError(f"{key} (the config's refine.{key}): {errors[0].message}")
    return _plain(value)


# ---- inputs


def _latent_batch(latents) -> torch.Tensor:
    z0 = torch.as_tensor(latents).detach().cpu()
    if z0.dim() < 2 or z0.shape[0] < 1 or not z0.is_floating_point():
        raise ValueError(f"latents must be a floating (n, dim) tensor with n >= 1, got {tuple(z0.shape)} "
                         f"{z0.dtype}: draw them with draw_latents(n, dim, prior, seed)")
    return z0


def _on(network, device: torch.device):
    return network.to(device) if isinstance(network, torch.nn.Module) else network


def _prepared(params: MethodParams, real, generator, logit, seed: int, device, prior: str,
              dim: int) -> MethodParams:
    """The method fitted on real samples (DRS / MH-GAN calibration, MH-GAN's real chain starts), with the rng
    the refine stage seeds the fit with."""
    need = int(params.real_samples)
    if real is None:
        why, fix = [], []
        calibration = getattr(params, "calibration", "none")
        if calibration == "isotonic" or (calibration == "platt" and getattr(params, "platt", None) is None):
            why.append(f"its calibration {calibration!r} is fitted on them")
            fix.append("calibration='none' (or 'platt' with platt=(a, b))")
        if getattr(params, "start", None) == "real":
            why.append("its chains start at them")
            fix.append("start='base'")
        raise ValueError(f"{params.kind} needs real samples ({' and '.join(why) or 'its prepare() fits on them'}): "
                         f"pass real= a tensor of at least {need} real samples shaped like the generator's output"
                         f"{', or set ' + ' and '.join(fix) if fix else ''}")
    real = torch.as_tensor(real)
    if real.shape[0] < need:
        raise ValueError(f"real holds {real.shape[0]} samples, {params.kind} needs {need} (calibration_size): "
                         f"pass more, or lower calibration_size to at most {real.shape[0]}")
    rng = seeded_generator(derive_seed(seed, "fit", params.kind), device)
    return params.prepare(real[:need].to(device), generator, logit, rng, prior=prior, latent_dim=dim)


# ---- the driver's writer and modality, in memory


class _Modality:
    """Samples kept as they are (CPU tensors), not converted to a suite's storage form."""

    @staticmethod
    def to_storage(x: torch.Tensor, storage: str) -> torch.Tensor:
        return x.detach().cpu()


_IN_MEMORY = _Modality()


class _Memory:
    """What the driver writes per batch (snapshots.SnapshotWriter's add_batch / finish), kept in memory."""

    def __init__(self):
        self.batches: dict[int, list] = {}
        self.final_latents: Optional[torch.Tensor] = None

    def add_batch(self, snapshots: dict) -> None:
        for step, x in snapshots.items():
            self.batches.setdefault(int(step), []).append(x)

    def finish(self, latents, final_latents=None) -> None:
        self.final_latents = None if final_latents is None else torch.from_numpy(final_latents)

    def snapshots(self) -> dict:
        return {step: torch.cat(xs) for step, xs in sorted(self.batches.items())}
