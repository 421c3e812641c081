"""The detections overlay of the canvas: one item group above the layers with, per detection, its
box, a "label 0.93" tag and its keypoints, in the label's colour (the engine overlay's colours).
Boxes follow the canvas zoom; pens, tags and dots keep their screen size."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import (QGraphicsEllipseItem, QGraphicsItem, QGraphicsRectItem, QStyleOptionGraphicsItem,
                               QWidget)

from engine.detect.overlay import label_colours, tag_text

if TYPE_CHECKING:
    from engine.detect.boxes import Detection

OVERLAY_Z = 999_000.0  # above every layer, below the pose handles and the generation preview
PEN_WIDTH = 2.0  # screen pixels
DOT_RADIUS = 3.0  # screen pixels
TAG_POINT_SIZE = 9.0


def _ink(colour: QColor) -> QColor:
    """Dark text on a light tag, white on a dark one (as the engine overlay does)."""
    light = colour.red() + colour.green() + colour.blue() > 380
    return QColor(Qt.GlobalColor.black if light else Qt.GlobalColor.white)


class TagItem(QGraphicsItem):
    """A filled "label 0.93" tag whose bottom-left corner sits at its position, at screen size."""

    def __init__(self, text: str, colour: QColor, parent: QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.text = text
        self.colour = colour
        self._font = QFont()
        self._font.setPointSizeF(TAG_POINT_SIZE)
        metrics = QFontMetricsF(self._font)
        width, height = metrics.horizontalAdvance(text) + 6, metrics.height() + 2
        self._rect = QRectF(0, -height, width, height)

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt API)
        return self._rect

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.fillRect(self._rect, self.colour)
        painter.setPen(_ink(self.colour))
        painter.setFont(self._font)
        painter.drawText(self._rect, Qt.AlignmentFlag.AlignCenter, self.text)


class DetectionItem(QGraphicsRectItem):
    """One detection: its box in canvas pixels, its tag on the box's top-left corner, its keypoints."""

    def __init__(self, detection: Detection, colour: QColor, parent: QGraphicsItem | None = None) -> None:
        x0, y0, x1, y1 = detection.box
        super().__init__(QRectF(QPointF(x0, y0), QPointF(x1, y1)), parent)
        self.detection = detection
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        pen = QPen(colour, PEN_WIDTH)
        pen.setCosmetic(True)  # the same width at every zoom
        self.setPen(pen)
        self.tag = TagItem(tag_text(detection), colour, self)
        self.tag.setPos(x0, y0)
        self.dots: list[QGraphicsEllipseItem] = []
        for x, y in detection.keypoints:
            if not (math.isfinite(x) and math.isfinite(y)):
                continue  # a keypoint the detector did not see
            dot = QGraphicsEllipseItem(-DOT_RADIUS, -DOT_RADIUS, 2 * DOT_RADIUS, 2 * DOT_RADIUS, self)
            dot.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
            dot.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
            dot.setBrush(QBrush(colour))
            dot.setPen(QPen(Qt.PenStyle.NoPen))
            dot.setPos(x, y)
            self.dots.append(dot)


class DetectionsOverlay(QGraphicsItem):
    """The group of detection items; it paints nothing itself and takes no mouse input, so the
    painting tools work through it."""

    def __init__(self, parent: QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents, True)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setZValue(OVERLAY_Z)
        self._items: list[DetectionItem] = []

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt API)
        return QRectF()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        pass  # ItemHasNoContents: only the children paint

    @property
    def detections(self) -> tuple[Detection, ...]:
        """What the overlay shows."""
        return tuple(item.detection for item in self._items)

    def items(self) -> list[DetectionItem]:
        """One item per detection, in order."""
        return list(self._items)

    def set_detections(self, detections: Sequence[Detection], labels: Sequence[str] = ()) -> None:
        """Show `detections`, coloured by label (the detector's `labels` first, as in exports)."""
        self.clear()
        colours = label_colours([*labels, *(d.label for d in detections)])
        self._items = [DetectionItem(d, QColor(*colours[d.label]), self) for d in detections]

    def clear(self) -> None:
        """Remove every detection."""
        scene = self.scene()
        for item in self._items:
            if scene is not None:
                scene.removeItem(item)
            else:
                item.setParentItem(None)
        self._items = []
