"""engine.imaging: every common image layout becomes RGB uint8; analysis downscaling maps back."""

from __future__ import annotations

import numpy as np
import pytest

from engine.imaging import ImageFormatError, downscale_for_analysis, to_rgb8


def test_layouts_become_rgb8() -> None:
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = to_rgb8(grey)
    assert out.shape == (3, 4, 3) and out.dtype == np.uint8
    assert (out[:, :, 0] == grey).all() and (out[:, :, 2] == grey).all()
    assert (to_rgb8(grey[:, :, None]) == out).all()
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3], rgba[0, 0, 3], rgba[1, 1, 3] = 200, 255, 128
    comp = to_rgb8(rgba)
    assert comp[0, 0].tolist() == [200, 200, 200] and comp[0, 1].tolist() == [0, 0, 0]
    assert comp[1, 1].tolist() == [100, 100, 100]


def test_sixteen_bit_and_float_are_scaled() -> None:
    wide = np.array([[0, 65535, 32768]], np.uint16)
    assert to_rgb8(wide)[0, :, 0].tolist() == [0, 255, 128]
    assert to_rgb8(np.array([[0.0, 1.0, 0.5]]))[0, :, 1].tolist() == [0, 255, 128]


@pytest.mark.parametrize("bad", [np.zeros((2, 2, 2), np.uint8), np.zeros((0, 3, 3), np.uint8),
                                 np.zeros((2, 2), np.int64), np.full((2, 2), 2.0), np.full((2, 2), np.nan)])
def test_bad_arrays_are_refused(bad: np.ndarray) -> None:
    with pytest.raises(ImageFormatError):
        to_rgb8(bad)


def test_downscale_maps_back() -> None:
    image = np.zeros((3000, 4000, 3), np.uint8)
    small = downscale_for_analysis(image, 1000)
    assert small.image.shape == (750, 1000, 3) and small.scale == pytest.approx(4.0)
    same = downscale_for_analysis(image[:500, :600], 1000)
    assert same.scale == 1.0 and same.image.shape == (500, 600, 3)
