"""Atelier's engine: samplers, models, decoding and vision tools in PyTorch. Never imports Qt."""

__version__ = "0.1.0"
