"""Tools on known pixels: brush (through the view), eraser, shapes, fill and picker, all undoable."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, QSize
from PySide6.QtGui import QColor, QImage

from studio.canvas.layers import Layer, LayerKind, LayerStack, control_array
from studio.canvas.tools import ToolKind, ToolSettings, begin_gesture
from studio.canvas.view import CanvasView
from tests.studio.canvas.helpers import drag, pixels

GREEN = QColor(0, 200, 0)


def gesture(stack: LayerStack, layer: Layer, settings: ToolSettings, kind: ToolKind,
            points: list[tuple[float, float]], pressure: float = 1.0) -> None:
    """Run one tool gesture through exact canvas points."""
    g = begin_gesture(kind, stack, layer, settings)
    assert g is not None
    g.press(QPointF(*points[0]), pressure)
    for x, y in points[1:]:
        g.move(QPointF(x, y), pressure)
    g.release(QPointF(*points[-1]), pressure)


def settings(**values: object) -> ToolSettings:
    tools = ToolSettings()
    for name, value in values.items():
        setattr(tools, name, value)
    return tools


def filled_layer(stack: LayerStack, color: QColor) -> Layer:
    image = QImage(stack.canvas_size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(color)
    return stack.add_layer(LayerKind.IMAGE, "filled", image)


def test_brush_stroke_through_view_changes_control_layer_and_undoes_exactly(view: CanvasView,
                                                                           stack: LayerStack) -> None:
    layer = stack.add_layer(LayerKind.CONTROL, "scribble", control_type="scribble")
    view.tools.brush_size = 9
    before = control_array(layer)
    drag(view, [(20, 64), (50, 64), (80, 64), (100, 64)])
    after = control_array(layer)
    assert after[64, 60].tolist() == [255, 255, 255]  # scribble maps paint white
    assert after[64 - 3, 60].tolist() == [255, 255, 255] and after[64 + 3, 60].tolist() == [255, 255, 255]
    assert after[50, 60].tolist() == [0, 0, 0] and after[64, 110].tolist() == [0, 0, 0]
    assert stack.undo_stack.count() == 2  # add layer + one command for the whole stroke
    view.canvas_actions.undo.trigger()
    np.testing.assert_array_equal(control_array(layer), before)
    view.canvas_actions.redo.trigger()
    np.testing.assert_array_equal(control_array(layer), after)


@pytest.mark.parametrize(("control_type", "painted"), [
    ("scribble", [255, 255, 255]), ("canny", [255, 255, 255]),  # line maps: white whatever the colour
    ("pose", [0, 200, 0]), ("tile", [0, 200, 0]), ("shuffle", [0, 200, 0]), ("seg", [0, 200, 0]),
])
def test_control_maps_whose_colours_mean_something_paint_in_the_chosen_colour(
        stack: LayerStack, control_type: str, painted: list[int]) -> None:
    layer = stack.add_layer(LayerKind.CONTROL, control_type, control_type=control_type)
    gesture(stack, layer, settings(brush_size=9, color=GREEN), ToolKind.BRUSH, [(20, 64), (100, 64)])
    assert control_array(layer)[64, 60].tolist() == painted
    gesture(stack, layer, settings(brush_size=9, color=GREEN), ToolKind.ERASER, [(20, 64), (100, 64)])
    assert control_array(layer)[64, 60].tolist() == [0, 0, 0]  # control maps erase to black


def test_brush_undo_keeps_only_the_changed_rectangle(stack: LayerStack) -> None:
    layer = stack.add_layer(LayerKind.IMAGE, "img")
    gesture(stack, layer, settings(brush_size=4), ToolKind.BRUSH, [(10, 10), (20, 12)])
    command = stack.undo_stack.command(stack.undo_stack.count() - 1)
    rect = command.rect
    assert rect.width() < 20 and rect.height() < 12 and rect.contains(15, 11)


def test_brush_opacity_does_not_build_up_where_segments_overlap(stack: LayerStack) -> None:
    layer = stack.add_layer(LayerKind.IMAGE, "img")
    tools = settings(brush_size=10, opacity=0.5, color=QColor(255, 0, 0))
    gesture(stack, layer, tools, ToolKind.BRUSH, [(20, 20), (40, 20), (40, 40), (20, 20)])
    alpha = pixels(layer.image)[..., 3]
    assert alpha[20, 30] == pytest.approx(128, abs=1) and alpha[20, 40] == pytest.approx(128, abs=1)
    assert alpha.max() <= 129


def test_soft_brush_fades_and_pressure_shrinks(stack: LayerStack) -> None:
    layer = stack.add_layer(LayerKind.IMAGE, "img")
    gesture(stack, layer, settings(brush_size=20, hardness=0.0), ToolKind.BRUSH, [(30, 30), (30, 31)])
    alpha = pixels(layer.image)[..., 3].astype(int)
    assert alpha[30, 30] > 200 and 0 < alpha[30, 37] < alpha[30, 33] < alpha[30, 30]
    hard = stack.add_layer(LayerKind.IMAGE, "hard")
    gesture(stack, hard, settings(brush_size=20), ToolKind.BRUSH, [(80, 80), (80, 81)], pressure=0.5)
    alpha = pixels(hard.image)[..., 3]
    assert alpha[80, 80] == pytest.approx(128, abs=1)  # pressure scales opacity...
    assert alpha[80, 86] == 0 and alpha[80, 83] > 0  # ...and size (radius 5 instead of 10)


def test_eraser_clears_image_and_blackens_control(stack: LayerStack) -> None:
    image = filled_layer(stack, QColor(255, 0, 0))
    gesture(stack, image, settings(brush_size=6), ToolKind.ERASER, [(10, 50), (60, 50)])
    rgba = pixels(image.image)
    assert rgba[50, 30, 3] == 0 and rgba[40, 30].tolist() == [255, 0, 0, 255]
    white = QImage(stack.canvas_size, QImage.Format.Format_ARGB32_Premultiplied)
    white.fill(QColor(255, 255, 255))
    control = stack.add_layer(LayerKind.CONTROL, "edges", white, control_type="canny")
    gesture(stack, control, settings(brush_size=6), ToolKind.ERASER, [(10, 50), (60, 50)])
    assert control_array(control)[50, 30].tolist() == [0, 0, 0] and control_array(control)[40, 30].tolist() == [255] * 3
    stack.undo_stack.undo()
    assert control_array(control).min() == 255


def test_line_rect_ellipse_on_known_pixels(stack: LayerStack) -> None:
    tools = settings(brush_size=3, color=GREEN)
    line = stack.add_layer(LayerKind.IMAGE, "line")
    gesture(stack, line, tools, ToolKind.LINE, [(10, 10), (60, 80), (110, 110)])  # only the end point counts
    rgba = pixels(line.image)
    assert rgba[60, 60].tolist() == [0, 200, 0, 255] and rgba[80, 60, 3] == 0
    rect = stack.add_layer(LayerKind.IMAGE, "rect")
    gesture(stack, rect, tools, ToolKind.RECT, [(20, 20), (100, 80)])
    rgba = pixels(rect.image)
    assert rgba[20, 60, 3] == 255 and rgba[50, 100, 3] == 255 and rgba[50, 60, 3] == 0 and rgba[90, 60, 3] == 0
    ellipse = stack.add_layer(LayerKind.IMAGE, "ellipse")
    tools.fill_shapes = True
    gesture(stack, ellipse, tools, ToolKind.ELLIPSE, [(20, 20), (100, 100)])
    rgba = pixels(ellipse.image)
    assert rgba[60, 60].tolist() == [0, 200, 0, 255] and rgba[60, 21, 3] == 255
    assert rgba[22, 22, 3] == 0  # the corner of the box lies outside the ellipse
    stack.undo_stack.undo()
    assert pixels(ellipse.image)[..., 3].max() == 0


def test_fill_stays_inside_an_outline(stack: LayerStack) -> None:
    layer = stack.add_layer(LayerKind.IMAGE, "img")
    gesture(stack, layer, settings(brush_size=2, color=QColor(255, 255, 255)), ToolKind.RECT, [(30, 30), (90, 90)])
    gesture(stack, layer, settings(color=QColor(255, 0, 0), fill_tolerance=0), ToolKind.FILL, [(60, 60)])
    rgba = pixels(layer.image)
    assert rgba[60, 60].tolist() == [255, 0, 0, 255] and rgba[32, 32].tolist() == [255, 0, 0, 255]
    assert rgba[30, 60].tolist() == [255, 255, 255, 255]  # the outline is kept
    assert rgba[10, 10, 3] == 0 and rgba[100, 100, 3] == 0  # outside is untouched
    stack.undo_stack.undo()
    assert pixels(layer.image)[60, 60, 3] == 0


def test_fill_tolerance_joins_similar_colours(stack: LayerStack) -> None:
    image = QImage(QSize(128, 128), QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(QColor(100, 100, 100))
    image.setPixelColor(64, 64, QColor(110, 100, 100))
    layer = stack.add_layer(LayerKind.IMAGE, "img", image)
    gesture(stack, layer, settings(color=QColor(0, 0, 255), fill_tolerance=5), ToolKind.FILL, [(1, 1)])
    assert pixels(layer.image)[64, 64].tolist() == [110, 100, 100, 255]
    gesture(stack, layer, settings(color=QColor(0, 0, 255), fill_tolerance=20), ToolKind.FILL, [(64, 64)])
    assert pixels(layer.image)[64, 64].tolist() == [0, 0, 255, 255]


def test_segmentation_layer_keeps_flat_colours(stack: LayerStack) -> None:
    seg = stack.add_layer(LayerKind.CONTROL, "seg", control_type="seg")
    tools = settings(brush_size=15, color=QColor(120, 120, 70), opacity=0.3, hardness=0.2)
    gesture(stack, seg, tools, ToolKind.BRUSH, [(20, 20), (90, 70)])
    gesture(stack, seg, tools, ToolKind.ELLIPSE, [(60, 60), (120, 120)])
    colours = {tuple(c) for c in control_array(seg).reshape(-1, 3).tolist()}
    assert colours == {(0, 0, 0), (120, 120, 70)}


def test_picker_reads_the_visible_picture_or_the_control_map(stack: LayerStack) -> None:
    filled_layer(stack, QColor(255, 0, 0))
    top = filled_layer(stack, QColor(0, 0, 255))
    stack.set_opacity(top.id, 0.5)
    tools = settings(tool=ToolKind.PICKER)
    gesture(stack, top, tools, ToolKind.PICKER, [(5, 5)])
    assert (tools.color.red(), tools.color.green(), tools.color.blue()) == pytest.approx((128, 0, 127), abs=1)
    seg = stack.add_layer(LayerKind.CONTROL, "seg", control_type="seg")
    gesture(stack, seg, settings(color=QColor(4, 200, 3)), ToolKind.FILL, [(0, 0)])
    gesture(stack, seg, tools, ToolKind.PICKER, [(5, 5)])
    assert tools.color == QColor(4, 200, 3)


def test_tool_settings_validate_and_signal(qapp) -> None:
    tools = ToolSettings()
    seen: list[int] = []
    tools.brush_size_changed.connect(seen.append)
    tools.brush_size = 40
    assert tools.step_brush_size(+1) == 46 and tools.step_brush_size(-1) == 39
    assert seen == [40, 46, 39]
    for name, value in (("brush_size", 0), ("hardness", 1.5), ("opacity", -0.1), ("fill_tolerance", 300)):
        with pytest.raises(ValueError):
            setattr(tools, name, value)
    tools.brush_size = 1
    assert tools.step_brush_size(-1) == 1
