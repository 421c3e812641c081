"""Rendering: anti-aliased coverage with exact area and position, any resolution, tight
labels and visibility."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.data import COLOURS, SHAPE_CLASSES, Background, Scene, Shape, labels, rasterise, render, scene_for_seed
from engine.data.render import fill_mask, shape_coverage
from engine.data.scene import outline


def _polygon_area(c: np.ndarray) -> float:
    x, y = c[:, 0], c[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _polygon_centroid(c: np.ndarray) -> tuple[float, float]:
    x, y = c[:, 0], c[:, 1]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cross = x * yn - xn * y
    a = cross.sum() / 2
    return float(((x + xn) * cross).sum() / (6 * a)), float(((y + yn) * cross).sum() / (6 * a))


def test_render_shape_and_dtype() -> None:
    scene = scene_for_seed(5)
    for size in (64, 128, 200):
        img = render(scene, size)
        assert img.shape == (size, size, 3) and img.dtype == np.uint8


@pytest.mark.parametrize("size, error", [(8, ValueError), (10_000, ValueError), (128.0, TypeError)])
def test_render_rejects_bad_sizes(size: object, error: type) -> None:
    with pytest.raises(error, match="size"):
        render(scene_for_seed(0), size)  # type: ignore[arg-type]


def test_fill_samples_pixel_centres_exactly() -> None:
    square = np.array([[10.0, 10.0], [20.0, 10.0], [20.0, 20.0], [10.0, 20.0]])
    mask = fill_mask([square], 32, 32)
    assert mask.sum() == 100
    assert mask[10:20, 10:20].all()
    shifted = fill_mask([square + 0.6], 32, 32)  # centres 10.5 .. 19.5 leave for 11.5 .. 20.5
    assert shifted[11:21, 11:21].all() and shifted.sum() == 100
    ring = fill_mask([square, (square - 15) * 0.4 + 15], 32, 32)  # even-odd: inner square is a hole
    assert ring.sum() == 100 - 16 and ring[15, 15] == 0


@pytest.mark.parametrize("cls", SHAPE_CLASSES)
def test_coverage_matches_polygon_area_and_centroid(cls: str) -> None:
    shape = Shape(cls, "red", 0.47, 0.53, 0.2, 10.0 if cls not in ("circle", "ring") else 0.0)
    size = 128
    cov = shape_coverage(shape, size)
    alpha = cov.alpha.astype(np.float64) / 255
    contours = [c * size for c in outline(shape)]
    area = _polygon_area(contours[0]) - sum(_polygon_area(c) for c in contours[1:])
    assert alpha.sum() == pytest.approx(area, rel=0.005)
    # pixel (x, y) spans [x, x+1): its centre is x + 0.5, so the coverage centroid is the
    # polygon's centroid with no half-pixel drift
    exact = _polygon_centroid(contours[0]) if len(contours) == 1 else (shape.cx * size, shape.cy * size)
    ys, xs = np.mgrid[cov.slices]
    got = ((xs + 0.5) * alpha).sum() / alpha.sum(), ((ys + 0.5) * alpha).sum() / alpha.sum()
    assert got == pytest.approx(exact, abs=0.03)


def test_render_is_anti_aliased_and_uses_exact_colours() -> None:
    scene = Scene(Background("white"), (Shape("circle", "blue", 0.5, 0.5, 0.3),))
    img = render(scene).reshape(-1, 3)
    blue, white = np.array(COLOURS["blue"]), np.array(COLOURS["white"])
    pure = (img == blue).all(1) | (img == white).all(1)
    assert (img == blue).all(1).sum() > 0.2 * img.shape[0]
    assert 50 < (~pure).sum() < 400  # a rim of mixed pixels, about the circumference


def test_gradient_runs_from_first_colour_to_second() -> None:
    for direction, first, last in [
        ("vertical", (0, slice(None)), (-1, slice(None))),
        ("horizontal", (slice(None), 0), (slice(None), -1)),
        ("diagonal", (0, 0), (-1, -1)),
    ]:
        img = render(Scene(Background("black", "white", direction), ()), 64).astype(int)
        assert img[first].max() < 30 and img[last].min() > 235
        assert (np.diff(img[..., 0], axis=0) >= 0).all() and (np.diff(img[..., 0], axis=1) >= 0).all()


def test_render_512_downsampled_is_close_to_render_128() -> None:
    diffs, tails = [], []
    for seed in range(30):
        scene = scene_for_seed(seed)
        small = render(scene, 128).astype(np.float64)
        big = cv2.resize(render(scene, 512), (128, 128), interpolation=cv2.INTER_AREA).astype(np.float64)
        d = np.abs(small - big)
        diffs.append(d.mean())
        tails.append(np.percentile(d, 99.9))
    assert np.mean(diffs) < 0.2 and max(diffs) < 0.5
    assert max(tails) < 25  # differences only on anti-aliased rims (4x4 vs 16x16 samples)


def test_labels_ids_and_full_boxes_are_tight_on_rendered_pixels() -> None:
    """Render each shape alone and find its pixels from the image: full_box bounds exactly
    the pixels the shape covers by at least about half."""
    checked = 0
    for seed in range(40):
        scene = scene_for_seed(seed)
        for size in (128, 96):
            for shape, label in zip(scene.shapes, labels(scene, size)):
                assert SHAPE_CLASSES[label.cls] == shape.cls
                assert list(COLOURS)[label.colour] == shape.colour
                alone = Scene(scene.background, (shape,))
                bg = render(Scene(scene.background, ()), size).astype(np.float64)
                diff = np.abs(render(alone, size) - bg)
                full = np.abs(np.array(COLOURS[shape.colour]) - bg)
                channel = full.argmax(axis=2)[..., None]  # the channel with the most contrast
                share = np.take_along_axis(diff, channel, 2)[..., 0] / np.take_along_axis(full, channel, 2)[..., 0]
                inner, outer = _bounds(share >= 0.53), _bounds(share >= 0.47)
                x0, y0, x1, y1 = label.full_box
                assert outer[0] <= x0 <= inner[0] and outer[1] <= y0 <= inner[1]
                assert inner[2] <= x1 <= outer[2] and inner[3] <= y1 <= outer[3]
                checked += 1
    assert checked > 150


def _bounds(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def test_visible_box_is_tight_on_the_instance_pixels() -> None:
    for seed in range(60):
        scene = scene_for_seed(seed)
        r = rasterise(scene, 128)
        for lab in labels(scene, 128, raster=r):
            assert _bounds(r.instance_ids == lab.index) == lab.box
            x0, y0, x1, y1 = lab.box
            fx0, fy0, fx1, fy1 = lab.full_box
            assert fx0 <= x0 < x1 <= fx1 and fy0 <= y0 < y1 <= fy1


def test_labels_scale_with_render_size() -> None:
    scene = scene_for_seed(11)
    for small, big in zip(labels(scene, 128), labels(scene, 512)):
        assert np.allclose(np.array(big.full_box) / 4, small.full_box, atol=0.75)
        assert big.visible_fraction == pytest.approx(small.visible_fraction, abs=0.02)


def test_visibility_of_overlapping_shapes() -> None:
    half = 0.82 * 0.2  # a square of size 0.2 spans +-0.164 around its centre
    back = Shape("square", "red", 0.4, 0.5, 0.2)
    front = Shape("square", "blue", 0.4 + half, 0.5, 0.2)  # covers the right half of `back`
    hidden = Shape("circle", "green", 0.4 + half, 0.5, 0.08)  # entirely under `front`...
    scene = Scene(Background("white"), (back, hidden, front))
    lab_back, lab_hidden, lab_front = labels(scene)
    assert lab_back.visible_fraction == pytest.approx(0.5, abs=0.01) and lab_back.visible
    assert lab_hidden.visible_fraction == pytest.approx(0.0, abs=1e-6) and not lab_hidden.visible
    assert lab_front.visible_fraction == 1.0 and lab_front.visible
    assert lab_hidden.box == lab_hidden.full_box  # nothing visible: falls back to the full box
    # the visible box of `back` is its left half
    x0, _, x1, _ = lab_back.box
    assert x0 == lab_back.full_box[0] and x1 == pytest.approx(lab_front.full_box[0], abs=1)


def test_raster_must_match_scene_and_size() -> None:
    r = rasterise(scene_for_seed(1), 128)
    with pytest.raises(ValueError, match="raster"):
        render(scene_for_seed(2), 128, raster=r)
    with pytest.raises(ValueError, match="raster"):
        labels(scene_for_seed(1), 64, raster=r)
