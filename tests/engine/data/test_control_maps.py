"""Control maps: edges on outlines only, a scribble near but not on them, segmentation that
agrees with the labels; all aligned with the render at any size."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.data import (
    SEGMENTATION_COLOURS,
    SHAPE_CLASSES,
    Background,
    Scene,
    Shape,
    edge_map,
    labels,
    rasterise,
    render,
    scene_for_seed,
    scribble_map,
    segmentation_class_ids,
    segmentation_map,
)
from engine.data.scene import outline

SEEDS = range(40)


def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))


def _distance_to(mask: np.ndarray) -> np.ndarray:
    """Distance of every pixel to the nearest True pixel of `mask`."""
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)


def _densify(contour: np.ndarray, step: float = 0.5) -> np.ndarray:
    """Points every `step` px along a closed polygon."""
    closed = np.concatenate([contour, contour[:1]])
    pts = []
    for a, b in zip(closed[:-1], closed[1:]):
        n = max(1, int(np.hypot(*(b - a)) / step))
        pts.append(a + (b - a) * (np.arange(n) / n)[:, None])
    return np.concatenate(pts)


def _outline_mask(scene: Scene, size: int) -> np.ndarray:
    """All shape outlines drawn as 1-px polylines straight from the geometry."""
    canvas = np.zeros((size, size), np.uint8)
    for shape in scene.shapes:
        for c in outline(shape):
            pts = np.round((c * size - 0.5) * 16).astype(np.int32)
            cv2.polylines(canvas, [pts], True, 1, 1, cv2.LINE_8, 4)
    return canvas.astype(bool)


@pytest.mark.parametrize("fn", [edge_map, segmentation_map])
def test_maps_are_rgb_uint8_at_any_size(fn) -> None:
    scene = scene_for_seed(2)
    for size in (128, 320):
        m = fn(scene, size)
        assert m.shape == (size, size, 3) and m.dtype == np.uint8
    s = scribble_map(scene, _rng(0), 320)
    assert s.shape == (320, 320, 3) and s.dtype == np.uint8
    assert set(np.unique(s)) <= {0, 255} and set(np.unique(edge_map(scene))) <= {0, 255}


def test_edges_lie_on_outlines_and_cover_them() -> None:
    for seed in SEEDS:
        scene = scene_for_seed(seed)
        edges = edge_map(scene)[..., 0] > 0
        near_outline = _distance_to(_outline_mask(scene, 128)) <= 1.5
        assert edges.any()
        assert not (edges & ~near_outline).any()  # nothing off the geometry's outlines
        # every unoccluded shape's outline is traced: each outline vertex has an edge nearby
        dist_to_edge = _distance_to(edges)
        for shape, lab in zip(scene.shapes, labels(scene)):
            if lab.visible_fraction == 1.0:
                for c in outline(shape):
                    x, y = np.clip(_densify(c * 128), 0, 127).astype(int).T
                    d = dist_to_edge[y, x]
                    assert (d <= 1.5).mean() > 0.95 and d.max() <= 3.0  # sharp tips retreat a little


def test_edges_are_empty_in_flat_regions_and_gradients() -> None:
    for seed in SEEDS:
        scene = scene_for_seed(seed)
        img = render(scene).astype(np.int16)
        k = np.ones((5, 5), np.uint8)
        spread = (cv2.dilate(img, k) - cv2.erode(img, k)).max(axis=2)  # local range in the image
        edges = edge_map(scene)[..., 0] > 0
        flat = spread <= 10  # flat colour, or a smooth gradient (at most ~9 levels over 5 px)
        assert flat.mean() > 0.3
        assert not (edges & flat).any()


def test_scribble_differs_from_edges_but_stays_near_them() -> None:
    for seed in SEEDS:
        scene = scene_for_seed(seed)
        edges = edge_map(scene)[..., 0] > 0
        scribble = scribble_map(scene, _rng(seed))[..., 0] > 0
        iou = (edges & scribble).sum() / (edges | scribble).sum()
        assert iou < 0.5
        near_edge = _distance_to(edges) <= 4.0
        assert (scribble & near_edge).sum() / scribble.sum() > 0.97
        near_scribble = _distance_to(scribble) <= 4.0
        assert (edges & near_scribble).sum() / edges.sum() > 0.9  # it traces the outlines


def test_scribble_is_seeded() -> None:
    scene = scene_for_seed(8)
    a, b, c = (scribble_map(scene, _rng(s)) for s in (1, 1, 2))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_scribble_scales_with_size() -> None:
    scene = scene_for_seed(8)
    small = scribble_map(scene, _rng(1), 128)[..., 0] > 0
    big = scribble_map(scene, _rng(1), 512)[..., 0] > 0
    down = cv2.resize(big.astype(np.uint8), (128, 128), interpolation=cv2.INTER_AREA) > 0
    assert (down & (_distance_to(small) <= 3)).sum() / down.sum() > 0.9


def test_occluded_outline_parts_are_erased_from_the_scribble() -> None:
    back = Shape("square", "red", 0.4, 0.5, 0.2)
    front = Shape("circle", "blue", 0.56, 0.5, 0.2)
    scene = Scene(Background("white"), (back, front))
    scribble = scribble_map(scene, _rng(0))[..., 0] > 0
    ids = rasterise(scene, 128).instance_ids
    deep_inside_front = cv2.erode((ids == 1).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    assert deep_inside_front.sum() > 500
    assert not (scribble & deep_inside_front).any()  # the square's hidden right side is gone


def test_segmentation_agrees_with_labels() -> None:
    for seed in SEEDS:
        scene = scene_for_seed(seed)
        classes = segmentation_class_ids(segmentation_map(scene))
        labs = labels(scene)
        covered = np.zeros_like(classes, dtype=bool)
        for lab in labs:
            x0, y0, x1, y1 = (int(v) for v in lab.box)
            inside = classes[y0:y1, x0:x1] == lab.cls
            # tight: the label's class reaches every side of its box
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
            covered[y0:y1, x0:x1] |= inside
        assert np.array_equal(covered, classes >= 0)  # every class pixel belongs to a label box
        # each class's pixel count matches its labels' visible (soft) area up to rim rounding
        areas = [float(c.alpha.sum()) / 255 for c in rasterise(scene, 128).coverage]
        for c in set(lab.cls for lab in labs):
            soft = sum(lab.visible_fraction * a for lab, a in zip(labs, areas) if lab.cls == c)
            assert abs(int((classes == c).sum()) - soft) <= 0.03 * soft + 6


def test_segmentation_matches_the_image() -> None:
    """Away from rims, a pixel of class c in the map shows the colour of a shape of class c."""
    from engine.data import colour_of

    for seed in SEEDS:
        scene = scene_for_seed(seed)
        img = render(scene)
        classes = segmentation_class_ids(segmentation_map(scene))
        ids = rasterise(scene, 128).instance_ids
        for i, shape in enumerate(scene.shapes):
            core = cv2.erode((ids == i).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
            if core.sum() < 5:
                continue
            assert (classes[core] == SHAPE_CLASSES.index(shape.cls)).all()
            assert colour_of(img[core].mean(axis=0)) == shape.colour
        background = cv2.erode((ids < 0).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        assert (classes[background] == -1).all()


def test_segmentation_palette_is_fixed_and_background_black() -> None:
    scene = Scene(Background("white"), (Shape("heart", "red", 0.5, 0.5, 0.2),))
    seg = segmentation_map(scene)
    assert tuple(seg[64, 64]) == SEGMENTATION_COLOURS["heart"]
    assert tuple(seg[2, 2]) == (0, 0, 0)
    with pytest.raises(ValueError, match="palette"):
        segmentation_class_ids(np.full((4, 4, 3), 7, np.uint8))
