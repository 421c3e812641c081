"""Time one brush-stroke segment on a 1024x1024 canvas: `python -m studio.canvas._bench`.

Prints the time to handle one pointer move (paint + undo bookkeeping + overlay refresh), and the
same plus the repaint of the view, for hard and soft brushes on image and control layers."""

from __future__ import annotations

import math
import os
import statistics
import sys
import time

from PySide6.QtCore import QEvent, QPointF, QRect, QSize, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from studio.canvas.layers import LayerKind, LayerStack
from studio.canvas.view import CanvasView

SIZE = 1024
SEGMENTS = 200


def _mouse(view: CanvasView, kind: QEvent.Type, x: float, y: float) -> None:
    pos = QPointF(view.mapFromScene(QPointF(x, y)))
    button = Qt.MouseButton.LeftButton if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton
    event = QMouseEvent(kind, pos, view.viewport().mapToGlobal(pos), button, Qt.MouseButton.LeftButton,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(view.viewport(), event)


def _path(i: int) -> tuple[float, float]:
    """A looping path across the canvas, about 8 canvas pixels per segment."""
    t = i / SEGMENTS * 2 * math.pi
    return 512 + 380 * math.cos(t) + 60 * math.sin(5 * t), 512 + 380 * math.sin(t)


def _stroke(view: CanvasView, repaint: bool) -> tuple[float, list[float]]:
    """Milliseconds for the press and for each segment of one stroke."""
    app = QApplication.instance()
    times = []
    start = time.perf_counter()
    _mouse(view, QEvent.Type.MouseButtonPress, *_path(0))
    press = (time.perf_counter() - start) * 1000
    for i in range(1, SEGMENTS + 1):
        start = time.perf_counter()
        _mouse(view, QEvent.Type.MouseMove, *_path(i))
        if repaint:
            view.viewport().repaint()  # paint now (normally the event loop does it, coalesced)
        times.append((time.perf_counter() - start) * 1000)
    _mouse(view, QEvent.Type.MouseButtonRelease, *_path(SEGMENTS))
    assert app is not None
    app.processEvents()
    return press, times


def _drops_none_references() -> bool:
    """Whether these Qt bindings lose a reference to None per void call (PySide6 6.12.0 on 3.11)."""
    rect, before = QRect(), sys.getrefcount(None)
    for _ in range(100):
        rect.setWidth(1)
    return sys.getrefcount(None) - before < -50


def main() -> int:
    """Run the measurements and print them."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QApplication.instance() or QApplication(sys.argv)
    if _drops_none_references():
        print("these PySide6 bindings drop a reference to None on every void call; the benchmark would "
              "abort with 'none_dealloc'. Use pyside6-essentials<6.12 (or Python 3.12+).")
        return 2
    stack = LayerStack(QSize(SIZE, SIZE))
    image = stack.add_layer(LayerKind.IMAGE, "image")
    control = stack.add_layer(LayerKind.CONTROL, "scribble", control_type="scribble")
    view = CanvasView(stack)
    view.resize(1200, 900)
    view.show()
    app.processEvents()
    view.zoom_to_fit()
    print(f"canvas {SIZE}x{SIZE}, view zoom {view.zoom():.2f}, {SEGMENTS} segments per stroke, "
          f"platform {app.platformName()}")
    for layer, hardness, size in ((image, 1.0, 64), (image, 0.5, 64), (image, 1.0, 256), (control, 1.0, 64),
                                  (control, 0.5, 256)):
        stack.set_current(layer.id)
        view.tools.hardness, view.tools.brush_size = hardness, size
        for repaint in (False, True):
            press, times = _stroke(view, repaint)
            times.sort()
            suffix = "+ repaint" if repaint else "         "
            label = f"{layer.kind.value:7} size {size:3} hardness {hardness:.1f} {suffix}"
            print(f"{label}: median {statistics.median(times):5.2f} ms, p95 {times[int(0.95 * len(times))]:5.2f} ms, "
                  f"max {times[-1]:5.2f} ms (press {press:4.2f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
