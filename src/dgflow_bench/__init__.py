"""dgflow-bench: a reproducible benchmark pipeline for Discriminator Gradient Flow (DGflow)."""

__version__ = "0.1.0"
