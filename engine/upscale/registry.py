"""The upscalers by name, and `upscale_image`, the one entry point the CLI, the GUI and the hires fix use.

Resampling upscalers (Lanczos, bicubic) take any scale >= 1. A model upscaler has a native integer
scale s: it runs ceil(log_s(scale)) times (tiled) and the result is shrunk to the exact size with
area averaging. A user's model file (ESRGAN family, engine.upscale.model_file) is named by its path
and runs the same way. Importing this module does not load torch; a model upscaler loads it when it runs.
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
    import torch

    from engine.sampling.core import CancelToken
    from engine.upscale.model_file import UpscalerModel

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


def run_tiled_model(model: "UpscalerModel", rgb: np.ndarray, job: UpscaleRun) -> np.ndarray:
    """A model upscaler's run: ceil(log_s(ratio)) tiled passes at its native scale s (tile from the
    job or from free memory), then an area shrink to the exact size when the passes overshoot."""
    from engine.upscale.tiling import auto_tile, check_tile, tile_count, tiled_upscale

    device = next(model.module.parameters()).device
    s = model.scale
    ratio = max(job.size[0] / rgb.shape[0], job.size[1] / rgb.shape[1])
    passes = max(1, math.ceil(math.log(ratio, s) - 1e-9)) if s > 1 else 1
    tile = check_tile(job.tile) if job.tile is not None else auto_tile(model.bytes_per_pixel, device)
    sizes = [(rgb.shape[0] * s**k, rgb.shape[1] * s**k) for k in range(passes)]
    total = sum(tile_count(h, w, tile, align=model.align) for h, w in sizes)
    done = 0
    for h, w in sizes:
        rgb = tiled_upscale(model, rgb, s, tile, device, align=model.align, on_tile=job.on_tile, cancel=job.cancel,
                            done_before=done, total=total)
        done += tile_count(h, w, tile, align=model.align)
    if rgb.shape[:2] == job.size:
        return rgb
    shrink = rgb.shape[0] > job.size[0]  # passes overshoot (area shrink); a x1 model needs resampling up
    return cv2.resize(rgb, (job.size[1], job.size[0]), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LANCZOS4)


def _device(name: str | None) -> "torch.device":
    import torch

    return torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))


def _builtin_x4(rgb: np.ndarray, job: UpscaleRun) -> np.ndarray:
    import torch  # a model upscaler alone needs torch

    from engine.upscale.model_file import UpscalerModel
    from engine.upscale.pixelshuffle import load_pixelshuffle_sr
    from engine.upscale.tiling import check_tile

    if job.tile is not None:
        check_tile(job.tile)  # before loading anything
    folder = builtin_upscaler_dir()
    if not (folder / "model.safetensors").is_file():
        raise UpscalerError(f"the built-in upscaler is missing from {folder} (train it with "
                            f"`python -m engine.train sr`)")
    net = load_pixelshuffle_sr(folder, _device(job.device))
    model = UpscalerModel(net, "atelier-x4", net.scale, net.bytes_per_pixel(), torch.float32)
    return run_tiled_model(model, rgb, job)


def _model_file(path: Path) -> UpscaleFn:
    def run(rgb: np.ndarray, job: UpscaleRun) -> np.ndarray:
        from engine.models.errors import ModelLoadError
        from engine.upscale.model_file import load_upscaler_file
        from engine.upscale.tiling import check_tile

        if job.tile is not None:
            check_tile(job.tile)  # before loading anything
        try:
            model = load_upscaler_file(path, _device(job.device))
        except ModelLoadError as exc:
            raise UpscalerError(str(exc)) from None
        return run_tiled_model(model, rgb, job)

    return run


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


def upscaler_spec(upscaler: str | Path) -> UpscalerSpec:
    """The spec of a built-in upscaler's name or of a user model file's path (ValueError for neither)."""
    if isinstance(upscaler, str) and upscaler in UPSCALERS:
        return UPSCALERS[upscaler]
    from engine.models.checkpoint import WEIGHT_SUFFIXES  # loads torch: a model file needs it anyway

    path = Path(upscaler).expanduser()
    if path.is_file():
        return UpscalerSpec(f"the model file {path.name}", None, _model_file(path))
    if isinstance(upscaler, Path) or path.suffix.lower() in WEIGHT_SUFFIXES:
        raise UpscalerError(f"{path}: the upscaler model file does not exist (moved, deleted, or on a drive "
                            "that is not mounted)")
    raise ValueError(f"unknown upscaler {str(upscaler)!r}; choose one of: {', '.join(UPSCALERS)}, or a model file")


def upscale_image(rgb: np.ndarray, upscaler: str | Path, scale: float, *, tile: int | None = None,
                  device: str | None = None, on_tile: Callable[[int, int], None] | None = None,
                  cancel: "CancelToken | None" = None) -> np.ndarray:
    """Upscale an image by `scale` with a built-in upscaler (by name) or a model file (by path)
    -> (round(H scale), round(W scale), 3) uint8.

    `tile` (input px per tile side) overrides the size picked from free memory for a model upscaler;
    `on_tile(done, total)` follows every tile; `cancel` is checked between tiles (raises Cancelled)."""
    spec = upscaler_spec(upscaler)
    rgb = to_rgb8(rgb)
    size = output_size(rgb.shape[0], rgb.shape[1], scale)
    if size == rgb.shape[:2]:
        return rgb.copy()  # scale 1 (or one that rounds to it): nothing to do
    return spec.run(rgb, UpscaleRun(size, tile, device, on_tile, cancel))
