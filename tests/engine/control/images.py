"""Test images for the control preprocessors: the astronaut photo and synthetic shapes."""

from __future__ import annotations

import numpy as np
from skimage import data


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
