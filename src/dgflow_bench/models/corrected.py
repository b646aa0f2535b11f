"""The density-ratio discriminator d = d_phi + d_lambda as a network (docs/method.md §2): how it is built,
evaluated and rebuilt from a model file. Its training lives in training/corrector.py; models/store.py
rebuilds it, so it sits here, below both."""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn as nn
from torch.nn.utils import parametrize
from ..registry import ARCHITECTURES


def upsample_bilinear(size) -> nn.Module:
    """Input transform resizing images to ``size`` bilinearly with align_corners=True, e.g. the STL10
    32 px models are judged by 48 px discriminators: ``upsample_bilinear(48)``. Only d sees the upsampled
    image; samples and metrics stay at the model's resolution."""
    return nn.Upsample(size=size, mode="bilinear", align_corners=True)


def resize_for(critic: nn.Module, image_size: int) -> Optional[nn.Module]:
    """The bilinear resize a borrowed critic needs in front of it: None when it takes ``image_size`` px images
    (or declares no size, e.g. a net ending in global pooling), else upsample_bilinear(its size). The release's
    STL10 32 px rows feed their 48 px discriminator this way (models.<m>.d_phi_dataset)."""
    size = getattr(critic, "image_size", None)
    if size is None or int(size) == int(image_size):
        return None
    return upsample_bilinear(int(size))


class ResizedInput(nn.Module):
    """critic(T(x)): a borrowed raw critic judging samples of another size (only d sees the resized image)."""

    def __init__(self, critic: nn.Module, transform: nn.Module):
        super().__init__()
        self.critic, self.transform = critic, transform

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(self.transform(x))


class CorrectedLogit(nn.Module):
    """d(x) = d_phi(T(x)) + d_lambda(T(x)), (N, ...) -> (N,).

    base (d_phi): frozen; its parameters never require grad and it stays in eval mode even after
        ``.train()``, so BatchNorm statistics and dropout masks of the pretrained net never change.
    corrector (d_lambda): the trainable part; any module mapping (N, ...) to N scalars.
    input_transform (T): optional callable applied once to x before both parts (default identity), e.g.
        ``upsample_bilinear(48)``. It is differentiable, so input gradients flow through it.
    """

    def __init__(self, base: nn.Module, corrector: nn.Module,
                 input_transform: Optional[Callable[[torch.Tensor], torch.Tensor]] = None):
        super().__init__()
        self.base = base.requires_grad_(False).eval()
        self.corrector = corrector
        self.input_transform = input_transform

    def train(self, mode: bool = True) -> "CorrectedLogit":
        super().train(mode)
        self.base.eval()  # pretrained d_phi is only ever evaluated
        return self

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(d_phi, d_lambda), each (N,), on the transformed input."""
        if self.input_transform is not None:
            x = self.input_transform(x)
        n = x.shape[0]  # reshape(n) fails loudly if a part returns more than one value per sample
        return self.base(x).reshape(n), self.corrector(x).reshape(n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d_phi, d_lambda = self.parts(x)
        return d_phi + d_lambda

    @property
    def spec(self) -> dict:
        """Architecture of both parts, so models/store.py can rebuild the pair from a model file."""
        for part in (self.base, self.corrector):
            if not isinstance(getattr(part, "spec", None), dict):
                raise ValueError(f"{type(part).__name__} has no .spec: a CorrectedLogit can only be saved when "
                                 "both d_phi and d_lambda are pipeline networks")
        return {"arch": "corrected_logit", "base": self.base.spec, "corrector": self.corrector.spec,
                "input_size": _upsample_size(self.input_transform)}


def _upsample_size(transform) -> Optional[list]:
    if transform is None:
        return None
    if (isinstance(transform, nn.Upsample) and transform.mode == "bilinear" and transform.align_corners
            and transform.size is not None):
        size = transform.size
        return [int(size), int(size)] if isinstance(size, int) else [int(s) for s in size]
    raise ValueError(f"cannot save the input transform {transform!r}: only upsample_bilinear(size) has a spec")


def from_spec(spec: dict, build: Callable[[dict], nn.Module]) -> CorrectedLogit:
    """Rebuild a CorrectedLogit (fresh weights) from its ``.spec``; ``build`` rebuilds each part from its
    own spec (models.store.build_from_spec). Load the state_dict afterwards."""
    corrector = build(spec["corrector"])
    last = last_weight_layer(corrector)
    if spec["corrector"].get("plain_last_layer") and parametrize.is_parametrized(last, "weight"):
        unparametrize(last)  # the layout zero_last_layer left, so the saved state_dict keys match
        corrector.spec = dict(spec["corrector"])
    transform = upsample_bilinear(tuple(spec["input_size"])) if spec.get("input_size") else None
    return CorrectedLogit(build(spec["base"]), corrector, transform)


def last_weight_layer(module: nn.Module) -> nn.Module:
    layers = [m for m in module.modules() if isinstance(getattr(m, "weight", None), torch.Tensor)]
    if not layers:
        raise ValueError(f"the corrector {type(module).__name__} has no layer with a weight to start at zero")
    return layers[-1]


def unparametrize(layer: nn.Module) -> None:
    # remove_parametrizations deletes the weight property from the layer's generated class, which a deepcopy
    # (d_lambda = copy of d_phi) shares with the original: give this layer its own class first.
    cls = layer.__class__
    layer.__class__ = type(cls.__name__, cls.__bases__,
                           {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")})
    parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)


# each part is a critic, rebuilt by the registry's own lookup (models.store.build_from_spec)
ARCHITECTURES.register("corrected_logit", lambda spec, rebuild: from_spec(spec, lambda part: rebuild(part, "critic")))
