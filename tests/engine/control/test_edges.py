"""Canny, scribble and line art on shapes whose edges are known, plus XDoG's closed form on flat grey."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.control import CannyParams, LineartParams, ScribbleParams, canny, lineart, scribble
from tests.engine.control.images import square


def test_canny_finds_the_outline_of_a_square_and_nothing_in_flat_areas() -> None:
    edges = canny(square(), CannyParams(100, 200))
    assert set(np.unique(edges)) == {0, 255} and (edges[..., 0] == edges[..., 2]).all()
    on = edges[..., 0] > 0
    ys, xs = np.nonzero(on)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == pytest.approx((32, 95, 32, 95), abs=1)
    assert not on[36:92, 36:92].any() and not on[:28].any() and not on[:, 100:].any()
    for row in range(36, 92, 8):  # closed outline: every row through the square crosses it twice
        assert on[row, 30:35].any() and on[row, 93:98].any()


def test_canny_blur_removes_noise_edges_and_thresholds_matter() -> None:
    rng = np.random.default_rng(0)
    noisy = np.clip(square(level=160, background=60).astype(int) + rng.normal(0, 12, (128, 128, 3)), 0, 255)
    noisy = noisy.astype(np.uint8)
    raw = canny(noisy, CannyParams(60, 120))[..., 0] > 0
    smooth = canny(noisy, CannyParams(60, 120, blur=2.0))[..., 0] > 0
    assert raw[40:88, 40:88].sum() > 20 and smooth[40:88, 40:88].sum() == 0  # noise inside the square
    assert smooth[64, 28:37].any()  # the real edge survives
    faint = square(level=40)
    assert canny(faint, CannyParams(50, 100)).max() == 255 and canny(faint, CannyParams(400, 500)).max() == 0


def line_image() -> np.ndarray:
    """White, with a black vertical line 3 px wide at x = 40..42 and a large black square at [64, 120)."""
    rgb = np.full((128, 128, 3), 255, np.uint8)
    rgb[:, 40:43] = 0
    rgb[64:120, 64:120] = 0
    return rgb


def test_scribble_marks_dark_edges_not_dark_areas_and_thickness_grows_lines() -> None:
    thin = scribble(line_image(), ScribbleParams(thickness=0))[..., 0] > 0
    assert thin[10:60, 40:43].all()  # the line itself is ink
    assert not thin[10:60, 48:60].any() and not thin[:50, 100:].any()  # white areas stay empty
    assert thin[90, 64:68].any() and not thin[80:104, 80:104].any()  # the square's border, not its inside
    thick = scribble(line_image(), ScribbleParams(thickness=3))[..., 0] > 0
    assert (thick >= thin).all() and thick.sum() > thin.sum()
    assert thick[30, 37:46].all()  # 3 px of growth on each side of the 3 px line
    assert set(np.unique(scribble(line_image()))) <= {0, 255}


@pytest.mark.parametrize("method", ["adaptive", "xdog"])
def test_lineart_finds_a_thin_dark_line_on_a_gradient(method: str) -> None:
    ramp = np.tile(np.linspace(90, 250, 128), (128, 1))  # a brightness ramp: no lines
    ramp[:, 60:62] -= 80  # a 2 px dark line
    rgb = np.repeat(np.clip(ramp, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
    lines = lineart(rgb, LineartParams(method=method))[..., 0]
    assert (lines[8:120, 60:62] > 128).all()
    assert lines[8:120, :52].max() < 32 and lines[8:120, 70:].max() < 32


def test_xdog_on_flat_grey_is_its_closed_form() -> None:
    """Flat: G_sigma = G_k*sigma = L, so D = L and ink = -tanh(phi (L - eps)) where L < eps."""
    params = LineartParams(method="xdog", epsilon=0.5, phi=4.0)
    dark, light = np.full((16, 16), 64, np.uint8), np.full((16, 16), 200, np.uint8)
    expected = round(255 * math.tanh(4.0 * (0.5 - 64 / 255)))
    assert expected == 194
    assert (lineart(dark, params) == expected).all() and (lineart(light, params) == 0).all()
