"""The model sources: `trained` (the train rule) and the published checkpoints the suites can import."""

from __future__ import annotations

from ..registry import SOURCES
from .base import Source

SOURCES.register("trained", Source(True, "trained by the pipeline from the config's recipe"))
SOURCES.register("dot-pretrained", Source(False, "DOT's published Chainer checkpoints (Tanaka 2019)"))
SOURCES.register("dgflow-release", Source(False, "the DGflow release's v1.0 assets (clear-nus/DGflow): MMDGAN, "
                                             "OCFGAN-GP and VAE generators and their density-ratio correctors"))
