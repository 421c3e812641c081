"""The shapes world's scene description: frozen dataclasses, shape outlines, and the size and
3x3-grid position words that captions use."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from engine.data.palette import COLOURS, SHAPE_CLASSES

GradientDirection = Literal["vertical", "horizontal", "diagonal"]
GRADIENT_DIRECTIONS: tuple[GradientDirection, ...] = ("vertical", "horizontal", "diagonal")

# `Shape.size` is the half-extent of the unrotated outline as a fraction of the image side.
# The sampler draws from three bands with gaps between them, so "small" and "large" are only
# said of shapes that clearly are; SIZE_WORD_LIMITS sit in the gaps.
SIZE_BANDS: dict[str, tuple[float, float]] = {
    "small": (0.065, 0.09),
    "medium": (0.115, 0.145),
    "large": (0.175, 0.21),
}
SIZE_WORD_LIMITS = (0.1025, 0.16)
MIN_SIZE, MAX_SIZE = 0.02, 0.5

# Canonical names of the 3x3 grid cells, row by row; a shape's cell is that of its centre.
POSITIONS: tuple[tuple[str, str, str], ...] = (
    ("top left", "top", "top right"),
    ("left", "centre", "right"),
    ("bottom left", "bottom", "bottom right"),
)
POSITION_NAMES: tuple[str, ...] = tuple(name for row in POSITIONS for name in row)


def _regular(n: int, radius: float, phase: float = -math.pi / 2) -> np.ndarray:
    angles = [phase + 2 * math.pi * i / n for i in range(n)]
    return np.array([[radius * math.cos(a), radius * math.sin(a)] for a in angles])


def _star(points: int, outer: float, inner: float) -> np.ndarray:
    angles = [-math.pi / 2 + math.pi * i / points for i in range(2 * points)]
    radii = [outer if i % 2 == 0 else inner for i in range(2 * points)]
    return np.array([[r * math.cos(a), r * math.sin(a)] for r, a in zip(radii, angles)])


def _cross(arm: float, half_width: float) -> np.ndarray:
    a, w = arm, half_width
    return np.array(
        [[-w, -a], [w, -a], [w, -w], [a, -w], [a, w], [w, w], [w, a], [-w, a], [-w, w], [-a, w], [-a, -w], [-w, -w]]
    )


def _heart(n: int = 96) -> np.ndarray:
    pts = []
    for i in range(n):
        t = 2 * math.pi * i / n
        x = 16 * math.sin(t) ** 3
        y = -(13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t))
        pts.append([x, y])
    arr = np.array(pts)
    lo, hi = arr.min(axis=0), arr.max(axis=0)
    return (arr - (lo + hi) / 2) / ((hi - lo).max() / 2)


def _frozen(*contours: np.ndarray) -> tuple[np.ndarray, ...]:
    for c in contours:
        c.setflags(write=False)
    return contours


# Unit outlines (y points down, unrotated extent about [-1, 1]); several contours fill
# even-odd, which is how the ring gets its hole.
OUTLINES: dict[str, tuple[np.ndarray, ...]] = {
    "circle": _frozen(_regular(96, 1.0)),
    "square": _frozen(_regular(4, 0.82 * math.sqrt(2), phase=-3 * math.pi / 4)),
    "triangle": _frozen(_regular(3, 1.0) + np.array([0.0, 0.25])),
    "star": _frozen(_star(5, 1.0, 0.45)),
    "ring": _frozen(_regular(96, 1.0), _regular(96, 0.55)),
    "cross": _frozen(_cross(0.95, 0.32)),
    "heart": _frozen(_heart()),
    "diamond": _frozen(np.array([[0.0, -1.0], [0.62, 0.0], [0.0, 1.0], [-0.62, 0.0]])),
}

# Rotation range (degrees, symmetric) per class: squares, crosses and diamonds stay near
# upright so a square never turns into a diamond or a cross into an "x".
ROTATION_LIMITS: dict[str, float] = {
    "circle": 0.0,
    "square": 15.0,
    "triangle": 180.0,
    "star": 180.0,
    "ring": 0.0,
    "cross": 15.0,
    "heart": 20.0,
    "diamond": 15.0,
}


@dataclass(frozen=True)
class Background:
    """A flat colour, or a linear gradient from `colour` (top / left / top-left) to `colour2`."""

    colour: str
    colour2: str | None = None
    direction: GradientDirection = "vertical"

    def __post_init__(self) -> None:
        for name in (self.colour, self.colour2):
            if name is not None and name not in COLOURS:
                raise ValueError(f"unknown background colour {name!r}; known: {', '.join(COLOURS)}")
        if self.colour2 == self.colour:
            raise ValueError(f"a gradient needs two different colours, got {self.colour!r} twice")
        if self.direction not in GRADIENT_DIRECTIONS:
            raise ValueError(f"direction must be one of {GRADIENT_DIRECTIONS}, got {self.direction!r}")

    @property
    def is_gradient(self) -> bool:
        return self.colour2 is not None


@dataclass(frozen=True)
class Shape:
    """One filled shape: class, named colour, centre (fractions of the image side, y down),
    size (half-extent as a fraction of the side) and rotation in degrees (clockwise)."""

    cls: str
    colour: str
    cx: float
    cy: float
    size: float
    rotation: float = 0.0

    def __post_init__(self) -> None:
        if self.cls not in OUTLINES:
            raise ValueError(f"unknown shape class {self.cls!r}; known: {', '.join(SHAPE_CLASSES)}")
        if self.colour not in COLOURS:
            raise ValueError(f"unknown colour {self.colour!r}; known: {', '.join(COLOURS)}")
        if not (0.0 <= self.cx <= 1.0 and 0.0 <= self.cy <= 1.0):
            raise ValueError(f"centre must lie in [0, 1]^2, got ({self.cx}, {self.cy})")
        if not MIN_SIZE <= self.size <= MAX_SIZE:
            raise ValueError(f"size must lie in [{MIN_SIZE}, {MAX_SIZE}], got {self.size}")
        if not math.isfinite(self.rotation):
            raise ValueError(f"rotation must be finite, got {self.rotation}")

    @property
    def class_id(self) -> int:
        return SHAPE_CLASSES.index(self.cls)

    @property
    def colour_id(self) -> int:
        return tuple(COLOURS).index(self.colour)


@dataclass(frozen=True)
class Scene:
    """A background and the shapes drawn on it, back to front."""

    background: Background
    shapes: tuple[Shape, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.shapes, tuple):
            raise TypeError(f"shapes must be a tuple, got {type(self.shapes).__name__}")


def outline(shape: Shape) -> tuple[np.ndarray, ...]:
    """The shape's contours in image-fraction coordinates, each (K, 2) as (x, y), y down."""
    theta = math.radians(shape.rotation)
    c, s = math.cos(theta), math.sin(theta)
    out = []
    for unit in OUTLINES[shape.cls]:
        x, y = unit[:, 0] * shape.size, unit[:, 1] * shape.size
        # Elementwise (no matmul/FMA) so vertices are bit-identical across machines.
        out.append(np.stack([x * c - y * s + shape.cx, x * s + y * c + shape.cy], axis=1))
    return tuple(out)


def size_word(size: float) -> str:
    """"small", "medium" or "large" for a Shape.size; captions leave "medium" unsaid."""
    if size < SIZE_WORD_LIMITS[0]:
        return "small"
    if size > SIZE_WORD_LIMITS[1]:
        return "large"
    return "medium"


def grid_cell(cx: float, cy: float) -> tuple[int, int]:
    """(row, column) of the 3x3 grid cell holding a centre given in image fractions."""
    return min(int(cy * 3), 2), min(int(cx * 3), 2)


def position_word(cx: float, cy: float) -> str:
    """Canonical 3x3-grid name ("top left", "centre", ...) of a centre in image fractions."""
    row, col = grid_cell(cx, cy)
    return POSITIONS[row][col]
