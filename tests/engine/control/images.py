"""Test images for the control preprocessors: the astronaut photo, synthetic shapes and a hand-made
pose."""

from __future__ import annotations

import numpy as np
from skimage import data

from engine.control.pose import BODY_POINTS, Keypoint, PoseKeypoints

STICK_FIGURE: dict[str, tuple[float, float]] = {  # on a 128 x 128 canvas; no legs below the hips
    "nose": (64, 20), "neck": (64, 40), "right_shoulder": (44, 40), "right_elbow": (34, 64), "right_wrist": (30, 88),
    "left_shoulder": (84, 40), "left_elbow": (94, 64), "left_wrist": (98, 88), "right_hip": (54, 90),
    "left_hip": (74, 90),
}


def astronaut() -> np.ndarray:
    """A real 512x512 RGB photo of a person, head and shoulders (NASA, public domain)."""
    return data.astronaut()


def square(size: int = 128, level: int = 200, background: int = 0) -> np.ndarray:
    """A flat square at [32, 96) on a flat background, (size, size, 3) uint8."""
    rgb = np.full((size, size, 3), background, np.uint8)
    rgb[32:96, 32:96] = level
    return rgb


def blocks(colors: np.ndarray, block: int, grid: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A (grid[0] * block, grid[1] * block, 3) image of flat blocks, each a random one of `colors`."""
    rng = np.random.default_rng(seed)
    index = rng.integers(len(colors), size=grid)
    return np.ascontiguousarray(np.kron(colors[index], np.ones((block, block, 1))).astype(np.uint8))


def stick_figure(size: int = 128) -> tuple[PoseKeypoints, ...]:
    """One hand-made person (STICK_FIGURE scaled to a size x size canvas): pose maps without a detector."""
    body: list[Keypoint | None] = [None] * len(BODY_POINTS)
    for name, (x, y) in STICK_FIGURE.items():
        body[BODY_POINTS.index(name)] = Keypoint(x * size / 128, y * size / 128, 0.9)
    return (PoseKeypoints(tuple(body)),)
