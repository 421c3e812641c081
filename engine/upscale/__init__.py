"""Upscaling: the registry of upscalers (Lanczos, bicubic, the built-in x4 PixelShuffle model) with
`upscale_image`, the one entry point, and seamless tiled inference for models.

Exports load on first use, so the command line can list the upscalers without loading torch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.lazy import lazy_getattr

_EXPORTS: dict[str, str] = {
    "MAX_SIDE": "engine.upscale.registry",
    "UPSCALERS": "engine.upscale.registry",
    "UpscalerError": "engine.upscale.registry",
    "UpscalerSpec": "engine.upscale.registry",
    "builtin_upscaler_dir": "engine.upscale.registry",
    "upscale_image": "engine.upscale.registry",
    "PixelShuffleSR": "engine.upscale.pixelshuffle",
    "load_pixelshuffle_sr": "engine.upscale.pixelshuffle",
    "tiled_upscale": "engine.upscale.tiling",
    "tiled_peak_bound": "engine.upscale.tiling",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from engine.upscale.pixelshuffle import PixelShuffleSR, load_pixelshuffle_sr
    from engine.upscale.registry import (MAX_SIDE, UPSCALERS, UpscalerError, UpscalerSpec, builtin_upscaler_dir,
                                         upscale_image)
    from engine.upscale.tiling import tiled_peak_bound, tiled_upscale


__getattr__ = lazy_getattr(__name__, _EXPORTS)
