"""Pasting an (edited) aligned face crop back into its photo: inverse warp, a soft edge, colour
matching in Lab and an alpha blend."""

from __future__ import annotations

import cv2
import numpy as np

from engine.face.align import AlignedFace
from engine.face.similarity import apply_affine
from engine.imaging import to_rgb8


def soft_mask(size: int, feather: float) -> np.ndarray:
    """A (size, size) float32 alpha for a crop: 1 inside, easing to 0 at the crop's edge over a
    band `feather` x size wide (the footprint eroded and blurred, as a separable smoothstep ramp),
    so the crop's border never shows."""
    if not 0.0 < feather <= 0.5:
        raise ValueError(f"feather must be in (0, 0.5] (a fraction of the crop side), got {feather}")
    band = feather * size
    # Distance of each pixel centre from the nearer crop edge; the outermost pixels sit half a
    # pixel in and get alpha ~0.
    edge = np.minimum(np.arange(size) + 0.5, size - 0.5 - np.arange(size))
    t = np.clip((edge - 0.5) / band, 0.0, 1.0)
    ramp = t * t * (3.0 - 2.0 * t)  # smoothstep: no visible crease where the band starts
    return np.outer(ramp, ramp).astype(np.float32)


def paste_back(original: np.ndarray, aligned: AlignedFace, crop: np.ndarray, *, feather: float = 0.1,
               colour_match: bool = True) -> np.ndarray:
    """`original` (any layout to_rgb8 takes, the image `aligned` came from) with `crop` (the
    aligned crop, possibly edited) warped back into place through a soft mask: (H, W, 3) uint8 RGB.
    With `colour_match` the crop's Lab mean and spread under the mask are matched to the
    original's first, so an edit that drifted in colour leaves no seam."""
    original = to_rgb8(original)
    crop = to_rgb8(crop)
    size = aligned.size
    if crop.shape != (size, size, 3):
        raise ValueError(f"the crop must be {size}x{size} like the aligned face, got {crop.shape[1]}x{crop.shape[0]}")
    if original.shape[:2] != aligned.image_shape:
        h, w = aligned.image_shape
        raise ValueError(f"the face was aligned in a {w}x{h} image, not this "
                         f"{original.shape[1]}x{original.shape[0]} one")
    roi = _footprint_box(aligned, original.shape)
    if roi is None:
        return original.copy()
    x0, y0, x1, y1 = roi
    matrix = _roi_matrix(aligned, roi)
    back = cv2.warpAffine(crop.astype(np.float32), matrix, (x1 - x0, y1 - y0),
                          flags=cv2.WARP_INVERSE_MAP | cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    alpha = _roi_alpha(aligned, roi, feather)
    region = original[y0:y1, x0:x1].astype(np.float32)
    back = np.clip(back, 0.0, 255.0)
    if colour_match:
        back = match_colour(back, region, alpha)
    blended = region + alpha[:, :, None] * (back - region)
    out = original.copy()
    out[y0:y1, x0:x1] = np.round(blended).astype(np.uint8)
    return out


def pasted_alpha(aligned: AlignedFace, feather: float = 0.1) -> np.ndarray:
    """The (H, W) float32 weight paste_back gives the crop at each pixel of the original: 0 outside
    the crop's soft footprint, where the original's pixels stay exactly as they were."""
    alpha = np.zeros(aligned.image_shape, np.float32)
    roi = _footprint_box(aligned, aligned.image_shape)
    if roi is not None:
        x0, y0, x1, y1 = roi
        alpha[y0:y1, x0:x1] = _roi_alpha(aligned, roi, feather)
    return alpha


def _roi_matrix(aligned: AlignedFace, roi: tuple[int, int, int, int]) -> np.ndarray:
    """The forward matrix from the ROI's pixels to the crop's: with WARP_INVERSE_MAP every ROI pixel
    samples the crop where it lands, no matrix inversion needed."""
    matrix = aligned.matrix.copy()
    matrix[:, 2] += matrix[:, :2] @ np.array(roi[:2], dtype=np.float64)
    return matrix


def _roi_alpha(aligned: AlignedFace, roi: tuple[int, int, int, int], feather: float) -> np.ndarray:
    """The crop's soft mask warped onto the ROI: (y1 - y0, x1 - x0) float32."""
    x0, y0, x1, y1 = roi
    return cv2.warpAffine(soft_mask(aligned.size, feather), _roi_matrix(aligned, roi), (x1 - x0, y1 - y0),
                          flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0.0)


def _footprint_box(aligned: AlignedFace, shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """The integer box (x0, y0, x1, y1) of the image the crop covers, or None if none of it."""
    lo, hi = -0.5, aligned.size - 0.5
    corners = apply_affine(aligned.inverse, np.array([[lo, lo], [hi, lo], [hi, hi], [lo, hi]]))
    h, w = shape[:2]
    x0, y0 = np.floor(corners.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 2
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    return (int(x0), int(y0), int(x1), int(y1)) if x1 > x0 and y1 > y0 else None


def match_colour(source: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """`source` (h, w, 3) float RGB in [0, 255] with each Lab channel's weighted mean and standard
    deviation moved to `target`'s (Reinhard et al. 2001, "Color Transfer between Images"); a flat
    source channel only has its mean moved, since it has no spread to scale."""
    if weights.sum() <= 0:
        return source
    w = (weights / weights.sum()).astype(np.float64)[:, :, None]
    src_lab = cv2.cvtColor((source / 255.0).astype(np.float32), cv2.COLOR_RGB2Lab).astype(np.float64)
    dst_lab = cv2.cvtColor((target / 255.0).astype(np.float32), cv2.COLOR_RGB2Lab).astype(np.float64)
    src_mean, dst_mean = (w * src_lab).sum(axis=(0, 1)), (w * dst_lab).sum(axis=(0, 1))
    src_std = np.sqrt((w * (src_lab - src_mean) ** 2).sum(axis=(0, 1)))
    dst_std = np.sqrt((w * (dst_lab - dst_mean) ** 2).sum(axis=(0, 1)))
    gain = np.where(src_std > 1e-6, dst_std / np.maximum(src_std, 1e-6), 1.0)
    lab = (src_lab - src_mean) * gain + dst_mean
    rgb = cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_Lab2RGB)
    return np.clip(rgb * 255.0, 0.0, 255.0)
