"""Rasterising scenes: anti-aliased coverage by supersampling (polygons sampled at k x k points
per pixel, box-filtered down with cv2 INTER_AREA), the composited image, the hard instance map
and labels."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.data.palette import COLOURS
from engine.data.scene import Background, Scene, Shape, outline

SUPERSAMPLE = 4
MIN_RENDER_SIZE, MAX_RENDER_SIZE = 16, 4096
# A shape whose visible share of its own area is below this is "hidden": captions leave it
# out and detectors should not be trained on it. The sampler keeps every shape well above.
VISIBLE_THRESHOLD = 0.5


@dataclass(frozen=True)
class Coverage:
    """Anti-aliased coverage of one shape: uint8 (h, w) in [0, 255] placed at (y0, x0)."""

    y0: int
    x0: int
    alpha: np.ndarray  # (h, w) uint8

    @property
    def slices(self) -> tuple[slice, slice]:
        h, w = self.alpha.shape
        return slice(self.y0, self.y0 + h), slice(self.x0, self.x0 + w)


@dataclass(frozen=True)
class Raster:
    """A scene rasterised at one size: per-shape coverage and the hard instance map
    (index of the topmost shape covering each pixel at least half, -1 for background)."""

    scene: Scene
    size: int
    coverage: tuple[Coverage, ...]
    instance_ids: np.ndarray  # (H, W) int16


@dataclass(frozen=True)
class Label:
    """Detection label of one shape at one render size.

    box: tight (x0, y0, x1, y1) pixel-edge box of the shape's visible pixels (those where it is
    the topmost shape covering at least half the pixel); full_box: the same for the whole
    shape, ignoring occlusion. visible_fraction: visible share of the shape's own area."""

    index: int
    box: tuple[float, float, float, float]
    full_box: tuple[float, float, float, float]
    cls: int
    colour: int
    visible_fraction: float

    @property
    def visible(self) -> bool:
        return self.visible_fraction >= VISIBLE_THRESHOLD


def check_size(size: int) -> None:
    """Raise ValueError unless `size` is a supported render side length."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise TypeError(f"size must be an int, got {type(size).__name__}")
    if not MIN_RENDER_SIZE <= size <= MAX_RENDER_SIZE:
        raise ValueError(f"size must lie in [{MIN_RENDER_SIZE}, {MAX_RENDER_SIZE}], got {size}")


def fill_mask(contours: list[np.ndarray], height: int, width: int) -> np.ndarray:
    """Even-odd fill of polygons given in pixel units (pixel edges at integers): uint8
    (height, width), 1 where the pixel centre lies inside. Unlike cv2.fillPoly, which also
    fills every pixel an edge touches (about one pixel too wide), this samples centres only."""
    start = np.concatenate(contours)  # (E, 2)
    end = np.concatenate([np.roll(c, -1, axis=0) for c in contours])
    (x0, y0), (x1, y1) = start.T, end.T
    keep = y0 != y1
    x0, y0, x1, y1 = x0[keep], y0[keep], x1[keep], y1[keep]
    lo, hi = np.minimum(y0, y1), np.maximum(y0, y1)
    # An edge crosses the rows whose centre r + 0.5 lies in [lo, hi): half-open, so a vertex
    # shared by two edges is crossed once.
    r0 = np.clip(np.ceil(lo - 0.5), 0, height).astype(np.int64)
    r1 = np.clip(np.ceil(hi - 0.5), 0, height).astype(np.int64)
    n = r1 - r0
    edge = np.repeat(np.arange(n.size), n)
    rows = np.arange(edge.size) - np.repeat(np.cumsum(n) - n, n) + r0[edge]
    xs = x0[edge] + (rows + 0.5 - y0[edge]) * ((x1 - x0) / (y1 - y0))[edge]
    cols = np.clip(np.ceil(xs - 0.5), 0, width).astype(np.int64)  # first centre right of it
    toggles = np.bincount(rows * (width + 1) + cols, minlength=height * (width + 1))
    inside = np.cumsum(toggles.reshape(height, width + 1), axis=1)[:, :width] & 1
    return inside.astype(np.uint8)


def shape_coverage(shape: Shape, size: int, supersample: int = SUPERSAMPLE) -> Coverage:
    """Coverage of one shape at `size` px, within the pixel box that bounds its outline:
    the share of supersample x supersample sample points per pixel that lie inside."""
    contours = [c * size for c in outline(shape)]  # pixel units, pixel edges at integers
    pts = np.concatenate(contours)
    x0 = max(int(np.floor(pts[:, 0].min())), 0)
    y0 = max(int(np.floor(pts[:, 1].min())), 0)
    x1 = min(int(np.ceil(pts[:, 0].max())), size)
    y1 = min(int(np.ceil(pts[:, 1].max())), size)
    if x1 <= x0 or y1 <= y0:
        return Coverage(0, 0, np.zeros((0, 0), np.uint8))
    k = supersample
    mask = fill_mask([(c - (x0, y0)) * k for c in contours], (y1 - y0) * k, (x1 - x0) * k)
    mask *= 255
    if k > 1:
        mask = cv2.resize(mask, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    return Coverage(y0, x0, mask)


def rasterise(scene: Scene, size: int = 128) -> Raster:
    """Coverage of every shape and the hard instance map of `scene` at `size` x `size`."""
    check_size(size)
    coverage = tuple(shape_coverage(s, size) for s in scene.shapes)
    ids = np.full((size, size), -1, np.int16)
    for i, cov in enumerate(coverage):
        ids[cov.slices][cov.alpha >= 128] = i
    ids.setflags(write=False)
    return Raster(scene, size, coverage, ids)


def raster_for(scene: Scene, size: int, raster: Raster | None) -> Raster:
    if raster is None:
        return rasterise(scene, size)
    if raster.scene != scene or raster.size != size:
        raise ValueError(f"raster was made for another scene or size ({raster.size}), expected size {size}")
    return raster


def render_background(background: Background, size: int) -> np.ndarray:
    """The background as float32 (size, size, 3) RGB in [0, 255]."""
    c0 = np.array(COLOURS[background.colour], np.float32)
    if background.colour2 is None:
        return np.broadcast_to(c0, (size, size, 3)).copy()
    c1 = np.array(COLOURS[background.colour2], np.float32)
    t = (np.arange(size, dtype=np.float32) + 0.5) / size  # pixel centres
    if background.direction == "vertical":
        tt = np.broadcast_to(t[:, None], (size, size))
    elif background.direction == "horizontal":
        tt = np.broadcast_to(t[None, :], (size, size))
    else:
        tt = (t[:, None] + t[None, :]) * 0.5
    return c0 + (c1 - c0) * tt[..., None]


def render(scene: Scene, size: int = 128, *, raster: Raster | None = None) -> np.ndarray:
    """The scene as uint8 (size, size, 3) RGB, anti-aliased by 4x4 supersampling."""
    r = raster_for(scene, size, raster)
    img = render_background(scene.background, size)
    for shape, cov in zip(scene.shapes, r.coverage):
        if cov.alpha.size == 0:
            continue
        a = cov.alpha.astype(np.float32)[..., None] * np.float32(1 / 255)
        region = img[cov.slices]
        region += (np.array(COLOURS[shape.colour], np.float32) - region) * a
    return np.rint(img).astype(np.uint8)


def visible_fractions(raster: Raster) -> tuple[float, ...]:
    """For each shape, the share of its own (soft) area that no later shape covers."""
    out = []
    covs = raster.coverage
    for i, cov in enumerate(covs):
        own = cov.alpha.astype(np.float32) * np.float32(1 / 255)
        total = float(own.sum())
        if total == 0.0:
            out.append(0.0)
            continue
        left = own.copy()
        for later in covs[i + 1 :]:
            _occlude(left, cov, later)
        out.append(float(left.sum()) / total)
    return tuple(out)


def _occlude(left: np.ndarray, cov: Coverage, later: Coverage) -> None:
    """Multiply `left` (laid out like `cov`) by (1 - coverage of `later`) where they overlap."""
    (ly, lx), (lh, lw) = (later.y0, later.x0), later.alpha.shape
    (h, w) = cov.alpha.shape
    y0, y1 = max(cov.y0, ly), min(cov.y0 + h, ly + lh)
    x0, x1 = max(cov.x0, lx), min(cov.x0 + w, lx + lw)
    if y1 <= y0 or x1 <= x0:
        return
    other = later.alpha[y0 - ly : y1 - ly, x0 - lx : x1 - lx].astype(np.float32) * np.float32(1 / 255)
    left[y0 - cov.y0 : y1 - cov.y0, x0 - cov.x0 : x1 - cov.x0] *= 1.0 - other


def _tight_box(mask: np.ndarray, y0: int, x0: int) -> tuple[float, float, float, float] | None:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return (float(x0 + cols[0]), float(y0 + rows[0]), float(x0 + cols[-1] + 1), float(y0 + rows[-1] + 1))


def labels(scene: Scene, size: int = 128, *, raster: Raster | None = None) -> list[Label]:
    """One Label per shape in draw order; hidden shapes are kept and marked by `visible`.
    A shape with no visible pixel gets its full box as `box` (and visible_fraction ~ 0)."""
    r = raster_for(scene, size, raster)
    fractions = visible_fractions(r)
    out = []
    for i, (shape, cov) in enumerate(zip(scene.shapes, r.coverage)):
        full = _tight_box(cov.alpha >= 128, cov.y0, cov.x0)
        if full is None:  # thinner than half a pixel everywhere: nothing to detect
            full = (float(cov.x0), float(cov.y0), float(cov.x0), float(cov.y0))
        box = _tight_box(r.instance_ids[cov.slices] == i, cov.y0, cov.x0) or full
        out.append(Label(i, box, full, shape.class_id, shape.colour_id, fractions[i]))
    return out
