"""The 2-D WGAN-GP networks (the toy code's MLPs, reused by DOT): LeakyReLU(0.2) hidden layers, linear
output. G: 2 -> 256 -> 256 -> 256 -> 2 with z ~ U[-1, 1]^2; D: 2 -> 512 -> 512 -> 512 -> 1."""

from __future__ import annotations

import torch
from torch import nn
from ..registry import ARCHITECTURES


class _LeakyReLUFirstOrder(torch.autograd.Function):
    """``leaky_relu`` whose backward is differentiable in the incoming gradient only. It computes exactly what
    autograd's own leaky_relu node does (``leaky_relu_backward(grad, x, slope)``, forward and backward), but
    leaves out the derivative with respect to ``x``, which is identically zero (the function is piecewise
    linear): in a double backward (the gradient penalty's) autograd would otherwise push those zeros back
    through the whole forward graph: about a quarter of a critic step's matrix products, all on zeros."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, slope: float) -> torch.Tensor:
        ctx.save_for_backward(x.detach())
        ctx.slope = slope
        return nn.functional.leaky_relu(x, slope)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        return torch.ops.aten.leaky_relu_backward(grad, x, ctx.slope, False), None


class MLP(nn.Module):
    def __init__(self, in_dim: int, hidden: int, depth: int, out_dim: int, slope: float = 0.2):
        super().__init__()
        dims = [in_dim] + [hidden] * depth
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.out = nn.Linear(dims[-1], out_dim)
        self.slope = slope
        self.spec = {"in_dim": in_dim, "hidden": hidden, "depth": depth, "out_dim": out_dim, "slope": slope}

    @property
    def layers(self) -> list[nn.Linear]:
        return [*self.hidden, self.out]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            x = nn.functional.leaky_relu(layer(x), self.slope)
        return self.out(x)

    def penalty_forward(self, x: torch.Tensor) -> torch.Tensor:
        """``forward`` for an input whose gradient is taken with ``create_graph=True`` (training/gan_losses.py,
        the gradient penalty): the same values and gradients, bit for bit, with a double backward that skips
        the activations' zero second derivative."""
        for layer in self.hidden:
            x = _LeakyReLUFirstOrder.apply(layer(x), self.slope)
        return self.out(x)


class Critic(MLP):
    """Scalar output squeezed to (N,): the logit function interface of the refinement methods."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).squeeze(-1)

    def penalty_forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().penalty_forward(x).squeeze(-1)


def build_generator(latent_dim: int = 2, hidden: int = 256, depth: int = 3, data_dim: int = 2) -> MLP:
    return MLP(latent_dim, hidden, depth, data_dim)


def build_critic(data_dim: int = 2, hidden: int = 512, depth: int = 3) -> Critic:
    return Critic(data_dim, hidden, depth, 1)


def from_spec(spec: dict, kind: str) -> MLP:
    cls = Critic if kind == "critic" else MLP
    return cls(spec["in_dim"], spec["hidden"], spec["depth"], spec["out_dim"], spec.get("slope", 0.2))


# MLP specs carry no 'arch' key (the 2-D checkpoints predate it): models.store names them by role
ARCHITECTURES.register("mlp_generator", lambda spec, rebuild: from_spec(spec, "generator"))
ARCHITECTURES.register("mlp_critic", lambda spec, rebuild: from_spec(spec, "critic"))
