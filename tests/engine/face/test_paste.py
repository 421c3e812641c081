"""Pasting crops back: an unmodified crop leaves the photo as it was (to a pinned fraction of a
level), the soft edge never shows the crop's border, and colour matching undoes a colour drift."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.face import AlignedFace, FiveLandmarks, align_face, paste_back
from engine.face.paste import soft_mask


def _footprint(aligned: AlignedFace, shape: tuple[int, ...]) -> np.ndarray:
    ones = np.ones((aligned.size, aligned.size), np.float32)
    return cv2.warpAffine(ones, aligned.matrix, shape[::-1], flags=cv2.WARP_INVERSE_MAP | cv2.INTER_NEAREST) > 0


# Mean |change| in 1/255 units over the whole photo and over the crop's footprint, measured.
@pytest.mark.parametrize(
    ("size", "colour_match", "whole", "footprint"),
    [(512, True, 0.0115, 0.161), (512, False, 0.0059, 0.083), (256, True, 0.0173, 0.244)],
)
def test_unmodified_crop_pastes_back_unchanged(astronaut: np.ndarray, astronaut_face: FiveLandmarks, size: int,
                                               colour_match: bool, whole: float, footprint: float) -> None:
    aligned = align_face(astronaut, astronaut_face, size)
    out = paste_back(astronaut, aligned, aligned.crop, colour_match=colour_match)
    assert out.shape == astronaut.shape and out.dtype == np.uint8
    change = np.abs(out.astype(int) - astronaut.astype(int))
    inside = _footprint(aligned, astronaut.shape[:2])
    assert change.mean() < 1.0 and change[inside].mean() < 1.0
    assert change.mean() == pytest.approx(whole, abs=0.002)
    assert change[inside].mean() == pytest.approx(footprint, abs=0.01)
    assert change[~inside].max() == 0  # nothing outside the crop moves


def test_a_crop_smaller_than_the_face_loses_detail(astronaut: np.ndarray, astronaut_face: FiveLandmarks) -> None:
    # At 112 px the face is shrunk (0.8x), so the round trip blurs it: the figure the face detail
    # pass avoids by working at 512.
    aligned = align_face(astronaut, astronaut_face, 112)
    change = np.abs(paste_back(astronaut, aligned, aligned.crop).astype(int) - astronaut.astype(int))
    assert change.mean() == pytest.approx(0.132, abs=0.005)
    assert change[_footprint(aligned, (512, 512))].mean() == pytest.approx(1.86, abs=0.05)


def test_the_crop_border_never_shows(astronaut: np.ndarray, astronaut_face: FiveLandmarks) -> None:
    aligned = align_face(astronaut, astronaut_face, 256)
    white = np.full_like(aligned.crop, 255)
    out = paste_back(astronaut, aligned, white, colour_match=False).astype(int)
    change = np.abs(out - astronaut.astype(int)).max(axis=2)
    inside = _footprint(aligned, (512, 512))
    # Ring by ring inward from the footprint's edge the white crop fades in smoothly: all but
    # invisible on the outermost ring (measured: 2 levels at most), never a step.
    ring_max, ring = [], inside
    for _ in range(5):
        inner = cv2.erode(ring.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        ring_max.append(int(change[ring & ~inner].max()))
        ring = inner
    assert ring_max[0] <= 3 and ring_max == sorted(ring_max) and ring_max[1] < 20, ring_max
    centre = np.round(aligned.inverse @ [127.5, 127.5, 1]).astype(int)
    assert (out[centre[1], centre[0]] == 255).all()


def test_soft_mask_shape() -> None:
    mask = soft_mask(100, 0.1)
    assert mask.shape == (100, 100) and mask.dtype == np.float32
    assert mask[50, 50] == 1.0 and mask[0, :].max() == 0.0 and mask[:, -1].max() == 0.0
    assert mask[50, 10] == 1.0 and 0.0 < mask[50, 5] < 1.0  # the 10 px band eases in
    np.testing.assert_array_equal(mask, mask.T)
    np.testing.assert_array_equal(mask, mask[::-1, ::-1])
    for feather in (0.0, 0.6):
        with pytest.raises(ValueError, match="feather"):
            soft_mask(100, feather)


def test_colour_matching_undoes_a_drift(astronaut: np.ndarray, astronaut_face: FiveLandmarks) -> None:
    aligned = align_face(astronaut, astronaut_face, 512)
    drifted = np.clip(aligned.crop.astype(int) * [0.7, 0.8, 1.1] + 10, 0, 255).astype(np.uint8)
    plain = paste_back(astronaut, aligned, drifted, colour_match=False)
    matched = paste_back(astronaut, aligned, drifted)
    inside = _footprint(aligned, (512, 512))
    drift = np.abs(plain.astype(int) - astronaut)[inside].mean()
    left = np.abs(matched.astype(int) - astronaut)[inside].mean()
    # Mean and spread in Lab cannot undo an RGB gain with clipping exactly: measured 21.03 -> 2.92.
    assert drift == pytest.approx(21.03, abs=0.1) and left == pytest.approx(2.92, abs=0.1)


def test_flat_crop_only_moves_the_mean(astronaut: np.ndarray, astronaut_face: FiveLandmarks) -> None:
    aligned = align_face(astronaut, astronaut_face, 128)
    out = paste_back(astronaut, aligned, np.full_like(aligned.crop, 40))
    assert np.isfinite(out).all()  # no division by the flat crop's zero spread
    centre = np.round(aligned.inverse @ [63.5, 63.5, 1]).astype(int)
    # The middle takes the region's mean colour, not the flat grey.
    region = astronaut[_footprint(aligned, (512, 512))].mean(axis=0)
    assert np.abs(out[centre[1], centre[0]].astype(float) - region).max() < 25


def test_mismatched_inputs_are_refused(astronaut: np.ndarray, astronaut_face: FiveLandmarks) -> None:
    aligned = align_face(astronaut, astronaut_face, 128)
    with pytest.raises(ValueError, match="must be 128x128"):
        paste_back(astronaut, aligned, np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="aligned in a 512x512 image"):
        paste_back(astronaut[:256], aligned, aligned.crop)
