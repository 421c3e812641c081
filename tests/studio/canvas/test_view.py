"""The canvas view: rendering, zoom, pan, shortcuts, preview, tablet input and importing pictures."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, QRect, QRectF, QSize, Qt, QUrl
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
    QPainter,
    QPointingDevice,
    QTabletEvent,
    QWheelEvent,
)
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from engine.control import draw_pose
from engine.control.pose import COLORS, LIMB_SHADE
from studio.canvas.derive import write_control_layer
from studio.canvas.layers import LayerKind, LayerStack, control_array
from studio.canvas.tools import ToolKind
from studio.canvas.view import CanvasView
from tests.engine.control.images import stick_figure
from tests.studio.canvas.helpers import drag, pixels, to_viewport


def solid(size: QSize, color: QColor) -> QImage:
    image = QImage(size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(color)
    return image


def viewport_pixel(view: CanvasView, x: float, y: float) -> QColor:
    """The colour the view shows at canvas point (x, y)."""
    QApplication.processEvents()
    return view.viewport().grab().toImage().pixelColor(to_viewport(view, x, y))


def wheel(view: CanvasView, at: QPoint, notches: float) -> None:
    event = QWheelEvent(QPointF(at), QPointF(view.viewport().mapToGlobal(at)), QPoint(0, 0),
                        QPoint(0, int(120 * notches)), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), event)


def test_view_renders_layers_and_tinted_control_overlay(view: CanvasView, stack: LayerStack) -> None:
    assert view.scene().parent() is view  # a parentless scene renders blank
    stack.add_layer(LayerKind.IMAGE, "bg", solid(stack.canvas_size, QColor(0, 0, 200)))
    control = stack.add_layer(LayerKind.CONTROL, "scribble", control_type="scribble")
    assert viewport_pixel(view, 64, 64) == QColor(0, 0, 200)  # black control pixels stay transparent
    view.tools.brush_size = 20
    drag(view, [(30, 64), (100, 64)])
    shown = viewport_pixel(view, 64, 64)
    tint, opacity = control.tint, control.opacity
    below = ((tint.red(), 0), (tint.green(), 0), (tint.blue(), 200))
    expected = [round(t * opacity + b * (1 - opacity)) for t, b in below]
    assert [shown.red(), shown.green(), shown.blue()] == pytest.approx(expected, abs=3)
    stack.set_visible(control.id, False)
    assert viewport_pixel(view, 64, 64) == QColor(0, 0, 200)


def test_wheel_zooms_around_the_pointer(view: CanvasView) -> None:
    start = view.zoom()
    anchor = to_viewport(view, 32, 32)
    seen: list[float] = []
    view.zoom_changed.connect(seen.append)
    wheel(view, anchor, 1)
    assert view.zoom() == pytest.approx(start * 1.2) and seen == [pytest.approx(start * 1.2)]
    assert to_viewport(view, 32, 32).x() == pytest.approx(anchor.x(), abs=2)
    wheel(view, anchor, -2)
    assert view.transform().m11() == pytest.approx(start / 1.2)


def test_middle_drag_and_space_drag_pan(view: CanvasView, stack: LayerStack) -> None:
    layer = stack.add_layer(LayerKind.IMAGE, "img")
    view.set_zoom(4.0)
    before = to_viewport(view, 64, 64)
    vp = view.viewport()
    QTest.mousePress(vp, Qt.MouseButton.MiddleButton, Qt.KeyboardModifier.NoModifier, QPoint(200, 200))
    QTest.mouseMove(vp, QPoint(150, 180))
    QTest.mouseRelease(vp, Qt.MouseButton.MiddleButton, Qt.KeyboardModifier.NoModifier, QPoint(150, 180))
    assert to_viewport(view, 64, 64) - before == QPoint(-50, -20)
    before = to_viewport(view, 64, 64)
    QTest.keyPress(view, Qt.Key.Key_Space)
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(100, 100))
    QTest.mouseMove(vp, QPoint(130, 110))
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(130, 110))
    QTest.keyRelease(view, Qt.Key.Key_Space)
    assert to_viewport(view, 64, 64) - before == QPoint(30, 10)
    assert pixels(layer.image)[..., 3].max() == 0  # panning never paints


def test_shortcuts_choose_tools_size_and_undo(qtbot, view: CanvasView, stack: LayerStack) -> None:
    view.activateWindow()
    view.setFocus()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is view)
    QTest.keyClick(view, Qt.Key.Key_E)
    assert view.tools.tool is ToolKind.ERASER and view.canvas_actions.eraser.isChecked()
    QTest.keyClick(view, Qt.Key.Key_B)
    assert view.tools.tool is ToolKind.BRUSH
    size = view.tools.brush_size
    QTest.keyClick(view, Qt.Key.Key_BracketRight)
    assert view.tools.brush_size > size
    QTest.keyClick(view, Qt.Key.Key_BracketLeft)
    QTest.keyClick(view, Qt.Key.Key_BracketLeft)
    assert view.tools.brush_size < size
    stack.add_layer(LayerKind.IMAGE, "a")
    QTest.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert stack.layers() == []
    QTest.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert len(stack.layers()) == 1
    texts = {a.text() for a in view.actions()}
    assert {"&Brush", "&Eraser", "Smaller Brush", "Larger Brush"} <= texts


def test_undo_during_a_stroke_ends_it_first(view: CanvasView, stack: LayerStack) -> None:
    layer = stack.add_layer(LayerKind.IMAGE, "img")
    vp = view.viewport()
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, to_viewport(view, 20, 20))
    QTest.mouseMove(vp, to_viewport(view, 60, 20))
    view.canvas_actions.undo.trigger()  # the stroke becomes a step and is undone
    assert pixels(layer.image)[..., 3].max() == 0
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, to_viewport(view, 60, 20))
    assert pixels(layer.image)[..., 3].max() == 0
    view.canvas_actions.redo.trigger()
    assert pixels(layer.image)[20, 40, 3] == 255


def test_hidden_or_missing_layer_is_not_painted(view: CanvasView, stack: LayerStack) -> None:
    messages: list[str] = []
    view.status_message.connect(messages.append)
    drag(view, [(10, 10), (50, 50)])
    layer = stack.add_layer(LayerKind.IMAGE, "img")
    stack.set_visible(layer.id, False)
    drag(view, [(10, 10), (50, 50)])
    assert pixels(layer.image)[..., 3].max() == 0 and len(messages) == 2 and "hidden" in messages[1]


def test_tablet_pressure_scales_the_brush(view: CanvasView, stack: LayerStack) -> None:
    layer = stack.add_layer(LayerKind.IMAGE, "img")
    view.tools.brush_size = 20
    device = QPointingDevice.primaryPointingDevice()

    def send(kind: QEvent.Type, x: float, button: Qt.MouseButton) -> None:
        pos = QPointF(to_viewport(view, x, 64))
        event = QTabletEvent(kind, device, pos, pos, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0,
                             Qt.KeyboardModifier.NoModifier, button, Qt.MouseButton.LeftButton)
        QApplication.sendEvent(view.viewport(), event)

    send(QEvent.Type.TabletPress, 30, Qt.MouseButton.LeftButton)
    send(QEvent.Type.TabletMove, 90, Qt.MouseButton.NoButton)
    send(QEvent.Type.TabletRelease, 90, Qt.MouseButton.LeftButton)
    alpha = pixels(layer.image)[..., 3]
    assert alpha[64, 60] == pytest.approx(128, abs=2)  # half pressure, half opacity
    assert alpha[64 - 8, 60] == 0 and alpha[64 - 3, 60] > 0  # and half the size
    assert stack.undo_stack.count() == 2


def test_preview_shows_above_layers_and_hides(view: CanvasView, stack: LayerStack) -> None:
    stack.add_layer(LayerKind.IMAGE, "bg", solid(stack.canvas_size, QColor(0, 0, 200)))
    view.set_preview(solid(QSize(8, 8), QColor(250, 250, 0)), QRect(0, 0, 64, 64))
    assert view.preview_item().isVisible() and view.preview_item().target == QRect(0, 0, 64, 64)
    assert viewport_pixel(view, 32, 32) == QColor(250, 250, 0)
    assert viewport_pixel(view, 100, 100) == QColor(0, 0, 200)
    view.set_preview(solid(QSize(8, 8), QColor(0, 250, 0)))  # no rect: the whole canvas
    assert viewport_pixel(view, 100, 100) == QColor(0, 250, 0)
    view.set_preview(None)
    assert not view.preview_item().isVisible() and viewport_pixel(view, 32, 32) == QColor(0, 0, 200)


def test_import_qimage_is_scaled_down_and_centred(view: CanvasView, stack: LayerStack) -> None:
    wide = solid(QSize(256, 128), QColor(255, 0, 0))
    layer = view.import_image(wide)
    rgba = pixels(layer.image)
    assert layer.kind is LayerKind.IMAGE and layer.image.size() == stack.canvas_size
    assert rgba[64, 64].tolist() == [255, 0, 0, 255] and rgba[10, 64, 3] == 0 and rgba[120, 64, 3] == 0
    assert rgba[33, 64, 3] == 255 and rgba[94, 64, 3] == 255
    small = view.import_image(solid(QSize(10, 10), QColor(0, 255, 0)))
    assert pixels(small.image)[..., 3].sum() == 100 * 255  # smaller pictures stay pixel for pixel
    view.canvas_actions.undo.trigger()
    assert stack.layers() == [layer]


def test_import_from_file_and_errors(view: CanvasView, stack: LayerStack, tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    assert solid(QSize(128, 128), QColor(1, 2, 3)).save(str(path))
    layer = view.import_image(path)
    assert layer.name == "photo" and pixels(layer.image)[5, 5].tolist() == [1, 2, 3, 255]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):
        view.import_image(broken)
    with pytest.raises(ValueError, match="no image file"):
        view.import_image(tmp_path / "missing.png")


def test_paste_from_clipboard(view: CanvasView, stack: LayerStack) -> None:
    QGuiApplication.clipboard().setImage(solid(QSize(128, 128), QColor(9, 8, 7)))
    layers = view.paste()
    assert len(layers) == 1 and pixels(layers[0].image)[0, 0].tolist() == [9, 8, 7, 255]
    QGuiApplication.clipboard().setText("just text")
    messages: list[str] = []
    view.status_message.connect(messages.append)
    assert view.paste() == [] and messages == ["The clipboard holds no image"]


def test_drop_of_an_image_file(view: CanvasView, stack: LayerStack, tmp_path: Path) -> None:
    path = tmp_path / "dropped.png"
    assert solid(QSize(64, 64), QColor(0, 255, 0)).save(str(path))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    with warnings.catch_warnings():  # PySide6 6.12 deprecates the QPoint form, older ones lack QPointF
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(QPoint(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(view.viewport(), enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(view.viewport(), drop)
    assert [layer.name for layer in stack.layers()] == ["dropped"]
    assert pixels(stack.layers()[0].image)[64, 64].tolist() == [0, 255, 0, 255]


def test_view_rejects_a_foreign_undo_stack(qapp, stack: LayerStack) -> None:
    from PySide6.QtGui import QUndoStack

    with pytest.raises(ValueError, match="undo stack"):
        CanvasView(stack, QUndoStack())


def test_control_overlay_follows_undo(view: CanvasView, stack: LayerStack) -> None:
    control = stack.add_layer(LayerKind.CONTROL, "scribble", control_type="scribble")
    drag(view, [(30, 64), (100, 64)])
    item = view.layer_item(control.id)
    assert pixels(item.displayed_image())[64, 64, 3] == 255
    view.canvas_actions.undo.trigger()
    assert pixels(item.displayed_image())[..., 3].max() == 0 and control_array(control).max() == 0
    np.testing.assert_array_equal(pixels(item.displayed_image())[..., 3], 0)


def test_changing_control_type_redraws_the_overlay(view: CanvasView, stack: LayerStack) -> None:
    control = stack.add_layer(LayerKind.CONTROL, "map", solid(stack.canvas_size, QColor(10, 200, 30)),
                              control_type="scribble")
    item = view.layer_item(control.id)
    tint = control.tint
    shown = pixels(item.displayed_image())[5, 5].tolist()  # the tint, as strong as the map is bright
    assert shown == pytest.approx([tint.red(), tint.green(), tint.blue(), 200], abs=2)
    stack.set_control_type(control.id, "seg")  # segmentation maps show their own colours
    assert pixels(item.displayed_image())[5, 5].tolist() == [10, 200, 30, 255]
    stack.undo_stack.undo()
    assert control.control_type == "scribble" and pixels(item.displayed_image())[5, 5, 3] == 200
    with pytest.raises(ValueError, match="not a control layer"):
        stack.set_control_type(stack.add_layer(LayerKind.IMAGE, "img").id, "seg")


def test_double_click_paints_a_second_dab(view: CanvasView, stack: LayerStack) -> None:
    layer = stack.add_layer(LayerKind.IMAGE, "img")
    vp, at = view.viewport(), to_viewport(view, 64, 64)
    left, none = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    QTest.mousePress(vp, left, none, at)  # what a real double click delivers
    QTest.mouseRelease(vp, left, none, at)
    QTest.mouseDClick(vp, left, none, at)
    QTest.mouseRelease(vp, left, none, at)
    assert pixels(layer.image)[64, 64, 3] == 255 and stack.undo_stack.count() == 3  # add + two dabs


def rendered(view: CanvasView) -> np.ndarray:
    """The scene's canvas area drawn 1:1 into an image, as straight (H, W, 4) RGBA."""
    size = view.stack.canvas_size
    image = QImage(size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    area = QRectF(0, 0, size.width(), size.height())
    view.scene().render(painter, area, area)
    painter.end()
    return pixels(image)


def test_pose_layers_show_their_own_colours_other_maps_the_tint(view: CanvasView, stack: LayerStack) -> None:
    stack.add_layer(LayerKind.IMAGE, "bg", solid(stack.canvas_size, QColor(0, 0, 200)))
    people = stick_figure()
    pose = write_control_layer(stack, draw_pose(people, 128, 128), people, "pose")
    stack.set_current(stack.layers()[0].id)  # no joint handles over the picture
    limb = [round(c * LIMB_SHADE) for c in COLORS[0]]  # neck -> right shoulder, through (54, 40)
    assert pixels(view.layer_item(pose.id).displayed_image())[40, 54].tolist() == [*limb, 255]
    opacity = pose.opacity
    expected = [round(c * opacity + b * (1 - opacity)) for c, b in zip(limb, (0, 0, 200))]
    assert rendered(view)[40, 54, :3].tolist() == pytest.approx(expected, abs=2)
    assert rendered(view)[120, 10, :3].tolist() == [0, 0, 200]  # black map pixels are see-through
    stack.set_opacity(pose.id, 1.0)
    assert rendered(view)[40, 54, :3].tolist() == limb
    stack.set_control_type(pose.id, "canny")  # the same pixels as a line map: the tint
    tint = pose.tint
    shown = rendered(view)[40, 54, :3].tolist()
    strength = max(limb) / 255
    tinted = [round(t * strength + b * (1 - strength)) for t, b in zip((tint.red(), tint.green(), tint.blue()),
                                                                       (0, 0, 200))]
    assert shown == pytest.approx(tinted, abs=2)
    stack.undo_stack.undo()
    assert rendered(view)[40, 54, :3].tolist() == limb
    stack.set_visible(pose.id, False)
    assert rendered(view)[40, 54, :3].tolist() == [0, 0, 200]
