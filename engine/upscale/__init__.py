"""Upscaling: the built-in PixelShuffle super-resolution model (more upscalers come with the
upscaling work)."""

from engine.upscale.compact import CompactSR, load_compact_sr

__all__ = ["CompactSR", "load_compact_sr"]
