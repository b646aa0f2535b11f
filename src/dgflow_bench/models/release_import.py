"""The DGflow release's published weights (github.com/clear-nus/DGflow, release v1.0): the generators of
MMDGAN, OCFGAN-GP and the VAE and their density-ratio correctors, on CIFAR10 and STL10.

What the release fixes (files read: clear-nus/DGflow README.md, util.py, torch_models.py, configs/*.yml)
----------------------------------------------------------------------------------------------------
- Where: README.md sends the reader to the release page github.com/clear-nus/DGflow/releases/tag/v1.0 for
  ``MMDGAN_CIFAR.pth``, ``OCFGAN_CIFAR.pth``, ``VAE_CIFAR.pth``, their ``*_DRC.pth`` correctors and the same
  with ``_STL`` (configs/{cifar10,stl10}-{mmdgan,ocfgan,vae}.yml name exactly these files). GitHub serves a
  release's assets at ``.../releases/download/<tag>/<file>`` (RELEASE_URL).
- How: util.py ``load_model`` builds each net and calls ``load_state_dict(torch.load(path))``: every file is
  a plain state dict, not a pickled module, so ``torch.load(..., weights_only=True)`` reads it.
- Generators (``t_cnn``, ``t_cnn_vae``): torch_models.py ``CNNDecoder(isize=32, nc=3, k=z_dim, ngf=64)``,
  Tanh, or Sigmoid for the VAE with the output mapped to [-1, 1] by (x - 0.5) * 2; keys
  ``main.initial-<z_dim>-256-convt.weight``, ``main.initial-256-batchnorm.*``,
  ``main.pyramid-256-128-convt.weight``, ..., ``main.final-64-3-convt.weight`` (our models/release_cnn.py
  has these names). z_dim 32 for MMDGAN and OCFGAN-GP, 64 for the VAE (configs/*.yml); here it is read
  from the file's first layer. isize is 32 for STL10 too: its configs set image_size 48, which only makes
  CNNDecoder resize its output bilinearly (align_corners=True) for the 48 px discriminators; dgflow.py
  saves the samples with ``resize=False`` and scores them as STL32. So STL10 is our ``stl10-32`` and its
  corrector reads ``upsample_bilinear(48)`` of the samples (corrector_input_size).
- Correctors (``t_sndcgan``): torch_models.py ``SNDCGANDiscriminator(bw=bottom_width)`` with ch 512, bw 4
  on CIFAR10 and 6 on STL10 (48 px), convs ``c0_0, c0_1, c1_0, c1_1, c2_0, c2_1, c3_0`` and Linear ``l4``,
  LeakyReLU 0.2, each wrapped in the old hook ``torch.nn.utils.spectral_norm``: keys ``<name>.weight_orig``,
  ``<name>.weight_u``, ``<name>.weight_v``, ``<name>.bias`` (torch 1.6, requirements.txt). Our
  SNDCGANDiscriminator (models/dcgan.py) uses the parametrization spectral norm, keys
  ``<name>.parametrizations.weight.original`` / ``.0._u`` / ``.0._v``; the conversion renames them. In eval
  mode both compute W / (u . W v) from the stored u, v: the same function. In training mode each does one
  power iteration per forward, in a different order (old: v then u; parametrize: u then v), so the u, v
  drift apart slightly there. Note that dgflow.py never calls ``.eval()``: the release refines with its
  generator's BatchNorm on batch statistics and one power iteration per corrector call.
- Glow: configs/cifar10-glow.yaml loads ``glow-cifar10.pt`` + ``hparams.json`` (y0ast/Glow-PyTorch's, by our
  inference from the hparams.json: models/glow.py), not a release asset, and util.py has no ``t_glow``
  branch: no key layout is documented (GLOW_NOT_RELEASED).

SHA-256: the release publishes no hashes, so none is built in. A hash the config gives
(``sources.dgflow-release.release_sha256: {file name: hash}``) is checked; otherwise the hash seen is
recorded (the import stage writes it to the resolved config).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CheckpointError
from ..io import sha256_file

if TYPE_CHECKING:
    import torch

    from .dcgan import SNDCGANDiscriminator
    from .release_cnn import ReleaseCNNDecoder

# torch and the nets are imported where they are used: the plan-time check (release_filenames) stays light

RELEASE_PAGE = "https://github.com/clear-nus/DGflow/releases/tag/v1.0"
RELEASE_URL = "https://github.com/clear-nus/DGflow/releases/download/v1.0"
LOCAL_DIR_KEY = "sources.dgflow-release.local_dir"
URL_KEY = "sources.dgflow-release.release_url"
SHA256_KEY = "sources.dgflow-release.release_sha256"

# model -> (file name prefix, the decoder's output activation) (util.py t_cnn / t_cnn_vae)
RELEASE_MODELS = {"mmdgan": ("MMDGAN", "tanh"), "ocfgan-gp": ("OCFGAN", "tanh"), "vae": ("VAE", "sigmoid")}
# dataset -> (file name suffix, the corrector's bottom width: 8 * bw px input) (configs/*.yml)
RELEASE_DATA = {"cifar10": ("CIFAR", 4), "stl10-32": ("STL", 6)}
GENERATOR_ISIZE, GENERATOR_NGF = 32, 64  # util.py: CNNDecoder(isize=32, ...), ngf its default
CORRECTOR_CH = 512  # torch_models.py SNDCGANDiscriminator default, which util.py keeps
GLOW_NOT_RELEASED = (
    "the DGflow release publishes no Glow weights: its configs/cifar10-glow.yaml loads glow-cifar10.pt and "
    "hparams.json (y0ast/Glow-PyTorch's, by our inference), and its util.load_model has no t_glow branch, so "
    "no key layout is documented for an importer to check. Train Glow with `source: trained` (models.glow.sources)")

_DECODER_HEAD = re.compile(r"^main\.initial-(\d+)-(\d+)-convt\.weight$")
_OLD_SN_SUFFIXES = {"weight_orig": "parametrizations.weight.original", "weight_u": "parametrizations.weight.0._u",
                    "weight_v": "parametrizations.weight.0._v"}


def release_filenames(dataset: str, model: str) -> dict[str, str]:
    """{'generator': e.g. 'MMDGAN_CIFAR.pth', 'corrector': 'MMDGAN_CIFAR_DRC.pth'}."""
    if model == "glow":
        raise CheckpointError(GLOW_NOT_RELEASED)
    if model not in RELEASE_MODELS:
        raise CheckpointError(f"the DGflow release has no weights for model {model!r}, only for "
                              f"{sorted(RELEASE_MODELS)}: use source 'trained' for {model}")
    if dataset not in RELEASE_DATA:
        raise CheckpointError(f"the DGflow release's {model} weights are for {sorted(RELEASE_DATA)} (its STL10 "
                              f"generators make 32 px images), not {dataset!r}: use source 'trained' there")
    stem = f"{RELEASE_MODELS[model][0]}_{RELEASE_DATA[dataset][0]}"
    return {"generator": f"{stem}.pth", "corrector": f"{stem}_DRC.pth"}


def corrector_input_size(dataset: str) -> int | None:
    """The image size the release's corrector (and d_phi) reads for ``dataset``: 48 for stl10-32, whose
    32 px samples must pass through models/corrected.py ``upsample_bilinear(48)`` first; None for cifar10."""
    size = 8 * RELEASE_DATA[dataset][1]
    return None if size == GENERATOR_ISIZE else size


def fetch_release_files(dataset: str, model: str, *, local_dir: str | None, url: str | None = None,
                        sha256: dict[str, str] | None = None, cache_dir: str | Path | None = None,
                        roles: tuple[str, ...] = ("generator", "corrector")) -> dict[str, dict]:
    """{role: {'path', 'sha256', 'sha256_checked'}}: the file from ``local_dir`` (never downloads then), else
    downloaded once into ``cache_dir`` from ``url`` (default RELEASE_URL); checked against ``sha256[name]``
    where the config gives one, the hash seen recorded either way."""
    from .checkpoint_downloads import verify_sha256

    hashes = {name: value.lower() for name, value in (sha256 or {}).items()}
    out = {}
    for role, name in release_filenames(dataset, model).items():
        if role not in roles:
            continue
        expected = hashes.get(name)
        if local_dir:
            path = Path(local_dir) / name
            if not path.is_file():
                raise CheckpointError(
                    f"{path} not found: {LOCAL_DIR_KEY} = {local_dir!r} lacks {name}, the {role} of {model} on "
                    f"{dataset}. Download it from {RELEASE_PAGE} into that folder, or set {LOCAL_DIR_KEY} to "
                    "null to download it.")
        else:
            if cache_dir is None:
                raise ValueError(f"no cache folder to download {name} into, and {LOCAL_DIR_KEY} is not set")
            path = Path(cache_dir) / name
            if not (path.is_file() and (expected is None or sha256_file(path) == expected)):
                _download(f"{(url or RELEASE_URL).rstrip('/')}/{name}", path, expected)
        if expected is not None:
            verify_sha256(path, expected, SHA256_KEY)
        out[role] = {"path": path, "sha256": expected or sha256_file(path), "sha256_checked": expected is not None}
    return out


def _download(url: str, path: Path, expected: str | None) -> None:
    from .checkpoint_downloads import download

    try:
        download(url, path, expected, hash_key=SHA256_KEY)
    except CheckpointError as exc:
        if exc.__cause__ is None:
            raise  # a SHA-256 mismatch: its message already names the config key
        # the shared helper's offline hint names DOT's folder key; name this source's
        raise CheckpointError(f"could not download {url} ({exc.__cause__}). Offline? Download it from "
                              f"{RELEASE_PAGE} elsewhere, put it in a folder and set {LOCAL_DIR_KEY} to that "
                              "folder.") from exc.__cause__


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict in ``path``, read with ``weights_only=True`` (no code from the file runs)."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path} is not a torch state dict readable with weights_only=True ({exc}); the "
                              "release's files are state dicts (clear-nus/DGflow util.py load_state_dict)") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a state dict of tensors")
    return state


def load_exactly(net: torch.nn.Module, state: dict, path: str | Path, what: str) -> torch.nn.Module:
    """``net.load_state_dict(state, strict=True)`` after naming every missing / unexpected key and every
    shape mismatch, so a foreign file fails with the file and the keys in the message."""
    want = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in state.items()}
    problems = [f"missing {k} {want[k]}" for k in want if k not in have]
    problems += [f"unexpected {k} {have[k]}" for k in have if k not in want]
    problems += [f"{k}: file {have[k]}, {what} {want[k]}" for k in want if k in have and have[k] != want[k]]
    if problems:
        shown = "; ".join(problems[:8]) + (f"; ... ({len(problems) - 8} more)" if len(problems) > 8 else "")
        raise CheckpointError(f"{path} does not fit {what}: {shown}")
    net.load_state_dict(state, strict=True)
    return net


def load_release_generator(path: str | Path, model: str) -> ReleaseCNNDecoder:
    """The release's generator of ``model`` (its CNNDecoder) as our ReleaseCNNDecoder, in eval mode; z_dim
    from the file's first layer, isize 32 and ngf 64 as the release's (any other shape is an error)."""
    from .release_cnn import ReleaseCNNDecoder

    state = read_state_dict(path)
    heads = [(k, m) for k in state if (m := _DECODER_HEAD.match(k))]
    if len(heads) != 1:
        raise CheckpointError(f"{path} is not the release's CNNDecoder: it has {len(heads)} keys like "
                              f"main.initial-<z_dim>-256-convt.weight (first keys: {list(state)[:4]})")
    key, _ = heads[0]
    if state[key].ndim != 4:
        raise CheckpointError(f"{path}: {key} has shape {tuple(state[key].shape)}, not a ConvTranspose2d weight")
    z_dim = int(state[key].shape[0])
    output = RELEASE_MODELS[model][1]
    net = ReleaseCNNDecoder(z_dim, isize=GENERATOR_ISIZE, ngf=GENERATOR_NGF, output=output)
    what = f"the release's {model} generator (CNNDecoder isize 32, ngf 64, z_dim {z_dim}, {output})"
    return load_exactly(net, state, path, what).eval()


def convert_old_spectral_norm(state: dict[str, torch.Tensor], path: str | Path = "") -> dict[str, torch.Tensor]:
    """Keys of ``torch.nn.utils.spectral_norm`` (``x.weight_orig``, ``x.weight_u``, ``x.weight_v``) -> those of
    ``torch.nn.utils.parametrizations.spectral_norm`` (``x.parametrizations.weight.original``, ``.0._u``,
    ``.0._v``); the tensors are the same (the raw weight and the power-iteration vectors)."""
    converted = {}
    for key, value in state.items():
        module, _, leaf = key.rpartition(".")
        converted[f"{module}.{_OLD_SN_SUFFIXES[leaf]}" if leaf in _OLD_SN_SUFFIXES else key] = value
    stale = sorted({k.rpartition(".")[0] for k in state if k.endswith(".weight_orig")}
                   - {k.rpartition(".")[0] for k in state if k.endswith(".weight_v")})
    if stale:  # torch < 1.1 stored no v; torch's own hook would solve for it, we do not guess
        raise CheckpointError(f"{path}: spectral-norm layers {stale} have weight_orig but no weight_v (a torch < "
                              "1.1 file); load it into torch_models.SNDCGANDiscriminator and save it again")
    return converted


def load_release_corrector(source: str | Path | dict, dataset: str, model: str, *,
                           cache_dir: str | Path | None = None) -> SNDCGANDiscriminator:
    """The release's density-ratio corrector of ``model`` on ``dataset`` as our SNDCGANDiscriminator
    (ch 512, bottom width 4 for cifar10, 6 for stl10-32), in eval mode, the same function of its input as
    the release's module in eval mode. Input: images at corrector_input_size(dataset) (None: the samples
    as they are). ``source``: the ``*_DRC.pth`` file, or the settings of ``sources.dgflow-release``
    (local_dir, release_url, release_sha256; downloads into ``cache_dir`` when local_dir is null)."""
    from .dcgan import SNDCGANDiscriminator

    if isinstance(source, dict):
        path = fetch_release_files(dataset, model, local_dir=source.get("local_dir"), url=source.get("release_url"),
                                   sha256=source.get("release_sha256"), cache_dir=cache_dir,
                                   roles=("corrector",))["corrector"]["path"]
    else:
        path = Path(source)
        release_filenames(dataset, model)  # the same errors for a model or dataset the release lacks
    state = convert_old_spectral_norm(read_state_dict(path), path)
    bottom_width = RELEASE_DATA[dataset][1]
    head = state.get("l4.parametrizations.weight.original")
    if head is not None and head.ndim == 2 and head.shape[1] != bottom_width ** 2 * CORRECTOR_CH:
        found = (head.shape[1] / CORRECTOR_CH) ** 0.5
        raise CheckpointError(f"{path} reads {8 * found:g} px images, but the corrector for {dataset} reads "
                              f"{8 * bottom_width} px: the file belongs to another dataset")
    net = SNDCGANDiscriminator(bottom_width=bottom_width, ch=CORRECTOR_CH, spectral_norm=True)
    what = f"the release's corrector (SN-DCGAN ch 512, bottom width {bottom_width})"
    return load_exactly(net, state, path, what).eval()
