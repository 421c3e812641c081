"""Graphics items of the canvas scene: one per layer, the generation preview and the brush cursor."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from studio.canvas.imaging import argb32_view, new_image
from studio.canvas.layers import Layer, LayerKind


def _channels(argb: np.ndarray) -> tuple[np.ndarray, ...]:
    """Split 0xAARRGGBB values into (a, r, g, b) uint32 planes."""
    return tuple((argb >> shift) & 0xFF for shift in (24, 16, 8, 0))


def _pack(a: np.ndarray, r: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a << 24) | (r << 16) | (g << 8) | b


def overlay_pixels(layer: Layer, argb: np.ndarray) -> np.ndarray:
    """The display pixels (premultiplied 0xAARRGGBB) of mask/control map pixels: masks and line
    maps (scribble, edges) show as the tint with the map's strength as alpha; maps whose colours
    carry meaning (segments, OpenPose limbs, tile/shuffle pictures) show their own colours with
    black left transparent."""
    a, r, g, b = _channels(argb.astype(np.uint32))
    if layer.control is not None and layer.control.own_colours:
        alpha = np.where((r | g | b) > 0, 255, 0).astype(np.uint32)
        return _pack(alpha, r, g, b)
    strength = a if layer.kind is LayerKind.MASK else np.maximum(np.maximum(r, g), b)
    tint = layer.tint
    return _pack(strength, tint.red() * strength // 255, tint.green() * strength // 255,
                 tint.blue() * strength // 255)


class LayerItem(QGraphicsItem):
    """Shows one layer; mask and control layers show a display copy of their map (see overlay_pixels)."""

    def __init__(self, layer: Layer, parent: QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self.layer = layer
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self._size = layer.image.size()
        self._display: QImage | None = None
        self._shown_type = layer.control_type
        self.sync()

    @property
    def is_overlay(self) -> bool:
        """Whether the layer is shown through a display copy (tinted, or its own colours on see-through black)."""
        return self.layer.kind is not LayerKind.IMAGE

    def displayed_image(self) -> QImage:
        """The image this item paints (the layer's own pixels or the overlay copy)."""
        return self._display if self._display is not None else self.layer.image

    def sync(self) -> None:
        """Take over visibility, opacity and size; rebuild the overlay copy when the size or the
        control type changed."""
        resized = self.layer.image.size() != self._size
        if resized:
            self.prepareGeometryChange()
            self._size = self.layer.image.size()
        self.sync_properties()
        retyped, self._shown_type = self._shown_type != self.layer.control_type, self.layer.control_type
        if self.is_overlay and (resized or retyped or self._display is None):
            self._display = new_image(self._size)
            self.refresh(self.layer.image.rect())
        self.update()

    def sync_properties(self) -> None:
        """Take over visibility and opacity."""
        self.setVisible(self.layer.visible)
        self.setOpacity(self.layer.opacity)

    def refresh(self, rect: QRect) -> None:
        """Repaint `rect` after the layer's pixels changed there."""
        rect = rect.intersected(self.layer.image.rect())
        if rect.isEmpty():
            return
        if self._display is not None:
            if self._display.size() != self.layer.image.size():
                return self.sync()
            pixels = self.layer.image.copy(rect)  # keeps the buffer alive while viewed
            source = argb32_view(pixels)
            target = argb32_view(self._display)
            target[rect.top():rect.bottom() + 1, rect.left():rect.right() + 1] = overlay_pixels(self.layer, source)
        self.update(QRectF(rect))

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt API)
        """The canvas rectangle."""
        return QRectF(0, 0, self._size.width(), self._size.height())

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        """Draw the exposed part of the image."""
        exposed = option.exposedRect.intersected(self.boundingRect())  # type: ignore[attr-defined]
        if not exposed.isEmpty():
            painter.drawImage(exposed, self.displayed_image(), exposed)


class PreviewItem(QGraphicsItem):
    """A running generation's preview, drawn above the layers into a canvas rectangle."""

    def __init__(self, parent: QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self._image = QImage()
        self._rect = QRectF()
        self.setVisible(False)

    @property
    def image(self) -> QImage:
        """The preview shown now (null when hidden)."""
        return self._image

    @property
    def target(self) -> QRectF:
        """Where the preview is drawn, in canvas pixels."""
        return QRectF(self._rect)

    def show_image(self, image: QImage | None, rect: QRectF) -> None:
        """Show `image` scaled into `rect`, or hide the preview when `image` is None or null."""
        self.prepareGeometryChange()
        if image is None or image.isNull():
            self._image, self._rect = QImage(), QRectF()
            self.setVisible(False)
            return
        self._image, self._rect = image, QRectF(rect)
        self.setVisible(True)
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt API)
        """The preview rectangle."""
        return QRectF(self._rect)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        """Draw the preview image smoothly scaled into its rectangle."""
        if not self._image.isNull():
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            painter.drawImage(self._rect, self._image)


class BrushCursor(QGraphicsItem):
    """The outline of the brush under the pointer: a black and a white circle, one pixel wide on screen."""

    def __init__(self, parent: QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self._radius = 12.0
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def set_diameter(self, diameter: float) -> None:
        """Change the circle size (canvas pixels)."""
        self.prepareGeometryChange()
        self._radius = max(0.5, diameter / 2)

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt API)
        """A square around the circle with room for the outline."""
        r = self._radius + 2
        return QRectF(-r, -r, 2 * r, 2 * r)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        """Draw the two outlines."""
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        outlines = ((QColor(0, 0, 0, 200), Qt.PenStyle.SolidLine), (QColor(255, 255, 255), Qt.PenStyle.DashLine))
        for color, style in outlines:
            pen = QPen(color, 1, style)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.drawEllipse(QPointF(0, 0), self._radius, self._radius)
