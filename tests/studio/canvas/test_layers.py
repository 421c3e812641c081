"""The layer stack: structure edits with undo, the mask, conversions and the flattened picture."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QSize, Qt
from PySide6.QtGui import QColor, QImage

from studio.canvas.layers import (
    Layer,
    LayerKind,
    LayerStack,
    composite,
    control_array,
    mask_array,
    qimage_to_rgba,
    rgba_to_qimage,
)
from tests.studio.canvas.helpers import pixels


def filled(stack: LayerStack, color: QColor) -> QImage:
    image = QImage(stack.canvas_size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(color)
    return image


def names(stack: LayerStack) -> list[str]:
    return [layer.name for layer in stack.layers()]


def test_add_remove_with_undo(stack: LayerStack) -> None:
    a = stack.add_layer(LayerKind.IMAGE, "a")
    b = stack.add_layer(LayerKind.IMAGE, "b")
    assert names(stack) == ["a", "b"] and stack.current is b
    assert len(a.id) == 32 and a.id != b.id
    stack.remove_layer(a.id)
    assert names(stack) == ["b"]
    stack.undo_stack.undo()
    assert names(stack) == ["a", "b"] and stack.layer(a.id) is a
    stack.undo_stack.undo()
    stack.undo_stack.undo()
    assert names(stack) == [] and stack.current is None
    stack.undo_stack.redo()
    assert names(stack) == ["a"]


def test_move_with_undo_and_model_rows(stack: LayerStack) -> None:
    a, b, c = (stack.add_layer(LayerKind.IMAGE, n) for n in "abc")
    stack.move_layer(a.id, 2)
    assert names(stack) == ["b", "c", "a"]
    # model rows run top first
    assert [stack.data(stack.index(r), LayerStack.NameRole) for r in range(3)] == ["a", "c", "b"]
    assert stack.row_of(a.id) == 0 and stack.layer_at_row(2) is b
    stack.undo_stack.undo()
    assert names(stack) == ["a", "b", "c"]
    stack.move_layer(c.id, 0)
    assert names(stack) == ["c", "a", "b"]
    with pytest.raises(IndexError):
        stack.move_layer(c.id, 3)


def test_visibility_and_opacity_with_undo(stack: LayerStack) -> None:
    layer = stack.add_layer(LayerKind.IMAGE, "a")
    changed: list[str] = []
    stack.layer_changed.connect(changed.append)
    stack.set_visible(layer.id, False)
    assert not layer.visible and changed == [layer.id]
    stack.set_opacity(layer.id, 0.7)
    stack.set_opacity(layer.id, 0.4)  # merges with the previous opacity step
    assert layer.opacity == pytest.approx(0.4)
    stack.undo_stack.undo()
    assert layer.opacity == pytest.approx(1.0) and not layer.visible
    stack.undo_stack.undo()
    assert layer.visible
    with pytest.raises(ValueError, match="opacity"):
        stack.set_opacity(layer.id, 1.5)


def test_model_set_data_goes_through_undo(stack: LayerStack) -> None:
    layer = stack.add_layer(LayerKind.IMAGE, "a")
    index = stack.index(0)
    assert stack.setData(index, Qt.CheckState.Unchecked.value, Qt.ItemDataRole.CheckStateRole)
    assert not layer.visible
    assert stack.setData(index, "renamed", Qt.ItemDataRole.EditRole)
    assert stack.data(index, Qt.ItemDataRole.DisplayRole) == "renamed"
    stack.undo_stack.undo()
    stack.undo_stack.undo()
    assert layer.visible and layer.name == "a"


def test_mask_layer_is_unique_and_created_on_demand(stack: LayerStack) -> None:
    assert stack.find_mask() is None and mask_array(stack) is None
    mask = stack.mask_layer()
    assert mask.kind is LayerKind.MASK and stack.mask_layer() is mask
    with pytest.raises(ValueError, match="at most one"):
        stack.add_layer(LayerKind.MASK, "second")
    assert len([x for x in stack.layers() if x.kind is LayerKind.MASK]) == 1
    stack.undo_stack.undo()
    assert stack.find_mask() is None


def test_default_order_keeps_overlays_on_top(stack: LayerStack) -> None:
    stack.add_layer(LayerKind.IMAGE, "bg")
    stack.add_layer(LayerKind.CONTROL, "edges", control_type="canny")
    stack.add_layer(LayerKind.IMAGE, "fg")
    assert names(stack) == ["bg", "fg", "edges"]


def test_control_layers_start_black_with_distinct_tints(stack: LayerStack) -> None:
    one = stack.add_layer(LayerKind.CONTROL, "one", control_type="scribble")
    two = stack.add_layer(LayerKind.CONTROL, "two", control_type="seg")
    assert one.tint != two.tint
    assert control_array(one).shape == (128, 128, 3) and control_array(one).max() == 0
    with pytest.raises(ValueError, match="control_type"):
        stack.add_layer(LayerKind.CONTROL, "untyped")
    with pytest.raises(ValueError, match="not a control layer"):
        control_array(stack.add_layer(LayerKind.IMAGE, "img"))


def test_composite_with_opacity_pinned(stack: LayerStack) -> None:
    stack.add_layer(LayerKind.IMAGE, "bottom", filled(stack, QColor(200, 100, 50)))
    top = stack.add_layer(LayerKind.IMAGE, "top", filled(stack, QColor(0, 0, 255)))
    stack.add_layer(LayerKind.CONTROL, "edges", control_type="canny")  # never part of the picture
    stack.set_opacity(top.id, 0.5)
    result = pixels(composite(stack))
    np.testing.assert_allclose(result[5, 5], [100, 50, 152, 255], atol=1)
    stack.set_visible(top.id, False)
    np.testing.assert_array_equal(pixels(composite(stack))[5, 5], [200, 100, 50, 255])


def test_conversions_round_trip() -> None:
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (7, 5, 4), dtype=np.uint8)
    rgba[..., 3] = 255  # opaque pixels survive premultiplication exactly
    image = rgba_to_qimage(rgba)
    assert image.format() == QImage.Format.Format_ARGB32_Premultiplied and image.size() == QSize(5, 7)
    np.testing.assert_array_equal(qimage_to_rgba(image), rgba)
    rgba[0, 0] = 0  # the QImage is a deep copy
    assert qimage_to_rgba(image)[0, 0, 3] == 255
    rgb = rgba_to_qimage(rgba[..., :3].copy())
    np.testing.assert_array_equal(qimage_to_rgba(rgb)[..., :3], rgba[..., :3])
    with pytest.raises(ValueError, match="shape"):
        rgba_to_qimage(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        rgba_to_qimage(np.zeros((4, 4, 4), np.float32))


def test_mask_array_reads_alpha(stack: LayerStack) -> None:
    mask = stack.mask_layer()
    white = QImage(10, 4, QImage.Format.Format_ARGB32_Premultiplied)
    white.fill(QColor(255, 255, 255, 128))
    stack.set_pixels(mask.id, white, QPoint(3, 2))
    values = mask_array(stack)
    assert values is not None and values.shape == (128, 128) and values.dtype == np.uint8
    assert values[2, 3] == 128 and values[6, 3] == 0 and int(values.sum()) == 128 * 40
    stack.undo_stack.undo()
    assert mask_array(stack).max() == 0


def test_set_pixels_rejects_outside_and_wrong_size(stack: LayerStack) -> None:
    layer = stack.add_layer(LayerKind.IMAGE, "a")
    with pytest.raises(ValueError, match="outside"):
        stack.set_pixels(layer.id, QImage(4, 4, QImage.Format.Format_ARGB32_Premultiplied), QPoint(500, 0))
    with pytest.raises(ValueError, match="the canvas is 128x128"):
        stack.add_layer(LayerKind.IMAGE, "b", QImage(4, 4, QImage.Format.Format_ARGB32_Premultiplied))


def test_resize_canvas_crops_extends_and_undoes(stack: LayerStack) -> None:
    image = stack.add_layer(LayerKind.IMAGE, "img", filled(stack, QColor(10, 20, 30)))
    control = stack.add_layer(LayerKind.CONTROL, "map", filled(stack, QColor(255, 255, 255)), control_type="scribble")
    sizes: list[QSize] = []
    stack.canvas_size_changed.connect(sizes.append)
    stack.resize_canvas(QSize(160, 96))
    assert stack.canvas_size == QSize(160, 96) and sizes == [QSize(160, 96)]
    assert image.image.size() == QSize(160, 96)
    assert pixels(image.image)[10, 150, 3] == 0  # new area of an image layer is transparent
    assert control_array(control)[10, 150].tolist() == [0, 0, 0]  # control maps extend with black
    assert control_array(control)[10, 10].tolist() == [255, 255, 255]
    stack.undo_stack.undo()
    assert image.image.size() == QSize(128, 128) and pixels(image.image)[127, 127].tolist() == [10, 20, 30, 255]
    stack.resize_canvas(QSize(64, 64), scale_content=True)
    assert pixels(image.image)[63, 63].tolist() == [10, 20, 30, 255]
    with pytest.raises(ValueError, match="canvas size"):
        stack.resize_canvas(QSize(0, 10))


def test_reset_replaces_layers_and_clears_history(stack: LayerStack) -> None:
    stack.add_layer(LayerKind.IMAGE, "old")
    image = QImage(QSize(64, 32), QImage.Format.Format_ARGB32_Premultiplied)
    loaded = Layer(LayerKind.IMAGE, "loaded", image, layer_id="f" * 32, opacity=0.25)
    stack.reset(QSize(64, 32), [loaded])
    assert stack.layers() == [loaded] and stack.current is loaded and stack.rowCount() == 1
    assert not stack.undo_stack.canUndo() and stack.canvas_size == QSize(64, 32)


def test_scaling_the_canvas_scales_pose_keypoints_in_the_same_undo_step(stack: LayerStack) -> None:
    from engine.control import draw_pose
    from studio.canvas.derive import write_control_layer
    from tests.engine.control.images import stick_figure

    people = stick_figure()
    pose = write_control_layer(stack, draw_pose(people, 128, 128), people, "pose")
    stack.resize_canvas(QSize(256, 192), scale_content=True)
    scaled = pose.pose[0].body
    for before, after in zip(people[0].body, scaled):
        assert (before is None) == (after is None)
        if before is not None:
            assert (after.x, after.y, after.visibility) == (before.x * 2, before.y * 1.5, before.visibility)
    stack.resize_canvas(QSize(300, 300))  # crop/extend: keypoints stay where they are
    assert pose.pose[0].body == scaled
    stack.undo_stack.undo()
    stack.undo_stack.undo()  # one step takes back the scale and the keypoints together
    assert stack.canvas_size == QSize(128, 128) and pose.pose == people
