"""Seeded sampling of shapes-world scenes: backgrounds, 1-4 shapes placed in clear 3x3 grid
cells, colours that stand out from the background, overlaps that leave every shape visible."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from engine.data.palette import COLOUR_NAMES, SHAPE_CLASSES, lab_distances_to_background
from engine.data.render import shape_coverage
from engine.data.scene import (
    GRADIENT_DIRECTIONS,
    ROTATION_LIMITS,
    SIZE_BANDS,
    Background,
    Scene,
    Shape,
    outline,
    size_word,
)

MAX_SHAPES = 4
GRADIENT_PROBABILITY = 0.5
# Lab distance a shape's colour keeps from every colour of its background (flat or gradient).
MIN_BACKGROUND_CONTRAST = 30.0
MIN_ALLOWED_COLOURS = 4
# A centre stays this far (image fractions) from 3x3 cell borders, so position words are
# unambiguous, and outlines stay this far inside the frame.
CELL_MARGIN = 0.03
FRAME_MARGIN = 0.01
# Every sampled shape keeps at least this share of its area visible (measured at
# VISIBILITY_SIZE), comfortably above render.VISIBLE_THRESHOLD.
MIN_SAMPLED_VISIBLE = 0.6
VISIBILITY_SIZE = 128
PLACEMENT_ATTEMPTS = 16
# Chance that a shape repeats the class, colour and size band of one already placed, so
# captions often count ("two small red stars").
REPEAT_PROBABILITY = 0.15
# Same-coloured shapes stay at least this many pixels apart at VISIBILITY_SIZE.
SAME_COLOUR_GAP_PX = 2


def allowed_colours(background: Background) -> tuple[str, ...]:
    """Named colours that differ clearly (Lab) from every colour of the background."""
    dist = lab_distances_to_background(background.colour, background.colour2)
    return tuple(c for c, d in zip(COLOUR_NAMES, dist) if d >= MIN_BACKGROUND_CONTRAST)


def sample_background(rng: np.random.Generator) -> Background:
    """A flat or gradient background leaving at least MIN_ALLOWED_COLOURS shape colours."""
    while True:
        if rng.random() < GRADIENT_PROBABILITY:
            i, j = rng.choice(len(COLOUR_NAMES), size=2, replace=False)
            direction = GRADIENT_DIRECTIONS[int(rng.integers(len(GRADIENT_DIRECTIONS)))]
            bg = Background(COLOUR_NAMES[int(i)], COLOUR_NAMES[int(j)], direction)
        else:
            bg = Background(COLOUR_NAMES[int(rng.integers(len(COLOUR_NAMES)))])
        if len(allowed_colours(bg)) >= MIN_ALLOWED_COLOURS:
            return bg


def _centre_range(cell: int, lo_extent: float, hi_extent: float) -> tuple[float, float]:
    """Interval of centres inside grid cell `cell` (0..2) keeping the outline in frame."""
    lo = max(cell / 3 + CELL_MARGIN, FRAME_MARGIN - lo_extent)
    hi = min((cell + 1) / 3 - CELL_MARGIN, 1 - FRAME_MARGIN - hi_extent)
    return lo, hi


def sample_shape(rng: np.random.Generator, colours: tuple[str, ...], like: Shape | None = None) -> Shape | None:
    """One shape of random class, colour, size band, rotation and grid cell (class, colour and
    size band copied from `like` if given); None when that size and rotation cannot fit the
    drawn cell (the caller draws again)."""
    if like is None:
        cls = SHAPE_CLASSES[int(rng.integers(len(SHAPE_CLASSES)))]
        colour = colours[int(rng.integers(len(colours)))]
        lo, hi = tuple(SIZE_BANDS.values())[int(rng.integers(len(SIZE_BANDS)))]
    else:
        cls, colour, (lo, hi) = like.cls, like.colour, SIZE_BANDS[size_word(like.size)]
    size = float(rng.uniform(lo, hi))
    limit = ROTATION_LIMITS[cls]
    rotation = float(rng.uniform(-limit, limit)) if limit > 0 else 0.0
    row, col = int(rng.integers(3)), int(rng.integers(3))
    probe = np.concatenate(outline(Shape(cls, colour, 0.5, 0.5, size, rotation))) - 0.5
    (xmin, ymin), (xmax, ymax) = probe.min(axis=0), probe.max(axis=0)
    xlo, xhi = _centre_range(col, xmin, xmax)
    ylo, yhi = _centre_range(row, ymin, ymax)
    u, v = float(rng.random()), float(rng.random())  # drawn before any early return: fixed stream
    if xhi < xlo or yhi < ylo:
        return None
    return Shape(cls, colour, xlo + u * (xhi - xlo), ylo + v * (yhi - ylo), size, rotation)


def _full_canvas(shape: Shape, size: int) -> np.ndarray:
    cov = shape_coverage(shape, size)
    canvas = np.zeros((size, size), np.float32)
    canvas[cov.slices] = cov.alpha * np.float32(1 / 255)
    return canvas


@dataclass
class _Placed:
    """Shapes placed so far, with their coverage at VISIBILITY_SIZE (full, and not yet hidden)."""

    shapes: list[Shape] = field(default_factory=list)
    full: list[np.ndarray] = field(default_factory=list)  # each (S, S) float32 in [0, 1]
    left: list[np.ndarray] = field(default_factory=list)
    areas: list[float] = field(default_factory=list)

    def try_add(self, shape: Shape) -> bool:
        """Put `shape` on top unless it touches a shape of its colour or hides too much."""
        new = _full_canvas(shape, VISIBILITY_SIZE)
        same = [f for s, f in zip(self.shapes, self.full) if s.colour == shape.colour]
        if same:
            side = 2 * SAME_COLOUR_GAP_PX + 1
            halo = cv2.dilate(new, np.ones((side, side), np.uint8))
            if any(bool((halo * f).any()) for f in same):
                return False  # touching, same-coloured shapes would read as one blob
        trial = [m * (1.0 - new) for m in self.left]
        if any(float(t.sum()) < MIN_SAMPLED_VISIBLE * a for t, a in zip(trial, self.areas)):
            return False
        self.shapes.append(shape)
        self.full.append(new)
        self.left = trial + [new]
        self.areas.append(float(new.sum()))
        return True


def sample_scene(rng: np.random.Generator) -> Scene:
    """A random scene: background, then 1-4 shapes added on top, each redrawn (up to
    PLACEMENT_ATTEMPTS times, else dropped) until every shape stays MIN_SAMPLED_VISIBLE visible.
    Shape colours contrast with the background; shapes of one colour keep a gap."""
    background = sample_background(rng)
    colours = allowed_colours(background)
    wanted = int(rng.integers(1, MAX_SHAPES + 1))
    placed = _Placed()
    while len(placed.shapes) < wanted:
        shapes = placed.shapes
        like = shapes[int(rng.integers(len(shapes)))] if shapes and rng.random() < REPEAT_PROBABILITY else None
        for _ in range(PLACEMENT_ATTEMPTS):
            shape = sample_shape(rng, colours, like)
            if shape is not None and placed.try_add(shape):
                break
        else:
            if shapes:  # no room for another shape: keep the scene as it is
                break
    return Scene(background, tuple(placed.shapes))


def scene_for_seed(seed: int) -> Scene:
    """The scene of a seed: sample_scene with numpy's PCG64 seeded by `seed` (no global RNG),
    identical across runs and machines."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return sample_scene(np.random.Generator(np.random.PCG64(int(seed))))

