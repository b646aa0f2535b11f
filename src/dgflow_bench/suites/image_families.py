"""The paper's image models that are not GANs with a scalar critic of their own: MMDGAN, OCFGAN-GP, the VAE
and Glow. They belong to the image suite (same data, metrics and tables); each is a model family
(training/*_family.py) and a schema block (schemas/definitions/image_families.yaml). Their discriminators come
from another model: d_phi + d_lambda (density_ratio: corrector) or a borrowed raw critic (logit_from)."""

from __future__ import annotations

from ..registry import MODELS
from ..training.flow_family import GlowFamily
from ..training.kernel_family import KernelGanFamily
from ..training.vae_family import VaeFamily
from .images import NAME

MODELS.register("glow", GlowFamily(NAME, {"$ref": "#/definitions/glow_model"}, "normal", 3072))
MODELS.register("vae", VaeFamily(NAME, {"$ref": "#/definitions/vae_model"}, "normal", 64))
MODELS.register("mmdgan", KernelGanFamily(NAME, {"$ref": "#/definitions/mmdgan_model"}, "normal", 32, objective="mmd"))
MODELS.register("ocfgan-gp", KernelGanFamily(NAME, {"$ref": "#/definitions/ocfgan_model"}, "normal", 32,
                                             objective="ecfd"))
