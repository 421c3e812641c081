"""The tile preprocessor: the picture with its fine detail removed (downsampled, then upsampled
back), as tile ControlNets read it."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.control.params import check_params, param
from engine.imaging import to_rgb8


@dataclass(frozen=True)
class TileParams:
    """How much detail to remove: the downsampling factor and an optional blur afterwards."""

    factor: float = param(4.0, ge=1.0, le=64.0, step=0.5, label="Downsample factor",
                          doc="the map keeps detail down to about this many pixels")
    blur: float = param(0.0, ge=0.0, le=20.0, step=0.1, label="Blur sigma", doc="Gaussian blur after; 0 = none")

    def __post_init__(self) -> None:
        check_params(self)


def tile(image: np.ndarray, params: TileParams = TileParams()) -> np.ndarray:
    """Area-average down by `factor` (at least one pixel per side), bicubic back up to the input
    size, then blur; factor 1 with no blur returns the image unchanged."""
    rgb = to_rgb8(image)
    h, w = rgb.shape[:2]
    out = rgb
    if params.factor > 1.0:
        small = cv2.resize(rgb, (max(1, round(w / params.factor)), max(1, round(h / params.factor))),
                           interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    if params.blur > 0:
        out = cv2.GaussianBlur(out, (0, 0), params.blur)
    return np.ascontiguousarray(out)
