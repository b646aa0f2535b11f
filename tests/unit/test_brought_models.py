"""A model you bring (models/brought.py, suites/brought_models.py, suites/brought_check.py): a good builder is
loaded, wrapped and rebuilt from the model file by calling it again; every way a builder or its weights can be
wrong is refused with one sentence naming the config key and the fix, never a traceback; the plan-time check
runs in a subprocess once and is then cached."""

from __future__ import annotations

import subprocess
import textwrap

import pytest
import torch

from dgflow_bench import catalog
from dgflow_bench.catalog import MODELS
from dgflow_bench.config import import_params, validate
from dgflow_bench.models.brought import BroughtModelError, build_brought, probe, probe_main
from dgflow_bench.models.store import load_model_file, save_model_file
from dgflow_bench.preflight import resolve_paths
from dgflow_bench.suites import brought_check

PACKAGE = '''
import torch
from torch import nn


class Points(nn.Module):
    def __init__(self, out=2):
        super().__init__()
        self.lin = nn.Linear(4, out)

    def forward(self, z):
        return self.lin(z)


class Critic(nn.Module):
    def __init__(self, out=1):
        super().__init__()
        self.lin = nn.Linear(2, out)

    def forward(self, x):
        return self.lin(x)


LATENT = {"prior": "normal", "dim": 4}


def good():
    return {"generator": Points(), "critic": Critic(), "latent": dict(LATENT)}


def no_critic():
    return {"generator": Points(), "latent": dict(LATENT)}


def not_a_dict():
    return Points()


def no_generator():
    return {"critic": Critic(), "latent": dict(LATENT)}


def bad_prior():
    return {"generator": Points(), "latent": {"prior": "laplace", "dim": 4}}


def wide_points():
    return {"generator": Points(out=3), "latent": dict(LATENT)}


def two_logits():
    return {"generator": Points(), "critic": Critic(out=2), "latent": dict(LATENT)}


NOT_CALLABLE = 3
'''


@pytest.fixture(autouse=True)
def forget_declared():
    """The model these tests' configs declare leaves the registry afterwards (other tests list its entries)."""
    yield
    MODELS.unregister("mine")
    catalog._declared.pop(("models", "mine"), None)


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    """The user's package `bm_user` on sys.path, and a weights file of good()'s nets (+ one without a critic)."""
    root = tmp_path_factory.mktemp("user")
    (root / "bm_user").mkdir()
    (root / "bm_user" / "__init__.py").write_text("")
    (root / "bm_user" / "nets.py").write_text(textwrap.dedent(PACKAGE))
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(root))
        import bm_user.nets as nets

        torch.manual_seed(0)
        built = nets.good()
        torch.save({"generator": built["generator"].state_dict(), "critic": built["critic"].state_dict()},
                   root / "good.pt")
        torch.save({"generator": built["generator"].state_dict()}, root / "generator-only.pt")
        yield root


def refused(builder: str, weights, shape=(2,)) -> str:
    with pytest.raises(BroughtModelError) as caught:
        nets = build_brought(builder, weights, "mine")
        probe(nets, list(shape), "25gaussians", builder, "models.mine.builder")
    return str(caught.value)


def test_a_good_builder_is_loaded_wrapped_and_rebuilt_by_calling_it_again(user, tmp_path):
    nets = build_brought("bm_user.nets:good", user / "good.pt", "mine")
    probe(nets, [2], "25gaussians", "bm_user.nets:good", "models.mine.builder")
    z = torch.randn(5, 4)
    x = nets["generator"](z)
    assert x.shape == (5, 2) and nets["critic"](x).shape == (5,)  # (n, 1) logits become (n,)
    assert nets["latent"] == {"prior": "normal", "dim": 4}
    save_model_file(tmp_path / "model.pt", generator=nets["generator"], critic=nets["critic"], latent=nets["latent"])
    loaded = load_model_file(tmp_path / "model.pt")
    assert loaded["generator"].spec == {"arch": "brought", "builder": "bm_user.nets:good", "role": "generator"}
    assert torch.equal(loaded["generator"](z), x) and torch.equal(loaded["critic"](x), nets["critic"](x))


@pytest.mark.parametrize("builder, weights, sentence", [
    ("bm_nowhere.nets:good", "good.pt", "models.mine.builder: module 'bm_nowhere.nets' is not importable "
     "(ModuleNotFoundError: No module named 'bm_nowhere'); put the folder that holds its package on PYTHONPATH"),
    ("bm_user.nets:missing", "good.pt", "models.mine.builder: module 'bm_user.nets' ("),
    ("bm_user.nets:NOT_CALLABLE", "good.pt", "models.mine.builder: bm_user.nets:NOT_CALLABLE is a int, not a function"),
    ("bm_user.nets:not_a_dict", "good.pt", "models.mine.builder: bm_user.nets:not_a_dict() returned a Points, not a "
     "dict; return {\"generator\": nn.Module, \"latent\""),
    ("bm_user.nets:no_generator", "good.pt", "models.mine.builder: bm_user.nets:no_generator() returned a dict "
     "without 'generator' (keys: ['critic', 'latent'])"),
    ("bm_user.nets:bad_prior", "good.pt", "models.mine.builder: bm_user.nets:bad_prior() returned latent {'prior': "
     "'laplace', 'dim': 4}; it must be {'prior': 'normal' (N(0, I)) or 'uniform' (U[-1, 1]), 'dim': a positive int}"),
    ("bm_user.nets:wide_points", "generator-only.pt", "models.mine.weights: the generator state dict in"),
    ("bm_user.nets:two_logits", "good.pt", "models.mine.weights: the critic state dict in"),
    ("bm_user.nets:no_critic", "good.pt", "holds critic weights, but bm_user.nets:no_critic() returns no critic"),
    ("bm_user.nets:good", "generator-only.pt", "holds no 'critic' state dict, but bm_user.nets:good() returns a critic"),
])
def test_each_wrong_builder_or_weights_file_is_one_sentence(user, builder, weights, sentence, monkeypatch):
    monkeypatch.syspath_prepend(str(user))
    said = refused(builder, user / weights)
    assert sentence in said
    assert "\n" not in said and "Traceback" not in said
    if "missing" in builder:
        assert "has no attribute 'missing' (AttributeError); fix the name after the colon" in said


def test_wrong_output_shapes_are_named_with_the_shape_the_dataset_needs(user, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(user))
    import bm_user.nets as nets

    for name, sentence in (("wide_points", "models.mine.builder: the generator of bm_user.nets:wide_points() maps 2 "
                                           "latents to shape (2, 3), but 25gaussians samples are float (n, 2); make "
                                           "it output that shape"),
                           ("two_logits", "models.mine.builder: the critic of bm_user.nets:two_logits() maps 2 "
                                          "samples to shape (2, 2); it must return (n,) or (n, 1) logits")):
        built = getattr(nets, name)()
        states = {role: built[role].state_dict() for role in ("generator", "critic") if built.get(role) is not None}
        torch.save(states, tmp_path / f"{name}.pt")
        assert refused(f"bm_user.nets:{name}", tmp_path / f"{name}.pt") == sentence


def test_a_pickle_payload_is_refused_because_loading_it_would_run_code(user, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(user))
    import bm_user.nets as nets

    torch.save({"generator": nets.Points(), "critic": nets.Critic()}, tmp_path / "pickled.pt")  # whole modules
    said = refused("bm_user.nets:good", tmp_path / "pickled.pt")
    assert said.startswith(f"models.mine.weights: {tmp_path / 'pickled.pt'} is refused: it is a pickle payload")
    assert "because loading it would run code; re-save it as plain state dicts: torch.save({\"generator\": " \
           "G.state_dict(), \"critic\": D.state_dict()}, path)" in said
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    assert "is not a torch.save file" in refused("bm_user.nets:good", tmp_path / "junk.pt")


def _config(weights, builder="bm_user.nets:good", methods=None) -> dict:
    return {"datasets": {"25gaussians": {}},
            "models": {"mine": {"kind": "builder", "builder": builder, "weights": str(weights),
                                "datasets": ["25gaussians"]}},
            "methods": methods or {"base": {"kind": "base"}, "dgflow": {"kind": "dgflow"},
                                   "dgflow-ft": {"kind": "dgflow", "discriminator": "finetuned"}}}


def test_the_plan_checks_in_a_subprocess_once_then_from_its_cache(user, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(user))
    monkeypatch.setenv("PYTHONPATH", f"{user}:{__import__('os').environ.get('PYTHONPATH', '')}")
    config = resolve_paths(validate(_config("good.pt")), user)
    block = config["models"]["mine"]
    assert block["weights"] == str(user / "good.pt") and len(block["sha256"]) == 64 and block["code_sha256"]
    assert import_params(config, "builder", "mine") == {k: block[k] for k in ("builder", "weights", "sha256",
                                                                              "code_sha256")}
    runs = [("25gaussians", "mine", "builder")]
    assert brought_check.errors(config, runs, tmp_path) == []

    def no_subprocess(*args, **kwargs):
        raise AssertionError("an unchanged plan runs no subprocess")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    assert brought_check.errors(config, runs, tmp_path) == []


def test_the_plan_names_a_bad_builder_and_a_missing_critic_in_sentences(user, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", f"{user}:{__import__('os').environ.get('PYTHONPATH', '')}")
    monkeypatch.syspath_prepend(str(user))
    runs = [("25gaussians", "mine", "builder")]
    config = resolve_paths(validate(_config("good.pt", "bm_user.nets:missing")), user)
    [said] = brought_check.errors(config, runs, tmp_path)
    assert said.startswith("models.mine.builder: module 'bm_user.nets' (") and "AttributeError" in said
    assert "Traceback" not in said
    config = resolve_paths(validate(_config("generator-only.pt", "bm_user.nets:no_critic")), user)
    [said] = brought_check.errors(config, runs, tmp_path)
    assert said == ("methods.dgflow follows the raw discriminator, but the builder of models.mine returns no critic; "
                    "set models.mine.logit_from: {model: <a configured model with a critic>, source: <its source>}, "
                    "or drop dgflow for it (overrides rows)")
    config = resolve_paths(validate(_config("nowhere.pt")), user)
    assert brought_check.errors(config, runs, tmp_path) == [
        f"models.mine.weights = '{user / 'nowhere.pt'}': no such file; point it at the torch.save'd weights (a "
        "relative path is relative to the config file's folder)"]


def test_the_probe_prints_one_json_verdict(user, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(user))
    probe_main(["bm_user.nets:good", str(user / "good.pt"), "mine", "25gaussians", "[2]"])
    assert capsys.readouterr().out.strip() == '{"ok": true, "critic": true, "latent": {"prior": "normal", "dim": 4}}'
