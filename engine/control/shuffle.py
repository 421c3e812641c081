"""The content shuffle preprocessor of ControlNet 1.1: the picture warped by a seeded, smooth
random field, so colours and textures stay but the layout is lost."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.control.params import check_params, param
from engine.imaging import to_rgb8


@dataclass(frozen=True)
class ShuffleParams:
    """The seed of the random field and the size of its features."""

    seed: int = param(0, ge=0, le=2**31 - 1, step=1, label="Seed")
    scale: int = param(256, ge=8, le=2048, step=8, label="Feature size",
                       doc="distance (px) between the field's random control points; larger = smoother")

    def __post_init__(self) -> None:
        check_params(self)


def _smooth_noise(height: int, width: int, scale: int, rng: np.random.Generator) -> np.ndarray:
    """(H, W) float32 in [0, 1]: uniform noise on a grid `scale` apart, bicubically upsampled, with a
    margin cropped off (so the field has no edge effects) and stretched to fill [0, 1]."""
    grid = rng.uniform(0.0, 1.0, size=(height // scale + 2, width // scale + 2)).astype(np.float32)
    noise = cv2.resize(grid, (width + 2 * scale, height + 2 * scale), interpolation=cv2.INTER_CUBIC)
    noise = noise[scale:scale + height, scale:scale + width]
    low, span = float(noise.min()), float(noise.max() - noise.min())
    return (noise - low) / span if span > 0 else np.full_like(noise, 0.5)


def shuffle(image: np.ndarray, params: ShuffleParams = ShuffleParams()) -> np.ndarray:
    """ControlNet 1.1's content shuffle (Zhang et al. 2023, `ContentShuffleDetector`): every output
    pixel reads the input at an absolute position given by two smooth random fields spanning the
    whole image, sampled bilinearly."""
    rgb = to_rgb8(image)
    h, w = rgb.shape[:2]
    rng = np.random.default_rng(params.seed)
    map_x = _smooth_noise(h, w, params.scale, rng) * float(w - 1)  # (H, W) source columns
    map_y = _smooth_noise(h, w, params.scale, rng) * float(h - 1)  # (H, W) source rows
    return np.ascontiguousarray(cv2.remap(rgb, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
