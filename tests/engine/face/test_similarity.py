"""Umeyama's least-squares similarity against known transforms and OpenCV's estimator, the ArcFace
template's scaling, and the crop warp's coordinates on its shrinking path."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.face.similarity import ARCFACE_112, apply_affine, arcface_template, invert_affine, umeyama, warp_to_crop


def _random_similarity(rng: np.random.Generator, d: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    scale = rng.uniform(0.2, 5.0)
    return np.hstack([scale * q, rng.uniform(-100, 100, (d, 1))])


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("seed", range(4))
def test_recovers_a_known_similarity_exactly(d: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = _random_similarity(rng, d)
    src = rng.uniform(-50, 50, (12, d))
    got = umeyama(src, apply_affine(truth, src))
    assert got.shape == (d, d + 1)
    np.testing.assert_allclose(got, truth, atol=1e-9)


def test_rigid_fit_keeps_unit_scale() -> None:
    rng = np.random.default_rng(7)
    truth = _random_similarity(rng, 2)
    truth[:, :2] /= np.sqrt(np.linalg.det(truth[:, :2]))  # a pure rotation
    src = rng.uniform(-50, 50, (6, 2))
    dst = apply_affine(truth, src) * 1.0
    np.testing.assert_allclose(umeyama(src, dst, estimate_scale=False), truth, atol=1e-9)
    # Asked for no scale on scaled points, it still returns a rotation (det 1).
    fit = umeyama(src, dst * 2.0, estimate_scale=False)
    assert np.linalg.det(fit[:, :2]) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_matches_opencv_least_squares_on_noisy_points(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    truth = _random_similarity(rng, 2)
    src = rng.uniform(0, 200, (40, 2))
    dst = apply_affine(truth, src) + rng.normal(0, 1.5, (40, 2))
    ours = umeyama(src, dst)
    # A threshold no point exceeds makes RANSAC keep them all; OpenCV then refines the 4-parameter
    # fit by Levenberg-Marquardt, which converges to the same least-squares optimum.
    theirs, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=1e6,
                                                  refineIters=100)
    assert inliers.all()
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4 * max(1.0, np.abs(theirs).max()))
    # And it is the optimum: nudging any parameter raises the squared error.
    best = ((apply_affine(ours, src) - dst) ** 2).sum()
    for _ in range(20):
        nudged = ours + rng.normal(0, 1e-3, ours.shape) * np.array([[1, 1, 100], [1, 1, 100]])
        nudged[:, :2] = _nearest_similarity(nudged[:, :2])
        assert ((apply_affine(nudged, src) - dst) ** 2).sum() > best


def _nearest_similarity(linear: np.ndarray) -> np.ndarray:
    a, b = (linear[0, 0] + linear[1, 1]) / 2, (linear[1, 0] - linear[0, 1]) / 2
    return np.array([[a, -b], [b, a]])


def test_mirrored_points_give_a_rotation_not_a_reflection() -> None:
    rng = np.random.default_rng(3)
    src = rng.uniform(-10, 10, (8, 2))
    fit = umeyama(src, src * [-1.0, 1.0])
    assert np.linalg.det(fit[:, :2]) > 0


def test_weights_act_like_repeated_points() -> None:
    rng = np.random.default_rng(5)
    src, dst = rng.uniform(0, 50, (5, 2)), rng.uniform(0, 50, (5, 2))
    weights = np.array([3, 1, 2, 1, 1])
    repeated = umeyama(np.repeat(src, weights, axis=0), np.repeat(dst, weights, axis=0))
    np.testing.assert_allclose(umeyama(src, dst, weights=weights), repeated, atol=1e-10)
    # Two points with all the weight are met exactly, whatever the others do.
    only_two = umeyama(src, dst, weights=np.array([1.0, 1.0, 0, 0, 0]))
    np.testing.assert_allclose(apply_affine(only_two, src[:2]), dst[:2], atol=1e-9)


@pytest.mark.parametrize(
    ("src", "dst", "weights", "fragment"),
    [
        (np.zeros((3, 2)), np.ones((3, 2)), None, "coincide"),
        (np.ones((3, 2)), np.ones((4, 2)), None, "same shape"),
        (np.ones((1, 2)), np.ones((1, 2)), None, "at least 2 points"),
        (np.array([[0.0, 0], [1, np.nan]]), np.ones((2, 2)), None, "finite"),
        (np.eye(2), np.eye(2), np.array([1.0, -1.0]), "weights"),
        (np.eye(2), np.eye(2), np.array([0.0, 0.0]), "weights"),
        (np.array([[0.0, 0], [1, 0], [2, 0]]), np.full((3, 2), 4.0), None, "degenerate"),
    ],
)
def test_bad_points_are_refused(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None,
                                fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        umeyama(src, dst, weights=weights)


def test_affine_helpers_round_trip() -> None:
    matrix = _random_similarity(np.random.default_rng(9), 2)
    points = np.array([[1.0, 2.0], [30.0, -4.0]])
    np.testing.assert_allclose(apply_affine(invert_affine(matrix), apply_affine(matrix, points)), points, atol=1e-10)


def test_arcface_template_scales_like_a_resize() -> None:
    np.testing.assert_array_equal(arcface_template(112), ARCFACE_112)
    # cv2.resize maps pixel centres x -> (x + 0.5) * s - 0.5; the template follows it.
    np.testing.assert_allclose(arcface_template(448), (ARCFACE_112 + 0.5) * 4 - 0.5)
    assert arcface_template(512)[0] == pytest.approx([176.847, 238.112], abs=0.001)
    with pytest.raises(ValueError, match="at least 8"):
        arcface_template(4)


@pytest.mark.parametrize("scale", [0.1, 0.7, 3.0])
def test_crop_warp_puts_a_point_where_the_matrix_says(scale: float) -> None:
    # A bright Gaussian spot at a known sub-pixel place; scale 0.1 takes the area-shrink path.
    h, w, spot, sigma = 1000, 1000, np.array([501.3, 497.8]), 12.0
    yy, xx = np.mgrid[0:h, 0:w]
    blob = np.exp(-((xx - spot[0]) ** 2 + (yy - spot[1]) ** 2) / (2 * sigma**2))
    rgb = np.repeat(np.round(blob * 255)[:, :, None], 3, axis=2).astype(np.uint8)
    angle = np.deg2rad(25)
    linear = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    size = 64  # at scale 0.1 the crop stays inside the photo, away from its mirrored border
    matrix = np.hstack([linear, (np.full(2, (size - 1) / 2) - linear @ spot)[:, None]])
    crop = warp_to_crop(rgb, matrix, size)[:, :, 0].astype(np.float64)
    crop = np.where(crop > 0.2 * crop.max(), crop, 0.0)  # the spot, not the ringing around it
    cy, cx = np.mgrid[0:size, 0:size]
    centroid = np.array([(cx * crop).sum(), (cy * crop).sum()]) / crop.sum()
    np.testing.assert_allclose(centroid, [(size - 1) / 2] * 2, atol=0.05)
