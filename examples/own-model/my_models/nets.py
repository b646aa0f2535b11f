"""A small DCGAN-style generator and critic for 32 px RGB images, as a user's own code would define them.
dgflow-bench calls ``build()`` (config: ``builder: my_models.nets:build``) and loads the weights file into
what it returns; nothing here imports dgflow-bench."""

import torch
from torch import nn

Z_DIM = 16


class Generator(nn.Module):
    """(n, Z_DIM) latents -> (n, 3, 32, 32) images in [-1, 1]."""

    def __init__(self, z_dim: int = Z_DIM, ch: int = 16):
        super().__init__()
        self.ch = ch
        self.project = nn.Linear(z_dim, ch * 4 * 4)
        self.body = nn.Sequential(
            nn.Upsample(scale_factor=2), nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU(),  # 8 px
            nn.Upsample(scale_factor=2), nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU(),  # 16 px
            nn.Upsample(scale_factor=2), nn.Conv2d(ch, 3, 3, padding=1), nn.Tanh(),  # 32 px
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.project(z).view(-1, self.ch, 4, 4))


class Critic(nn.Module):
    """(n, 3, 32, 32) images -> (n, 1) logits (real: high)."""

    def __init__(self, ch: int = 16):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, ch, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # 16 px
            nn.Conv2d(ch, ch, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # 8 px
            nn.Conv2d(ch, ch, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # 4 px
        )
        self.out = nn.Linear(ch * 4 * 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x).flatten(1))


def build() -> dict:
    """What dgflow-bench asks of a builder: the nets (fresh; it loads the weights) and the latent prior."""
    return {"generator": Generator(), "critic": Critic(), "latent": {"prior": "normal", "dim": Z_DIM}}
