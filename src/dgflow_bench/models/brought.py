"""A model you bring (config ``models.<name>: {kind: builder, builder: "pkg.module:function", weights: ...}``):
call the user's builder, load its weights with ``torch.load(weights_only=True)``, and wrap its nets so the
pipeline can save and rebuild them. The model file's spec of a brought net names the builder, so loading it
calls the builder again (architecture 'brought'); the user's package must be importable by every job.

The builder's contract: ``build() -> {"generator": nn.Module, (n, dim) latents -> samples, "latent":
{"prior": "normal" | "uniform", "dim": int}, "critic": nn.Module, samples -> (n,) or (n, 1) logits,
optional}``; the weights file: ``torch.save({"generator": state_dict, "critic": state_dict (optional)})``.

Every refusal is a BroughtModelError whose message is one sentence naming the config key and the fix;
``probe_main`` runs the whole check in a subprocess for the planner, which imports no torch."""

from __future__ import annotations

import importlib
import json
import pickle
import re
import sys
from pathlib import Path

import torch
import torch.nn as nn

from ..errors import CheckpointError
from ..registry import ARCHITECTURES

ARCH = "brought"
PRIORS = ("normal", "uniform")
RESAVE = ('re-save it as plain state dicts: torch.save({"generator": G.state_dict(), "critic": D.state_dict()}, '
          "path)")
CONTRACT = ('return {"generator": nn.Module, "latent": {"prior": "normal" | "uniform", "dim": int}, '
            '"critic": nn.Module (optional)}')


class BroughtModelError(CheckpointError):
    """A brought model that cannot be used: the message names the config key and the fix."""


class BroughtNet(nn.Module):
    """A user's net under the pipeline's conventions: ``spec`` names the builder and the role it rebuilds
    from, and a critic's logits are (n,) whatever (n,) / (n, 1) the user's net returns."""

    def __init__(self, net: nn.Module, builder: str, role: str):
        super().__init__()
        self.net = net
        self.spec = {"arch": ARCH, "builder": builder, "role": role}  # a plain attribute: corrector code edits it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return out.reshape(out.shape[0]) if self.spec["role"] == "critic" else out


def import_builder(builder: str, key: str):
    """The function named "package.module:function"; ModuleNotFoundError and AttributeError as sentences."""
    module_name, _, function = builder.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise BroughtModelError(
                f"{key}: module {module_name!r} is not importable (ModuleNotFoundError: {exc}); put the folder "
                "that holds its package on PYTHONPATH (the planner and every job need it), or fix the module name"
            ) from None
        raise BroughtModelError(f"{key}: importing {module_name!r} failed: a module it imports is missing "
                                f"(ModuleNotFoundError: {exc}); install it in this environment") from None
    except Exception as exc:
        raise BroughtModelError(f"{key}: importing {module_name!r} raised {type(exc).__name__}: {exc}; fix that "
                                "module") from None
    if not hasattr(module, function):
        raise BroughtModelError(f"{key}: module {module_name!r} ({getattr(module, '__file__', '?')}) has no "
                                f"attribute {function!r} (AttributeError); fix the name after the colon, or define "
                                "that function there")
    found = getattr(module, function)
    if not callable(found):
        raise BroughtModelError(f"{key}: {builder} is a {type(found).__name__}, not a function; name the function "
                                "that builds the nets")
    return found


def call_builder(builder: str, key: str) -> dict:
    """The builder's return value, checked against the contract (CONTRACT): nets, latent prior and size."""
    function = import_builder(builder, key)
    try:
        built = function()
    except Exception as exc:
        raise BroughtModelError(f"{key}: {builder}() raised {type(exc).__name__}: {exc}; fix the builder (it is "
                                "called with no arguments)") from None
    if not isinstance(built, dict):
        raise BroughtModelError(f"{key}: {builder}() returned a {type(built).__name__}, not a dict; {CONTRACT}")
    missing = [k for k in ("generator", "latent") if k not in built]
    if missing:
        raise BroughtModelError(f"{key}: {builder}() returned a dict without {' and '.join(map(repr, missing))} "
                                f"(keys: {sorted(map(str, built))}); {CONTRACT}")
    for role in ("generator", "critic"):
        if built.get(role) is not None and not isinstance(built[role], nn.Module):
            raise BroughtModelError(f"{key}: {builder}() returned a {type(built[role]).__name__} as its {role!r}, "
                                    f"not a torch.nn.Module; {CONTRACT}")
    latent = built["latent"]
    if (not isinstance(latent, dict) or latent.get("prior") not in PRIORS or isinstance(latent.get("dim"), bool)
            or not isinstance(latent.get("dim"), int) or latent["dim"] < 1):
        raise BroughtModelError(f"{key}: {builder}() returned latent {latent!r}; it must be {{'prior': 'normal' "
                                "(N(0, I)) or 'uniform' (U[-1, 1]), 'dim': a positive int}")
    return {"generator": built["generator"], "critic": built.get("critic"),
            "latent": {"prior": latent["prior"], "dim": int(latent["dim"])}}


def load_weights(path: str | Path, key: str) -> dict:
    """{"generator": state_dict, "critic": state_dict?} read with weights_only=True; a pickle payload refused."""
    if not Path(path).is_file():
        raise BroughtModelError(f"{key} = {str(path)!r}: no such file; point it at the torch.save'd weights")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if found is None:  # not a pickled object: a damaged or foreign file
            raise BroughtModelError(f"{key}: {path} is not a torch.save file ({_last_line(exc)}); {RESAVE}") from None
        raise BroughtModelError(
            f"{key}: {path} is refused: it is a pickle payload (it holds a {found.group(1)} object, not plain "
            f"tensors) that torch.load(weights_only=True) will not read, because loading it would run code; "
            f"{RESAVE}") from None
    except Exception as exc:
        raise BroughtModelError(f"{key}: {path} is not a torch.save file ({type(exc).__name__}: "
                                f"{_last_line(exc)}); {RESAVE}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("generator"), dict):
        what = f"a dict with keys {sorted(map(str, obj))}" if isinstance(obj, dict) else f"a {type(obj).__name__}"
        raise BroughtModelError(f"{key}: {path} holds {what}, not {{'generator': state_dict, 'critic': state_dict "
                                f"(optional)}}; {RESAVE}")
    return obj


def _last_line(exc: Exception) -> str:
    """The line of torch's long message that says what failed (e.g. 'Unsupported operand 110')."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip() and "Weights only load failed" not in line
             and not line.startswith(("Please file", "Check the documentation", "Re-running"))]
    return lines[0].removeprefix("WeightsUnpickler error: ") if lines else type(exc).__name__


def _load_state(net: nn.Module, state: dict, role: str, path, key: str) -> None:
    """load_state_dict, its mismatches said in one sentence (missing, unexpected, other shapes)."""
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in sorted(set(own) & set(state))
              if isinstance(state[k], torch.Tensor) and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = [f"missing keys {_few(missing)}" if missing else "", f"unexpected keys {_few(unexpected)}"
                 if unexpected else "", f"other shapes (file vs net) {_few(shapes)}" if shapes else ""]
        raise BroughtModelError(f"{key}: the {role} state dict in {path} does not match the builder's {role} "
                                f"({'; '.join(p for p in parts if p)}); save the state_dict of the net the builder "
                                "builds")
    net.load_state_dict(state)


def _few(items: list, at_most: int = 4) -> str:
    shown = ", ".join(map(str, items[:at_most]))
    return f"[{shown}{', ...' if len(items) > at_most else ''}] ({len(items)})"


def build_brought(builder: str, weights: str | Path, name: str) -> dict:
    """{"generator": BroughtNet, "critic": BroughtNet | None, "latent": {...}} with the file's weights, eval."""
    built = call_builder(builder, f"models.{name}.builder")
    key = f"models.{name}.weights"
    states = load_weights(weights, key)
    if built["critic"] is None and states.get("critic") is not None:
        raise BroughtModelError(f"{key}: {weights} holds critic weights, but {builder}() returns no critic; return "
                                "the critic from the builder, or save the generator alone")
    if built["critic"] is not None and not isinstance(states.get("critic"), dict):
        raise BroughtModelError(f"{key}: {weights} holds no 'critic' state dict, but {builder}() returns a critic "
                                "(it would judge with random weights); save it too, or return no critic")
    nets = {"latent": built["latent"], "critic": None}
    for role in ("generator", "critic"):
        if built[role] is not None:
            _load_state(built[role], states[role], role, weights, key)
            nets[role] = BroughtNet(built[role], builder, role).eval()
    return nets


def probe(nets: dict, sample_shape: list[int] | None, dataset: str, builder: str, key: str) -> None:
    """Two latents through the generator (output (2, *sample_shape)) and its samples through the critic
    (output (2,) or (2, 1)), in eval mode without gradients."""
    latent = nets["latent"]
    z = torch.randn(2, latent["dim"]) if latent["prior"] == "normal" else torch.rand(2, latent["dim"]) * 2 - 1
    with torch.no_grad():
        try:
            x = nets["generator"].net(z)
        except Exception as exc:
            raise BroughtModelError(f"{key}: the generator of {builder}() fails on (2, {latent['dim']}) latents "
                                    f"({type(exc).__name__}: {exc}); make latent.dim its input size") from None
        want = "(n, " + ", ".join(map(str, sample_shape)) + ")" if sample_shape else None
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or (
                sample_shape is not None and tuple(x.shape[1:]) != tuple(sample_shape)) or x.shape[0] != 2:
            got = f"shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else f"a {type(x).__name__}"
            raise BroughtModelError(f"{key}: the generator of {builder}() maps 2 latents to {got}, but {dataset} "
                                    f"samples are float {want}; make it output that shape")
        if nets["critic"] is None:
            return
        try:
            d = nets["critic"].net(x)
        except Exception as exc:
            raise BroughtModelError(f"{key}: the critic of {builder}() fails on its generator's samples "
                                    f"({type(exc).__name__}: {exc}); it must take {want} samples") from None
        if not isinstance(d, torch.Tensor) or tuple(d.shape) not in ((2,), (2, 1)):
            got = f"shape {tuple(d.shape)}" if isinstance(d, torch.Tensor) else f"a {type(d).__name__}"
            raise BroughtModelError(f"{key}: the critic of {builder}() maps 2 samples to {got}; it must return "
                                    "(n,) or (n, 1) logits")


def _rebuild(spec: dict, rebuild) -> nn.Module:
    """A model file's brought net (fresh weights): the builder called again, its net of spec['role']."""
    built = call_builder(spec["builder"], f"the model file's {spec['role']} (builder {spec['builder']})")
    if built[spec["role"]] is None:
        raise BroughtModelError(f"{spec['builder']}() no longer returns a {spec['role']}, which this model file "
                                "holds; restore the builder or rerun from a changed config")
    return BroughtNet(built[spec["role"]], spec["builder"], spec["role"])


ARCHITECTURES.register(ARCH, _rebuild)


def probe_main(argv: list[str] | None = None) -> int:
    """The planner's subprocess: argv = [builder, weights, model name, dataset, sample shape as JSON or
    'null']; prints one JSON line {"ok": true, "critic": bool, "latent": {...}} or {"ok": false, "error": ...}."""
    builder, weights, name, dataset, shape = argv if argv is not None else sys.argv[1:]
    try:
        nets = build_brought(builder, weights, name)
        probe(nets, json.loads(shape), dataset, builder, f"models.{name}.builder")
        result = {"ok": True, "critic": nets["critic"] is not None, "latent": nets["latent"]}
    except BroughtModelError as exc:
        result = {"ok": False, "error": str(exc)}
    except Exception as exc:  # anything else is still one sentence for the plan, never a traceback
        result = {"ok": False, "error": f"models.{name}: checking builder {builder} failed ({type(exc).__name__}: "
                                        f"{exc})"}
    print(json.dumps(result))
    return 0
