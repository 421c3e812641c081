"""ControlNet conditioning maps derived from a scene, aligned with render(scene, size): edges,
a seeded hand-drawn-looking scribble, and a flat per-class segmentation map."""

from __future__ import annotations

import cv2
import numpy as np

from engine.data.palette import SEGMENTATION_COLOURS, SHAPE_CLASSES
from engine.data.render import Raster, raster_for
from engine.data.scene import Scene, outline

# Scribble geometry at 128 px, scaled with the render size.
SCRIBBLE_WOBBLE_PX = 0.8  # amplitude of each of the three sinusoids along the outline
SCRIBBLE_SHIFT_PX = 0.4  # standard deviation of a whole-stroke offset
SCRIBBLE_WIDTH_PX = 2.0
SCRIBBLE_FULL_WOBBLE_SIZE = 0.13  # Shape.size from which the wobble is full
_SHIFT = 4


def _grey_to_rgb(mask: np.ndarray) -> np.ndarray:
    return np.repeat((mask.astype(np.uint8) * 255)[..., None], 3, axis=2)


def edge_map(scene: Scene, size: int = 128, *, raster: Raster | None = None) -> np.ndarray:
    """Outlines of the visible parts of shapes: white 1-px lines on black, (H, W, 3) uint8.
    A pixel is an edge where its shape is in front of a 4-neighbour (background counts as
    behind everything), so lines lie on the inner rim of each visible region."""
    ids = raster_for(scene, size, raster).instance_ids
    edge = np.zeros(ids.shape, bool)
    edge[:, :-1] |= ids[:, :-1] > ids[:, 1:]
    edge[:, 1:] |= ids[:, 1:] > ids[:, :-1]
    edge[:-1, :] |= ids[:-1, :] > ids[1:, :]
    edge[1:, :] |= ids[1:, :] > ids[:-1, :]
    return _grey_to_rgb(edge)


def segmentation_map(scene: Scene, size: int = 128, *, raster: Raster | None = None) -> np.ndarray:
    """Each pixel in the fixed colour of the class of its topmost shape (palette.
    SEGMENTATION_COLOURS), background black, (H, W, 3) uint8; no anti-aliasing."""
    ids = raster_for(scene, size, raster).instance_ids
    lut = np.zeros((len(scene.shapes) + 1, 3), np.uint8)  # row 0: background
    for i, shape in enumerate(scene.shapes):
        lut[i + 1] = SEGMENTATION_COLOURS[shape.cls]
    return lut[ids.astype(np.intp) + 1]


def segmentation_class_ids(segmentation: np.ndarray) -> np.ndarray:
    """Inverse of the segmentation palette: (H, W) int64 class ids, -1 for background; raises
    on a colour outside the palette."""
    if segmentation.ndim != 3 or segmentation.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) map, got shape {segmentation.shape}")
    out = np.full(segmentation.shape[:2], -2, np.int64)
    out[(segmentation == 0).all(axis=2)] = -1
    for cls, rgb in SEGMENTATION_COLOURS.items():
        out[(segmentation == rgb).all(axis=2)] = SHAPE_CLASSES.index(cls)
    if (out == -2).any():
        raise ValueError("segmentation map holds colours outside the segmentation palette")
    return out


def _wobbly_stroke(contour: np.ndarray, scale: float, wobble_px: float, rng: np.random.Generator) -> np.ndarray:
    """A closed outline (K, 2) in pixels redrawn as an open, wobbly hand-drawn path (N, 2)."""
    closed = np.concatenate([contour, contour[:1]])
    seg = np.hypot(*np.diff(closed, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    length = cum[-1]
    n = max(16, int(length / (1.0 * scale)))
    # Start anywhere; overshoot past the start or stop just short of it, as a hand does.
    start = rng.uniform(0.0, length)
    extent = length * (1.0 + rng.uniform(-0.04, 0.1))
    s = start + np.linspace(0.0, extent, n)
    pts = np.stack([np.interp(s % length, cum, closed[:, i]) for i in range(2)], axis=1)
    tangent = np.gradient(pts, axis=0)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    normal /= np.maximum(np.hypot(*normal.T), 1e-9)[:, None]
    u = (s - start) / length  # 0 .. ~1 along the stroke
    freq = rng.integers(2, 7, size=3)
    amp = rng.uniform(0.4, 1.0, size=3) * wobble_px
    phase = rng.uniform(0.0, 2 * np.pi, size=3)
    wobble = (amp[:, None] * np.sin(2 * np.pi * freq[:, None] * u + phase[:, None])).sum(axis=0)
    wobble += rng.uniform(-1.0, 1.0) * wobble_px * u  # drift: ends don't meet
    offset = rng.normal(0.0, SCRIBBLE_SHIFT_PX * scale, size=2)
    return pts + normal * wobble[:, None] + offset


def scribble_map(
    scene: Scene, rng: np.random.Generator, size: int = 128, *, raster: Raster | None = None
) -> np.ndarray:
    """Hand-drawn-looking strokes along the visible outlines (wobble, offset, overshoot drawn
    from `rng`): white on black, (H, W, 3) uint8. Shapes are drawn back to front, each one's
    interior erasing the strokes it hides."""
    r = raster_for(scene, size, raster)
    scale = size / 128
    width = max(1, int(round(SCRIBBLE_WIDTH_PX * scale)))
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    canvas = np.zeros((size, size), np.uint8)
    for shape, cov in zip(scene.shapes, r.coverage):
        if cov.alpha.size:
            solid = (cov.alpha >= 128).astype(np.uint8)
            inside = cv2.erode(solid, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
            canvas[cov.slices][inside.astype(bool)] = 0
        # Small shapes wobble less, so a little ring still reads as a ring.
        wobble_px = SCRIBBLE_WOBBLE_PX * scale * min(1.0, shape.size / SCRIBBLE_FULL_WOBBLE_SIZE)
        for contour in outline(shape):
            path = _wobbly_stroke(contour * size - 0.5, scale, wobble_px, rng)  # -0.5: cv2 pixel centres
            pts = np.round(path * (1 << _SHIFT)).astype(np.int32)
            cv2.polylines(canvas, [pts], False, 255, width, cv2.LINE_8, _SHIFT)
    return _grey_to_rgb(canvas > 0)
