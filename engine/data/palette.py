"""Named colours and shape classes of the shapes world, CIE Lab conversion and the
nearest-named-colour judge."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SHAPE_CLASSES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "star",
    "ring",
    "cross",
    "heart",
    "diamond",
)

# Chosen so every pair is at least ~41 apart in CIE Lab (deltaE 1976): the judge below
# cannot confuse them, even through anti-aliasing and mild noise. Order defines colour ids.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (250, 140, 20),
    "yellow": (250, 220, 40),
    "green": (40, 160, 60),
    "cyan": (40, 200, 220),
    "blue": (20, 100, 235),
    "purple": (150, 30, 160),
    "pink": (250, 140, 200),
    "brown": (120, 70, 30),
    "white": (245, 245, 245),
    "gray": (128, 128, 128),
    "black": (20, 20, 20),
}
COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)

# Flat colour per class in segmentation maps (background is black); distinct from black
# and from each other (Trubetskoy's "20 distinct colours", first eight).
SEGMENTATION_COLOURS: dict[str, tuple[int, int, int]] = {
    "circle": (230, 25, 75),
    "square": (60, 180, 75),
    "triangle": (255, 225, 25),
    "star": (0, 130, 200),
    "ring": (245, 130, 48),
    "cross": (145, 30, 180),
    "heart": (70, 240, 240),
    "diamond": (240, 50, 230),
}

_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])
_SRGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 255] (..., 3) to CIE L*a*b* (D65) (..., 3), float64."""
    a = np.asarray(rgb, dtype=np.float64) / 255.0
    if a.shape[-1:] != (3,):
        raise ValueError(f"rgb must have a last axis of 3, got shape {a.shape}")
    lin = np.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4)
    xyz = (lin @ _SRGB_TO_XYZ.T) / _WHITE_D65
    eps = (6 / 29) ** 3
    f = np.where(xyz > eps, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


_PALETTE_LAB = rgb_to_lab(np.array(list(COLOURS.values()), dtype=np.float64))
_PALETTE_LAB.setflags(write=False)


def colour_ids_of(rgb: np.ndarray) -> np.ndarray:
    """Index into COLOUR_NAMES of the nearest named colour (Lab distance) for each (..., 3) RGB."""
    lab = rgb_to_lab(rgb)
    dist = np.linalg.norm(lab[..., None, :] - _PALETTE_LAB, axis=-1)  # (..., n_colours)
    return dist.argmin(axis=-1)


def colour_of(rgb: Sequence[float] | np.ndarray) -> str:
    """Name of the named colour nearest to one RGB triple in [0, 255] (CIE Lab, deltaE 1976)."""
    arr = np.asarray(rgb, dtype=np.float64)
    if arr.shape != (3,):
        raise ValueError(f"colour_of expects one RGB triple, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 255:
        raise ValueError(f"RGB values must lie in [0, 255], got {arr.tolist()}")
    return COLOUR_NAMES[int(colour_ids_of(arr))]


def lab_distances_to_background(start: str, end: str | None, steps: int = 17) -> np.ndarray:
    """Smallest Lab distance from each named colour (COLOUR_NAMES order) to any colour of a
    flat or sRGB-linear gradient background running from `start` to `end`."""
    c0 = np.array(COLOURS[start], dtype=np.float64)
    c1 = c0 if end is None else np.array(COLOURS[end], dtype=np.float64)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    ramp = rgb_to_lab(c0 + (c1 - c0) * t)  # (steps, 3)
    return np.linalg.norm(_PALETTE_LAB[:, None, :] - ramp[None], axis=-1).min(axis=1)  # (n_colours,)
