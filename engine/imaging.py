"""Image arrays as the vision tools take them: any common layout in, (H, W, 3) uint8 RGB out, and
the downscale-for-analysis step whose factor maps results back to the original pixels."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


class ImageFormatError(ValueError):
    """An array that is not an image this project can read (shape, channels or dtype)."""


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) in uint8, uint16, bool or float [0, 1] ->
    contiguous (H, W, 3) uint8 RGB. Alpha is composited over black (what a transparent pixel
    shows an analysis: nothing); 16-bit values are scaled, not clipped."""
    if not isinstance(image, np.ndarray):
        raise ImageFormatError(f"expected a numpy image array, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ImageFormatError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ImageFormatError(f"empty image of shape {image.shape}")
    scaled = _to_unit_float(image) if image.dtype != np.uint8 else None
    if scaled is not None:
        image = np.round(scaled * 255.0).astype(np.uint8)
    if image.ndim == 2:
        return np.ascontiguousarray(np.repeat(image[:, :, None], 3, axis=2))
    if image.shape[2] == 4:
        alpha = image[:, :, 3:4].astype(np.uint16)
        return np.ascontiguousarray(((image[:, :, :3].astype(np.uint16) * alpha + 127) // 255).astype(np.uint8))
    return np.ascontiguousarray(image)


def _to_unit_float(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.bool_:
        return image.astype(np.float32)
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0
    if np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all():
            raise ImageFormatError("image has NaN or infinite values")
        if image.min() < 0.0 or image.max() > 1.0:
            raise ImageFormatError(f"float image values must lie in [0, 1], got [{image.min():g}, {image.max():g}]")
        return image.astype(np.float32)
    raise ImageFormatError(f"unsupported image dtype {image.dtype} (use uint8, uint16, bool or float in [0, 1])")


@dataclass(frozen=True)
class Downscaled:
    """An image shrunk for analysis; `scale` maps its pixel coordinates back (original = x * scale)."""

    image: np.ndarray  # (h, w, 3) uint8
    scale: float


def downscale_for_analysis(image: np.ndarray, max_side: int) -> Downscaled:
    """Shrink `image` (already RGB uint8) so its longer side is at most `max_side` (area filter);
    images that fit are returned as they are with scale 1."""
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    h, w = image.shape[:2]
    longest = max(h, w)
    if longest <= max_side:
        return Downscaled(image, 1.0)
    factor = max_side / longest
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return Downscaled(small, w / size[0])
