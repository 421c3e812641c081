"""Helpers for canvas tests: simulated pointer drags and pixel reads."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest

from studio.canvas.layers import qimage_to_rgba
from studio.canvas.view import CanvasView


def to_viewport(view: CanvasView, x: float, y: float) -> QPoint:
    """The viewport pixel showing canvas point (x, y)."""
    return view.mapFromScene(QPointF(x, y))


def drag(view: CanvasView, points: list[tuple[float, float]],
         button: Qt.MouseButton = Qt.MouseButton.LeftButton) -> None:
    """Press at the first canvas point, move through the rest and release at the last, via QTest."""
    viewport = view.viewport()
    pts = [to_viewport(view, x, y) for x, y in points]
    QTest.mousePress(viewport, button, Qt.KeyboardModifier.NoModifier, pts[0])
    for p in pts[1:]:
        QTest.mouseMove(viewport, p)
    QTest.mouseRelease(viewport, button, Qt.KeyboardModifier.NoModifier, pts[-1])


def pixels(image: QImage) -> np.ndarray:
    """Straight RGBA pixels of a QImage, (H, W, 4) uint8."""
    return qimage_to_rgba(image)
