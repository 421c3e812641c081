"""Segmentation maps by colour clustering: k-means in CIELAB, each cluster painted in a fixed,
distinct palette colour (flat colours, as segmentation ControlNets read them)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.control.params import check_params, param
from engine.imaging import to_rgb8

# Kelly's (1965) colours of maximum contrast, without black (a control layer shows black as empty)
# and without the darkest olive, so every cluster is visible and told apart from its neighbours.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (0xF3, 0xC3, 0x00), (0x87, 0x56, 0x92), (0xF3, 0x84, 0x00), (0xA1, 0xCA, 0xF1), (0xBE, 0x00, 0x32),
    (0xC2, 0xB2, 0x80), (0x84, 0x84, 0x82), (0x00, 0x88, 0x56), (0xE6, 0x8F, 0xAC), (0x00, 0x67, 0xA5),
    (0xF9, 0x93, 0x79), (0x60, 0x4E, 0x97), (0xF6, 0xA6, 0x00), (0xB3, 0x44, 0x6C), (0xDC, 0xD3, 0x00),
    (0x88, 0x2D, 0x17), (0x8D, 0xB6, 0x00), (0x65, 0x45, 0x22), (0xE2, 0x58, 0x22), (0xF2, 0xF3, 0xF4),
)
FIT_PIXELS = 8192  # k-means is fitted on an even grid of at most this many pixels, then every pixel is assigned
MAX_ITERATIONS = 50
CONVERGED = 0.05  # Lab units; a colour difference of 1 is about the smallest visible one


@dataclass(frozen=True)
class SegParams:
    """Number of colour clusters, pre-blur and the seed of the k-means++ start."""

    clusters: int = param(6, ge=2, le=len(PALETTE), step=1, label="Clusters", doc="k, the number of regions")
    blur: float = param(1.5, ge=0.0, le=10.0, step=0.1, label="Blur sigma",
                        doc="Gaussian blur before clustering, against speckle; 0 = none")
    seed: int = param(0, ge=0, le=2**31 - 1, step=1, label="Seed", doc="seed of the k-means++ initialisation")

    def __post_init__(self) -> None:
        check_params(self)


def seg(image: np.ndarray, params: SegParams = SegParams()) -> np.ndarray:
    """Colour segmentation: k-means (Lloyd 1982) with k-means++ seeding (Arthur and Vassilvitskii
    2007) on CIELAB colours, clusters ordered by lightness and painted PALETTE[0], PALETTE[1], ..."""
    rgb = to_rgb8(image)
    if params.blur > 0:
        rgb = cv2.GaussianBlur(rgb, (0, 0), params.blur)
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)  # (H, W, 3), L in [0, 100]
    stride = max(1, int(np.ceil(np.sqrt(lab.shape[0] * lab.shape[1] / FIT_PIXELS))))
    sample = lab[::stride, ::stride].reshape(-1, 3).astype(np.float64)  # (N, 3)
    centers = _kmeans(sample, params.clusters, np.random.default_rng(params.seed))
    centers = centers[np.lexsort(centers.T[::-1])]  # by L, then a, then b: the colours do not depend on the start
    labels = _nearest(lab.reshape(-1, 3), centers.astype(np.float32)).reshape(lab.shape[:2])  # (H, W)
    palette = np.array(PALETTE[: len(centers)], np.uint8)
    return np.ascontiguousarray(palette[labels])


def _nearest(points: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """(N,) index of the nearest centre (squared Euclidean = CIE76 colour difference) of each point;
    |x|^2 is the same for every centre, so only |c|^2 - 2 x.c is compared."""
    return ((centers**2).sum(axis=1)[None, :] - 2.0 * points @ centers.T).argmin(axis=1)  # (N,)


def _kmeans(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """(k', 3) centres, k' <= k (fewer when the points hold fewer than k distinct colours); Lloyd
    iterations until no centre moves by more than CONVERGED (Lab units)."""
    centers = _kmeans_pp(points, k, rng)
    for _ in range(MAX_ITERATIONS):
        labels = _nearest(points, centers)
        counts = np.bincount(labels, minlength=len(centers))  # (k,)
        sums = np.stack([np.bincount(labels, points[:, c], minlength=len(centers)) for c in range(3)], axis=1)
        filled = counts > 0  # an emptied cluster keeps its centre
        moved = centers.copy()
        moved[filled] = sums[filled] / counts[filled, None]
        shift = float(np.abs(moved - centers).max())
        centers = moved
        if shift <= CONVERGED:
            break
    return centers


def _kmeans_pp(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding: each next centre drawn with probability proportional to its squared
    distance from the centres so far; stops early when every point coincides with a centre."""
    chosen = [points[rng.integers(len(points))]]
    nearest = ((points - chosen[0]) ** 2).sum(axis=1)  # (N,)
    while len(chosen) < k:
        total = float(nearest.sum())
        if total <= 0.0:
            break
        pick = points[rng.choice(len(points), p=nearest / total)]
        chosen.append(pick)
        nearest = np.minimum(nearest, ((points - pick) ** 2).sum(axis=1))
    return np.array(chosen, np.float64)
