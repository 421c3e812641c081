"""Face alignment: a similarity warp of the face onto the ArcFace 5-point template (Umeyama
least squares), or FFHQ's oriented-square crop (Karras et al. 2019)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from engine.face.landmarks import FiveLandmarks
from engine.face.similarity import (ARCFACE_112, apply_affine, arcface_template, invert_affine, umeyama,
                                    warp_to_crop)
from engine.imaging import to_rgb8

__all__ = ["ARCFACE_112", "ALIGNERS", "AlignedFace", "align_face", "arcface_matrix", "arcface_template",
           "ffhq_matrix", "umeyama", "warp_to_crop", "with_context"]

# Weights of the five points in the ArcFace fit. The eyes anchor it: iris centres are the most
# precisely found points and the ones a crop must place consistently, while the nose tip and
# mouth corners move with pose and expression. On skimage's astronaut a broad smile puts the
# mouth corners ~10 px (at 112 px) from the template's, and an equal-weight fit pays for that with
# eyes 2.3-2.8 px off the template at 112 px and 10-13 px at 512; with these weights they are
# 0.14 and 0.65 px off. The small weight keeps the fit defined if the eyes coincide.
ARCFACE_WEIGHTS = np.array([1.0, 1.0, 0.01, 0.01, 0.01])
ARCFACE_WEIGHTS.setflags(write=False)
# insightface's own fit (norm_crop): all five points equal, the crops recognition models expect.
EQUAL_WEIGHTS = np.ones(5)
EQUAL_WEIGHTS.setflags(write=False)


@dataclass(frozen=True, eq=False)
class AlignedFace:
    """An aligned face crop: `crop` (size, size, 3) uint8 RGB, `matrix` (2, 3) mapping original
    pixels to crop pixels, `inverse` mapping back, the face's five `landmarks` (5, 2) in crop
    pixels, the `face` found in the original and the original's (height, width)."""

    crop: np.ndarray
    matrix: np.ndarray
    inverse: np.ndarray
    landmarks: np.ndarray
    face: FiveLandmarks
    method: str
    image_shape: tuple[int, int]

    @property
    def size(self) -> int:
        """The crop's side in pixels."""
        return int(self.crop.shape[0])


def arcface_matrix(points: np.ndarray, size: int) -> np.ndarray:
    """The (2, 3) similarity that puts five landmarks (ArcFace order) on the ArcFace template
    scaled to `size`: a weighted Umeyama fit anchored on the eyes (ARCFACE_WEIGHTS)."""
    return umeyama(points, arcface_template(size), weights=ARCFACE_WEIGHTS)


def insightface_matrix(points: np.ndarray, size: int) -> np.ndarray:
    """The (2, 3) similarity of insightface's norm_crop: the plain (equal-weight) Umeyama fit of
    the five landmarks onto the ArcFace template scaled to `size`."""
    return umeyama(points, arcface_template(size), weights=EQUAL_WEIGHTS)


def ffhq_matrix(points: np.ndarray, size: int) -> np.ndarray:
    """The (2, 3) similarity of FFHQ's crop (Karras et al. 2019, "A Style-Based Generator
    Architecture for GANs", ffhq-dataset's recreate_aligned_images): an oriented square centred a
    little below the eyes, turned by the eye line and the eye-to-mouth direction, sized by the
    larger of 2x the eye distance and 1.8x the eye-to-mouth distance, mapped onto the crop. The
    recipe's shrink and blurred-padding steps are warp_to_crop's area shrink and mirrored border."""
    eye_left, eye_right, _, mouth_left, mouth_right = np.asarray(points, dtype=np.float64)
    eye_avg = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = (mouth_left + mouth_right) * 0.5 - eye_avg
    # The square's half-side vector x runs along the eye line, bent by the face's vertical axis.
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1.0, 1.0]
    norm = np.hypot(*x)
    if norm < 1e-9:
        raise ValueError("the landmarks are degenerate: no face orientation is defined")
    x = x / norm * max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1.0, 1.0]
    c = eye_avg + eye_to_mouth * 0.1
    quad = np.stack([c - x - y, c - x + y, c + x + y, c + x - y])  # top-left, bottom-left, ...
    # The quad's corners are the crop's outer pixel corners (pixel centres sit at integers).
    lo, hi = -0.5, size - 0.5
    corners = np.array([[lo, lo], [lo, hi], [hi, hi], [hi, lo]])
    return umeyama(quad, corners)


# Alignment methods by name: each maps five landmarks and a crop size to the forward matrix.
ALIGNERS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "arcface": arcface_matrix,
    "insightface": insightface_matrix,
    "ffhq": ffhq_matrix,
}


def with_context(matrix: np.ndarray, size: int, context: float) -> np.ndarray:
    """A (2, 3) crop matrix that shows `context` times as much around the crop's centre: the face
    shrinks by 1 / context about the centre pixel, (size - 1) / 2, and its surroundings come in."""
    if not math.isfinite(context) or context <= 0:
        raise ValueError(f"context must be a positive number (1 = the method's own framing), got {context!r}")
    shrink = 1.0 / context
    centre = (size - 1) / 2.0
    out = matrix * shrink
    out[:, 2] += (1.0 - shrink) * centre
    return out


def align_face(rgb: np.ndarray, landmarks: FiveLandmarks, size: int, method: str = "arcface", *,
               context: float = 1.0) -> AlignedFace:
    """Warp the face described by `landmarks` out of `rgb` (any layout to_rgb8 takes) into an
    upright `size` x `size` crop by `method` (a key of ALIGNERS), showing `context` times the
    method's framing (see with_context)."""
    if method not in ALIGNERS:
        raise ValueError(f"unknown alignment method {method!r}; choose one of {', '.join(ALIGNERS)}")
    if not isinstance(size, (int, np.integer)) or size < 8:
        raise ValueError(f"crop size must be an integer of at least 8 px, got {size!r}")
    rgb = to_rgb8(rgb)
    matrix = ALIGNERS[method](landmarks.points, int(size))
    if context != 1.0:
        matrix = with_context(matrix, int(size), context)
    crop = warp_to_crop(rgb, matrix, int(size))
    return AlignedFace(crop=crop, matrix=matrix, inverse=invert_affine(matrix),
                       landmarks=apply_affine(matrix, landmarks.points), face=landmarks, method=method,
                       image_shape=(int(rgb.shape[0]), int(rgb.shape[1])))
