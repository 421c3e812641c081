"""Least-squares similarity transforms (Umeyama 1991), the ArcFace 5-point template they map
faces onto, and the warp of a photo into a face crop."""

from __future__ import annotations

import cv2
import numpy as np

# insightface's reference positions in a 112x112 crop (the crops ArcFace, Deng et al. 2019, is
# trained on), image-left eye first (the person's right eye): left eye, right eye, nose tip, left
# mouth corner, right mouth corner. Pixel centres at integer coordinates, the convention of
# cv2.warpAffine that insightface aligns with.
ARCFACE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
)
ARCFACE_112.setflags(write=False)


def arcface_template(size: int) -> np.ndarray:
    """The ArcFace 5-point template (5, 2) for a `size` x `size` crop: the 112 px reference points
    scaled about the crop's corner pixel centre, so the face fills the crop as it fills 112 px."""
    if size < 8:
        raise ValueError(f"crop size must be at least 8 px, got {size}")
    # Scale pixel *edges* (x + 0.5), not centres, so a 112 px crop resampled to `size` px keeps
    # each point on the same spot of the face.
    return (ARCFACE_112 + 0.5) * (size / 112.0) - 0.5


def umeyama(src: np.ndarray, dst: np.ndarray, estimate_scale: bool = True,
            weights: np.ndarray | None = None) -> np.ndarray:
    """The similarity (rotation, uniform scale, translation) that maps points `src` (N, d) onto
    `dst` (N, d) with the least (optionally weighted) squared error, as a (d, d + 1) matrix
    [c R | t] (Umeyama 1991, "Least-squares estimation of transformation parameters between two
    point patterns"). Without `estimate_scale` the map is rigid (c = 1)."""
    src, dst, w = _checked_points(src, dst, weights)
    d = src.shape[1]
    mean_src, mean_dst = w @ src, w @ dst
    src_c, dst_c = src - mean_src, dst - mean_dst
    cov = (dst_c * w[:, None]).T @ src_c  # (d, d), Umeyama's Sigma_xy with weights summing to 1
    var_src = float(w @ (src_c**2).sum(axis=1))
    if var_src <= 1e-12 * max(1.0, float(np.abs(src).max()) ** 2):
        raise ValueError("the source points all coincide: no similarity is defined")
    u, s, vt = np.linalg.svd(cov)
    if np.linalg.matrix_rank(cov, tol=1e-9 * max(s[0], 1e-300)) < d - 1:
        raise ValueError("the points are degenerate (rank of their covariance < d - 1): the rotation "
                         "is not defined")
    # Umeyama's S: flip the last axis when the best orthogonal map would be a reflection.
    flip = np.ones(d)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        flip[-1] = -1.0
    rotation = (u * flip) @ vt
    scale = float((s * flip).sum() / var_src) if estimate_scale else 1.0
    translation = mean_dst - scale * rotation @ mean_src
    return np.hstack([scale * rotation, translation[:, None]])


def _checked_points(src: np.ndarray, dst: np.ndarray,
                    weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    src, dst = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    if src.ndim != 2 or src.shape != dst.shape:
        raise ValueError(f"src and dst must be (N, d) arrays of the same shape, got {src.shape} and {dst.shape}")
    if src.shape[0] < 2 or src.shape[1] < 1:
        raise ValueError(f"need at least 2 points of dimension >= 1, got {src.shape}")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise ValueError("points must be finite")
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(src),) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights must be {len(src)} finite values >= 0 with a positive sum, got {weights!r}")
    return src, dst, w / w.sum()


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (N, d) through a (d, d + 1) affine matrix."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :-1].T + matrix[:, -1]


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a (d, d + 1) affine matrix, in the same form."""
    linear = np.linalg.inv(matrix[:, :-1])
    return np.hstack([linear, -(linear @ matrix[:, -1])[:, None]])


def warp_to_crop(rgb: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Resample `rgb` through `matrix` into a (size, size, 3) crop. Shrinking faces are first
    area-averaged to about the crop's scale (a plain warp would alias); the border mirrors the
    image, so a crop that runs off the photo shows plausible surroundings, never a black wedge."""
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.5:
        # Area-shrink the photo first so the warp itself shrinks by at most 2x.
        factor = 2.0 * scale
        h, w = rgb.shape[:2]
        small = (max(1, round(w * factor)), max(1, round(h * factor)))
        rgb = cv2.resize(rgb, small, interpolation=cv2.INTER_AREA)
        to_small = np.diag([small[0] / w, small[1] / h])
        # Original pixel centre p maps to (p + 0.5) * f - 0.5 in the small image: undo that.
        back = np.linalg.inv(to_small)
        offset = back @ np.full(2, 0.5) - 0.5
        matrix = np.hstack([matrix[:, :2] @ back, (matrix[:, :2] @ offset + matrix[:, 2])[:, None]])
    return cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
