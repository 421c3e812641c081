"""Upscaling: the built-in PixelShuffle super-resolution model (more upscalers come with the
upscaling work)."""

from engine.upscale.pixelshuffle import PixelShuffleSR, load_pixelshuffle_sr

__all__ = ["PixelShuffleSR", "load_pixelshuffle_sr"]
