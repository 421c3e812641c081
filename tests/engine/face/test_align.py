"""Alignment on a real photo: the eyes, read again on the crop, land on the ArcFace template; the
transformed points meet it to the Umeyama residual; FFHQ's square against its recipe."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.face import FiveLandmarks, align_face, arcface_template, find_faces
from engine.face.align import ARCFACE_WEIGHTS, ffhq_matrix
from engine.face.similarity import apply_affine, umeyama


def _weighted_rms(points: np.ndarray, target: np.ndarray, weights: np.ndarray) -> float:
    return float(np.sqrt((weights * ((points - target) ** 2).sum(axis=1)).sum() / weights.sum()))


# Measured re-read eye errors: 0.16, 0.08 px at 112; 0.65, 0.42 px at 512.
@pytest.mark.parametrize(("size", "residual"), [(112, 1.079), (512, 4.933)])
def test_arcface_eyes_land_on_the_template(astronaut: np.ndarray, astronaut_face: FiveLandmarks, size: int,
                                           residual: float) -> None:
    aligned = align_face(astronaut, astronaut_face, size)
    template = arcface_template(size)
    assert aligned.crop.shape == (size, size, 3) and aligned.crop.dtype == np.uint8
    # The crop, read afresh by the mesh, has its eyes within 2 px of the template's.
    reread = find_faces(aligned.crop, source="mediapipe")
    assert len(reread) == 1
    eye_error = np.linalg.norm(reread[0].points[:2] - template[:2], axis=1)
    assert eye_error.max() < 2.0, eye_error
    # The input points land on the template up to the least-squares residual, which is pinned:
    # it is her smile (the mouth corners sit high), and the eyes carry the fit.
    assert _weighted_rms(aligned.landmarks, template, ARCFACE_WEIGHTS) == pytest.approx(residual, abs=0.01)
    np.testing.assert_allclose(aligned.landmarks, apply_affine(aligned.matrix, astronaut_face.points))
    assert np.linalg.norm(aligned.landmarks[:2] - template[:2], axis=1).max() < 0.7
    np.testing.assert_allclose(aligned.inverse @ np.append(aligned.landmarks[0], 1), astronaut_face.points[0])
    assert aligned.image_shape == (512, 512) and aligned.method == "arcface"


def test_insightface_equal_weight_fit_trades_the_eyes_for_the_mouth(astronaut: np.ndarray,
                                                                   astronaut_face: FiveLandmarks) -> None:
    aligned = align_face(astronaut, astronaut_face, 112, "insightface")
    template = arcface_template(112)
    np.testing.assert_allclose(aligned.matrix, umeyama(astronaut_face.points, template), atol=1e-12)
    eye_error = np.linalg.norm(aligned.landmarks[:2] - template[:2], axis=1)
    np.testing.assert_allclose(eye_error, [2.25, 2.81], atol=0.02)  # why "arcface" anchors on the eyes
    assert _weighted_rms(aligned.landmarks, template, np.ones(5)) == pytest.approx(5.934, abs=0.01)


def test_ffhq_square_follows_the_recipe() -> None:
    # Eyes 40 px apart, mouth 50 px below their midpoint: the square's half side is
    # max(2 * 40, 1.8 * 50) = 90, centred 0.1 * 50 below the eyes, here at (120, 105).
    points = np.array([[100.0, 100], [140, 100], [120, 125], [105, 150], [135, 150]])
    matrix = ffhq_matrix(points, 180)
    np.testing.assert_allclose(matrix, [[1, 0, -30.5], [0, 1, -15.5]], atol=1e-9)
    # The same face turned by 30 degrees about any point gives the same crop coordinates.
    angle = np.deg2rad(30)
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    turned = (points - [60, 80]) @ turn.T + [60, 80]
    np.testing.assert_allclose(apply_affine(ffhq_matrix(turned, 180), turned), points - [30.5, 15.5], atol=1e-9)


def test_ffhq_crop_is_upright_on_the_photo(astronaut: np.ndarray, astronaut_face: FiveLandmarks) -> None:
    aligned = align_face(astronaut, astronaut_face, 256, "ffhq")
    reread = find_faces(aligned.crop, source="mediapipe")[0].points
    eyes = reread[:2]
    assert abs(eyes[1, 1] - eyes[0, 1]) < 1.5  # a level eye line (it tilts 2.5 px in the photo)
    assert abs(eyes[:, 0].mean() - 127.5) < 2.0  # centred
    # FFHQ puts the eyes 1/4 of the side apart when the eye distance sets the square's size.
    assert np.linalg.norm(eyes[1] - eyes[0]) / 256 == pytest.approx(0.25, abs=0.01)


@pytest.mark.parametrize("layout", ["grey", "rgba", "uint16"])
def test_grey_rgba_and_16_bit_photos_align(astronaut: np.ndarray, layout: str) -> None:
    image = {
        "grey": cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY),
        "rgba": np.dstack([astronaut, np.full((512, 512), 255, np.uint8)]),
        "uint16": astronaut.astype(np.uint16) * 257,
    }[layout]
    face = find_faces(image)[0]
    aligned = align_face(image, face, 512)
    reread = find_faces(aligned.crop)[0].points
    assert np.linalg.norm(reread[:2] - arcface_template(512)[:2], axis=1).max() < 2.0  # measured 0.8 px (grey)
    if layout != "grey":
        np.testing.assert_array_equal(aligned.crop, align_face(astronaut, face, 512).crop)
    else:
        assert np.ptp(aligned.crop.astype(int), axis=2).max() == 0  # grey stays grey


def test_bad_arguments_are_refused(astronaut: np.ndarray, astronaut_face: FiveLandmarks) -> None:
    with pytest.raises(ValueError, match="unknown alignment method 'dlib'"):
        align_face(astronaut, astronaut_face, 112, "dlib")
    with pytest.raises(ValueError, match="at least 8"):
        align_face(astronaut, astronaut_face, 4)
    with pytest.raises(ValueError, match="integer"):
        align_face(astronaut, astronaut_face, 112.5)  # type: ignore[arg-type]
