"""The upscalers by name, and `upscale_image`, the one entry point the CLI, the GUI and the hires fix use.

Resampling upscalers (Lanczos, bicubic) take any scale >= 1. A model upscaler has a native integer
scale s: it runs ceil(log_s(scale)) times (tiled) and the result is shrunk to the exact size with
area averaging. Importing this module does not load torch; a model upscaler loads it when it runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from engine.imaging import to_rgb8
from engine.paths import builtin_models_dir

if TYPE_CHECKING:
    from engine.sampling.core import CancelToken

MAX_SIDE = 16384  # px, either side of an upscaled image
BUILTIN_UPSCALER_FOLDER = Path("atelier-shapes") / "upscaler"
TileCallback = Callable[[int, int], None]


class UpscalerError(ValueError):
    """An upscaler that cannot run: its model is missing, unreadable or of an unsupported kind."""


@dataclass(frozen=True)
class UpscaleRun:
    """What one upscale call asks for besides the image: exact output size, tiling, device, progress, cancel."""

    size: tuple[int, int]  # (height, width) of the result
    tile: int | None
    device: str | None
    on_tile: TileCallback | None
    cancel: "CancelToken | None"


UpscaleFn = Callable[[np.ndarray, UpscaleRun], np.ndarray]  # (H, W, 3) uint8 -> (*run.size, 3) uint8


@dataclass(frozen=True)
class UpscalerSpec:
    """One upscaler: a one-line summary, its native scale (None: any scale) and the function that runs it."""

    summary: str
    native_scale: int | None
    run: UpscaleFn


def _resampler(interpolation: int) -> UpscaleFn:
    def run(rgb: np.ndarray, job: UpscaleRun) -> np.ndarray:
        if job.cancel is not None:
            job.cancel.raise_if_cancelled()
        out = cv2.resize(rgb, (job.size[1], job.size[0]), interpolation=interpolation)
        if job.on_tile is not None:
            job.on_tile(1, 1)
        return out

    return run


def builtin_upscaler_dir() -> Path:
    """The folder of the built-in x4 model (config.json + model.safetensors) that ships with Atelier."""
    return builtin_models_dir() / BUILTIN_UPSCALER_FOLDER


def _builtin_x4(rgb: np.ndarray, job: UpscaleRun) -> np.ndarray:
    import torch  # a model upscaler alone needs torch

    from engine.upscale.pixelshuffle import load_pixelshuffle_sr
    from engine.upscale.tiling import auto_tile, check_tile, tile_count, tiled_upscale

    if job.tile is not None:
        check_tile(job.tile)  # before loading anything
    folder = builtin_upscaler_dir()
    if not (folder / "model.safetensors").is_file():
        raise UpscalerError(f"the built-in upscaler is missing from {folder} (train it with "
                            f"`python -m engine.train sr`)")
    device = torch.device(job.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = load_pixelshuffle_sr(folder, device)
    s = model.scale
    ratio = max(job.size[0] / rgb.shape[0], job.size[1] / rgb.shape[1])
    passes = max(1, math.ceil(math.log(ratio, s) - 1e-9))
    tile = check_tile(job.tile) if job.tile is not None else auto_tile(model.bytes_per_pixel(), device)
    sizes = [(rgb.shape[0] * s**k, rgb.shape[1] * s**k) for k in range(passes)]
    total = sum(tile_count(h, w, tile) for h, w in sizes)
    done = 0
    for h, w in sizes:
        rgb = tiled_upscale(model, rgb, s, tile, device, on_tile=job.on_tile, cancel=job.cancel,
                            done_before=done, total=total)
        done += tile_count(h, w, tile)
    if rgb.shape[:2] == job.size:
        return rgb
    return cv2.resize(rgb, (job.size[1], job.size[0]), interpolation=cv2.INTER_AREA)  # shrinks: passes overshoot


UPSCALERS: dict[str, UpscalerSpec] = {
    "lanczos": UpscalerSpec("Lanczos resampling (8x8 kernel): sharp, any scale", None,
                            _resampler(cv2.INTER_LANCZOS4)),
    "bicubic": UpscalerSpec("bicubic resampling: smooth, any scale", None, _resampler(cv2.INTER_CUBIC)),
    "atelier-x4": UpscalerSpec("the built-in x4 super-resolution model (trained on the shapes world), tiled",
                               4, _builtin_x4),
}


def output_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """(round(H scale), round(W scale)); ValueError for a scale below 1 or a side over MAX_SIDE."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale < 1:
        raise ValueError(f"upscale factor must be a finite number >= 1, got {scale!r}")
    size = (round(height * scale), round(width * scale))
    if max(size) > MAX_SIDE:
        raise ValueError(f"upscaling {width}x{height} by {scale:g} gives {size[1]}x{size[0]} px; "
                         f"the largest side allowed is {MAX_SIDE} px")
    return size


def upscale_image(rgb: np.ndarray, upscaler: str, scale: float, *, tile: int | None = None,
                  device: str | None = None, on_tile: Callable[[int, int], None] | None = None,
                  cancel: "CancelToken | None" = None) -> np.ndarray:
    """Upscale an image by `scale` with the named upscaler -> (round(H scale), round(W scale), 3) uint8.

    `tile` (input px per tile side) overrides the size picked from free memory for a model upscaler;
    `on_tile(done, total)` follows every tile; `cancel` is checked between tiles (raises Cancelled)."""
    spec = UPSCALERS.get(upscaler)
    if spec is None:
        raise ValueError(f"unknown upscaler {upscaler!r}; choose one of: {', '.join(UPSCALERS)}")
    rgb = to_rgb8(rgb)
    size = output_size(rgb.shape[0], rgb.shape[1], scale)
    if size == rgb.shape[:2]:
        return rgb.copy()  # scale 1 (or one that rounds to it): nothing to do
    return spec.run(rgb, UpscaleRun(size, tile, device, on_tile, cancel))
