"""Canvas tools: the observable tool settings and one small gesture class per tool, each painting
straight onto a layer's QImage and pushing one undo command per gesture."""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np
from PySide6.QtCore import QObject, QPoint, QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPen, QRadialGradient

from studio.canvas.imaging import alpha8_view, gray_to_alpha8, paint_coverage
from studio.canvas.layers import Layer, LayerKind, LayerStack
from studio.canvas.undo import EditSession

MAX_BRUSH_SIZE = 2048
_Mode = QPainter.CompositionMode


class ToolKind(enum.Enum):
    """The tools of the canvas."""

    BRUSH = "brush"
    ERASER = "eraser"
    LINE = "line"
    RECT = "rect"
    ELLIPSE = "ellipse"
    FILL = "fill"
    PICKER = "picker"


def _observable(name: str, check: Callable[[Any], Any]) -> property:
    """A property that validates with `check`, stores `_<name>` and emits `<name>_changed`."""

    def getter(self: ToolSettings) -> Any:
        return getattr(self, f"_{name}")

    def setter(self: ToolSettings, value: Any) -> None:
        value = check(value)
        if value != getattr(self, f"_{name}"):
            setattr(self, f"_{name}", value)
            getattr(self, f"{name}_changed").emit(value)

    return property(getter, setter, doc=f"The current {name.replace('_', ' ')}; emits {name}_changed.")


def _unit(name: str) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{name} must be within [0, 1], got {value}")
        return float(value)
    return check


def _brush_size(value: Any) -> int:
    if int(value) != value or not 1 <= value <= MAX_BRUSH_SIZE:
        raise ValueError(f"brush size must be an integer within 1..{MAX_BRUSH_SIZE}, got {value}")
    return int(value)


def _tolerance(value: Any) -> int:
    if int(value) != value or not 0 <= value <= 255:
        raise ValueError(f"fill tolerance must be an integer within 0..255, got {value}")
    return int(value)


class ToolSettings(QObject):
    """What the tools paint with: the tool, brush size/hardness/opacity, colour and options."""

    tool_changed = Signal(object)  # ToolKind
    brush_size_changed = Signal(int)
    color_changed = Signal(QColor)
    hardness_changed = Signal(float)
    opacity_changed = Signal(float)
    fill_shapes_changed = Signal(bool)
    fill_tolerance_changed = Signal(int)
    pressure_size_changed = Signal(bool)
    pressure_opacity_changed = Signal(bool)

    tool = _observable("tool", ToolKind)
    brush_size = _observable("brush_size", _brush_size)
    color = _observable("color", QColor)
    hardness = _observable("hardness", _unit("hardness"))
    opacity = _observable("opacity", _unit("opacity"))
    fill_shapes = _observable("fill_shapes", bool)
    fill_tolerance = _observable("fill_tolerance", _tolerance)
    pressure_size = _observable("pressure_size", bool)
    pressure_opacity = _observable("pressure_opacity", bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._tool, self._brush_size, self._color = ToolKind.BRUSH, 24, QColor(255, 255, 255)
        self._hardness, self._opacity = 1.0, 1.0
        self._fill_shapes, self._fill_tolerance = False, 32
        self._pressure_size, self._pressure_opacity = True, True

    def step_brush_size(self, direction: int) -> int:
        """Grow (+1) or shrink (-1) the brush by about 15%, staying within the allowed sizes."""
        size = self._brush_size
        step = max(1, round(size * 0.15))
        self.brush_size = min(MAX_BRUSH_SIZE, max(1, size + step * (1 if direction > 0 else -1)))
        return self._brush_size


@dataclass(frozen=True)
class PaintStyle:
    """How a gesture paints on one layer: colour, composition, opacity and edge quality."""

    color: QColor
    mode: QPainter.CompositionMode
    opacity: float
    antialias: bool
    hardness: float


def paint_style(layer: Layer, settings: ToolSettings, erase: bool = False) -> PaintStyle:
    """The style for painting (or erasing) on `layer`: masks and line maps (scribble, edges) paint
    white; maps whose colours mean something (segments, pose limbs, tile and shuffle pictures) paint in
    the chosen colour; control maps erase to black; segmentation maps stay flat (hard, opaque, no
    antialiasing)."""
    if layer.kind is LayerKind.CONTROL:
        own = layer.control is not None and layer.control.own_colours
        color = QColor(0, 0, 0) if erase else (QColor(settings.color) if own else QColor(255, 255, 255))
        mode = _Mode.CompositionMode_SourceOver
    else:
        color = QColor(255, 255, 255) if layer.kind is LayerKind.MASK else QColor(settings.color)
        mode = _Mode.CompositionMode_DestinationOut if erase else _Mode.CompositionMode_SourceOver
        if erase:
            color = QColor(0, 0, 0)
    if layer.is_flat:
        color.setAlpha(255)
        return PaintStyle(color, mode, 1.0, False, 1.0)
    return PaintStyle(color, mode, settings.opacity, True, settings.hardness)


class Gesture(Protocol):
    """One press-move-release interaction of a tool with the canvas (positions in canvas pixels)."""

    def press(self, pos: QPointF, pressure: float) -> None: ...
    def move(self, pos: QPointF, pressure: float) -> None: ...
    def release(self, pos: QPointF, pressure: float) -> None: ...
    def cancel(self) -> None: ...


def _rect_around(a: QPointF, b: QPointF, margin: float) -> QRect:
    """The pixel rectangle covering the segment a-b grown by `margin`."""
    left, top = min(a.x(), b.x()) - margin, min(a.y(), b.y()) - margin
    right, bottom = max(a.x(), b.x()) + margin, max(a.y(), b.y()) + margin
    return QRectF(left, top, right - left, bottom - top).toAlignedRect()


class BrushStroke:
    """Brush or eraser: dabs build a coverage map (maximum, so overlaps never darken), which is then
    composited over the before-pixels with the tool opacity, only inside each segment's rectangle."""

    def __init__(self, stack: LayerStack, layer: Layer, settings: ToolSettings, erase: bool = False) -> None:
        self._session = EditSession(stack, layer)
        self._style = paint_style(layer, settings, erase)
        self._settings, self._erase = settings, erase
        self._coverage = QImage(layer.image.size(), QImage.Format.Format_Alpha8)
        self._coverage.fill(0)
        self._coverage_array = alpha8_view(self._coverage)  # (H, W), alive with self._coverage
        self._spacing = max(1.0, 0.05 * settings.brush_size)  # dense enough that soft edges do not scallop
        self._last: tuple[QPointF, float] | None = None
        self._to_next_dab = 0.0

    def _radius(self, pressure: float) -> float:
        scale = pressure if self._settings.pressure_size else 1.0
        return max(0.5, self._settings.brush_size * scale / 2)

    def _alpha(self, pressure: float) -> int:
        return round(255 * (pressure if self._settings.pressure_opacity else 1.0))

    def press(self, pos: QPointF, pressure: float) -> None:
        """Start the stroke with one dab."""
        self._last = (QPointF(pos), pressure)
        self._to_next_dab = 0.0
        self._segment(QPointF(pos), pressure, QPointF(pos), pressure)

    def move(self, pos: QPointF, pressure: float) -> None:
        """Paint the segment from the last position to `pos`."""
        if self._last is None:
            return self.press(pos, pressure)
        start, start_pressure = self._last
        self._last = (QPointF(pos), pressure)
        self._segment(start, start_pressure, QPointF(pos), pressure)

    def release(self, pos: QPointF, pressure: float) -> None:
        """Finish the stroke: one undo command for all of it."""
        if self._last is not None and self._last[0] != pos:
            self.move(pos, pressure)
        self._session.commit("Eraser stroke" if self._erase else "Brush stroke")

    def cancel(self) -> None:
        """Undo the stroke's pixels without leaving a command."""
        self._session.cancel()

    def _segment(self, a: QPointF, pa: float, b: QPointF, pb: float) -> None:
        margin = self._radius(max(pa, pb)) + 2
        rect = _rect_around(a, b, margin).intersected(self._coverage.rect())
        if rect.isEmpty():
            return
        dab = QImage(rect.size(), QImage.Format.Format_Alpha8)
        dab.fill(0)
        painter = QPainter(dab)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, self._style.antialias)
        painter.translate(-rect.x(), -rect.y())
        if self._style.hardness >= 1.0:
            self._hard_segment(painter, a, pa, b, pb)
        else:
            self._soft_segment(painter, a, pa, b, pb)
        painter.end()
        covered = self._coverage_array[rect.top():rect.bottom() + 1, rect.left():rect.right() + 1]
        np.maximum(covered, alpha8_view(dab), out=covered)
        self._session.restore(rect)
        paint_coverage(self._session.layer.image, rect, self._coverage, self._style.color,
                       self._style.mode, self._style.opacity)
        self._session.touch(rect)

    def _hard_segment(self, painter: QPainter, a: QPointF, pa: float, b: QPointF, pb: float) -> None:
        pressure = (pa + pb) / 2
        ink = QColor(0, 0, 0, self._alpha(pressure))
        radius = self._radius(pressure)
        if a == b:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(ink)
            painter.drawEllipse(a, radius, radius)
            return
        pen = QPen(ink, 2 * radius, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin)
        painter.setPen(pen)
        painter.drawLine(a, b)

    def _soft_segment(self, painter: QPainter, a: QPointF, pa: float, b: QPointF, pb: float) -> None:
        painter.setPen(Qt.PenStyle.NoPen)
        length = math.hypot(b.x() - a.x(), b.y() - a.y())
        distance = self._to_next_dab
        while distance <= length:
            t = distance / length if length else 0.0
            pressure = pa + (pb - pa) * t
            center = a + (b - a) * t
            radius = self._radius(pressure)
            gradient = QRadialGradient(center, radius)
            ink = QColor(0, 0, 0, self._alpha(pressure))
            gradient.setColorAt(0.0, ink)
            gradient.setColorAt(self._style.hardness, ink)
            gradient.setColorAt(1.0, QColor(0, 0, 0, 0))
            painter.setBrush(QBrush(gradient))
            painter.drawEllipse(center, radius, radius)
            distance += self._spacing
        self._to_next_dab = distance - length


class ShapeStroke:
    """Line, rectangle or ellipse from the press point to the pointer, redrawn live over the
    before-pixels and committed on release."""

    def __init__(self, stack: LayerStack, layer: Layer, settings: ToolSettings, kind: ToolKind) -> None:
        if kind not in (ToolKind.LINE, ToolKind.RECT, ToolKind.ELLIPSE):
            raise ValueError(f"{kind} is not a shape tool")
        self._session = EditSession(stack, layer)
        self._style = paint_style(layer, settings)
        self._kind, self._width = kind, settings.brush_size
        self._filled = settings.fill_shapes and kind is not ToolKind.LINE
        self._start = QPointF()
        self._shown = QRect()

    def press(self, pos: QPointF, pressure: float) -> None:
        """Anchor the shape."""
        self._start = QPointF(pos)

    def move(self, pos: QPointF, pressure: float) -> None:
        """Show the shape up to `pos`."""
        self._draw(QPointF(pos))

    def release(self, pos: QPointF, pressure: float) -> None:
        """Draw the final shape and push it as one undo command."""
        self._draw(QPointF(pos))
        self._session.commit(f"{self._kind.value.capitalize()}")

    def cancel(self) -> None:
        """Remove the shape without leaving a command."""
        self._session.cancel()

    def _draw(self, end: QPointF) -> None:
        self._session.restore(self._shown)
        ink = QColor(self._style.color)
        painter = QPainter(self._session.layer.image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, self._style.antialias)
        painter.setCompositionMode(self._style.mode)
        painter.setOpacity(self._style.opacity)
        painter.setPen(QPen(ink, self._width, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                            Qt.PenJoinStyle.MiterJoin if self._kind is ToolKind.RECT else Qt.PenJoinStyle.RoundJoin))
        painter.setBrush(QBrush(ink) if self._filled else Qt.BrushStyle.NoBrush)
        box = QRectF(self._start, end).normalized()
        if self._kind is ToolKind.LINE:
            painter.drawLine(self._start, end)
        elif self._kind is ToolKind.RECT:
            painter.drawRect(box)
        else:
            painter.drawEllipse(box)
        painter.end()
        drawn = _rect_around(self._start, end, self._width / 2 + 2)
        self._session.touch(drawn.united(self._shown))
        self._shown = drawn


class FillGesture:
    """Flood fill: the 4-connected region of pixels within the tolerance of the clicked pixel."""

    def __init__(self, stack: LayerStack, layer: Layer, settings: ToolSettings) -> None:
        self._session = EditSession(stack, layer)
        self._style = paint_style(layer, settings)
        self._tolerance = settings.fill_tolerance

    def press(self, pos: QPointF, pressure: float) -> None:
        """Fill the region under `pos` and push it as one undo command."""
        image = self._session.layer.image
        x, y = math.floor(pos.x()), math.floor(pos.y())
        if not image.rect().contains(x, y):
            return
        region = flood_region(image, x, y, self._tolerance)  # (H, W) bool
        ys, xs = np.nonzero(region)
        rect = QRect(int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
        coverage = gray_to_alpha8(region.astype(np.uint8) * 255)
        paint_coverage(image, rect, coverage, self._style.color, self._style.mode, self._style.opacity)
        self._session.touch(rect)
        self._session.commit("Fill")

    def move(self, pos: QPointF, pressure: float) -> None:
        """Nothing: a fill happens on press."""

    def release(self, pos: QPointF, pressure: float) -> None:
        """Nothing: a fill happens on press."""

    def cancel(self) -> None:
        """Nothing to cancel: the fill is already one undoable step."""


def flood_region(image: QImage, x: int, y: int, tolerance: int) -> np.ndarray:
    """The (H, W) bool region 4-connected to (x, y) whose premultiplied ARGB channels all differ
    from the seed pixel's by at most `tolerance`."""
    converted = image.convertToFormat(QImage.Format.Format_RGBA8888_Premultiplied)
    h, w = converted.height(), converted.width()
    flat = np.frombuffer(converted.constBits(), np.uint8, count=converted.bytesPerLine() * h)
    pixels = flat.reshape(h, converted.bytesPerLine())[:, : w * 4].reshape(h, w, 4)  # (H, W, 4)
    diff = np.abs(pixels.astype(np.int16) - pixels[y, x].astype(np.int16)).max(axis=2)  # (H, W)
    similar = (diff <= tolerance).astype(np.uint8)
    mask = np.zeros((h + 2, w + 2), np.uint8)
    cv2.floodFill(similar, mask, (x, y), 2, 0, 0, 4 | cv2.FLOODFILL_MASK_ONLY | (1 << 8))
    return mask[1:-1, 1:-1].astype(bool)


class PickGesture:
    """Colour picker: control layers give their own map colour, other layers the visible picture."""

    def __init__(self, stack: LayerStack, layer: Layer | None, settings: ToolSettings) -> None:
        self._stack, self._layer, self._settings = stack, layer, settings

    def press(self, pos: QPointF, pressure: float) -> None:
        """Pick the colour under `pos`."""
        color = sample_color(self._stack, self._layer, QPoint(math.floor(pos.x()), math.floor(pos.y())))
        if color is not None:
            self._settings.color = color

    def move(self, pos: QPointF, pressure: float) -> None:
        """Keep picking while dragging."""
        self.press(pos, pressure)

    def release(self, pos: QPointF, pressure: float) -> None:
        """Nothing more to do."""

    def cancel(self) -> None:
        """Nothing to cancel (picking is not an edit)."""


def sample_color(stack: LayerStack, layer: Layer | None, point: QPoint) -> QColor | None:
    """The opaque colour at `point`: a control layer's own pixel, else the visible image layers
    flattened with their opacity; None outside the canvas."""
    if not QRect(QPoint(0, 0), stack.canvas_size).contains(point):
        return None
    if layer is not None and layer.kind is LayerKind.CONTROL:
        color = layer.image.pixelColor(point)
    else:
        pixel = QImage(1, 1, QImage.Format.Format_ARGB32_Premultiplied)
        pixel.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixel)
        for candidate in stack.layers():
            if candidate.kind is LayerKind.IMAGE and candidate.visible:
                painter.setOpacity(candidate.opacity)
                painter.drawImage(QPoint(0, 0), candidate.image, QRect(point, point))
        painter.end()
        color = pixel.pixelColor(0, 0)
    color.setAlpha(255)
    return color


def begin_gesture(kind: ToolKind, stack: LayerStack, layer: Layer | None, settings: ToolSettings) -> Gesture | None:
    """The gesture for `kind` on `layer`, or None when the tool needs a layer and there is none."""
    if kind is ToolKind.PICKER:
        return PickGesture(stack, layer, settings)
    if layer is None:
        return None
    if kind in (ToolKind.BRUSH, ToolKind.ERASER):
        return BrushStroke(stack, layer, settings, erase=kind is ToolKind.ERASER)
    if kind is ToolKind.FILL:
        return FillGesture(stack, layer, settings)
    return ShapeStroke(stack, layer, settings, kind)
