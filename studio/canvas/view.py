"""The canvas widget: a QGraphicsView over the layer stack with zoom, pan, tools and drop/paste."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QPoint, QPointF, QRect, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QBrush,
    QColor,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPixmap,
    QShowEvent,
    QPointingDevice,
    QTabletEvent,
    QTransform,
    QUndoStack,
    QWheelEvent,
)
from PySide6.QtWidgets import QDialog, QGraphicsScene, QGraphicsView, QWidget

from studio.canvas.actions import CanvasActions
from studio.canvas.derive import layer_rgb, write_control_layer
from studio.canvas.derive_dialog import DeriveDialog
from studio.canvas.importing import load_image, mime_images, place_on_canvas
from studio.canvas.items import BrushCursor, LayerItem, PreviewItem
from studio.canvas.layers import Layer, LayerKind, LayerStack
from studio.canvas.pose_edit import HIT_RADIUS, PoseDrag, PoseHandles, editable_pose, joint_at
from studio.canvas.tools import Gesture, ToolKind, ToolSettings, begin_gesture

MIN_ZOOM, MAX_ZOOM = 1 / 32, 64.0
WHEEL_STEP = 1.2  # zoom factor per wheel notch (120 units)
_PREVIEW_Z, _CURSOR_Z = 1_000_000.0, 1_000_001.0
_SIZED_TOOLS = (ToolKind.BRUSH, ToolKind.ERASER, ToolKind.LINE, ToolKind.RECT, ToolKind.ELLIPSE)


def _checker_brush() -> QBrush:
    tile = QPixmap(16, 16)
    tile.fill(QColor(204, 204, 204))
    painter = QPainter(tile)
    painter.fillRect(0, 0, 8, 8, QColor(153, 153, 153))
    painter.fillRect(8, 8, 8, 8, QColor(153, 153, 153))
    painter.end()
    return QBrush(tile)


class CanvasView(QGraphicsView):
    """Shows the layers and turns pointer input into tool gestures, zoom and pan."""

    zoom_changed = Signal(float)
    status_message = Signal(str)  # short notes for the status bar (e.g. "the layer is hidden")
    gesture_started = Signal()  # a tool was pressed on the canvas (the window hides a result preview)

    def __init__(self, stack: LayerStack, undo_stack: QUndoStack | None = None, parent: QWidget | None = None) -> None:
        if undo_stack is not None and undo_stack is not stack.undo_stack:
            raise ValueError("the view must use the layer stack's own undo stack (LayerStack(undo_stack=...))")
        super().__init__(parent)
        self._stack = stack
        self._scene = QGraphicsScene(self)  # parented: a parentless scene leaves the view blank
        self.setScene(self._scene)
        self._tools = ToolSettings(self)
        self._items: dict[str, LayerItem] = {}
        self._gesture: Gesture | None = None
        self._last_input = (QPointF(), 1.0)
        self._pan_from: QPoint | None = None
        self._space_held = False
        self._fitted_once = False
        self._checker = _checker_brush()
        self._preview = PreviewItem()
        self._preview.setZValue(_PREVIEW_Z)
        self._scene.addItem(self._preview)
        self._cursor = BrushCursor()
        self._cursor.setZValue(_CURSOR_Z)
        self._cursor.setVisible(False)
        self._scene.addItem(self._cursor)
        self._pose_handles = PoseHandles()
        self._pose_handles.setZValue(_PREVIEW_Z - 1)
        self._scene.addItem(self._pose_handles)
        self._actions = CanvasActions(self._tools, stack.undo_stack, before_history=self.finish_gesture,
                                      paste=self.paste, zoom_to_fit=self.zoom_to_fit, parent=self)
        for action in self._actions.all():
            self.addAction(action)
        self._configure()
        self._connect()
        self._sync_items()
        self._update_scene_rect()

    def _configure(self) -> None:
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)  # wheelEvent anchors itself
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setDragMode(QGraphicsView.DragMode.NoDrag)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAcceptDrops(True)
        self.viewport().setMouseTracking(True)
        self.viewport().setCursor(Qt.CursorShape.CrossCursor)
        self.viewport().setAttribute(Qt.WidgetAttribute.WA_TabletTracking, True)

    def _connect(self) -> None:
        stack = self._stack
        stack.layers_changed.connect(self._sync_items)
        stack.layer_changed.connect(self._layer_changed)
        stack.layer_pixels_changed.connect(self._pixels_changed)
        stack.canvas_size_changed.connect(self._canvas_resized)
        for signal in (stack.current_changed, stack.layer_changed, stack.layers_changed):
            signal.connect(self._sync_pose_handles)
        self._tools.brush_size_changed.connect(self._cursor.set_diameter)
        self._tools.tool_changed.connect(self._tool_changed)
        self._cursor.set_diameter(self._tools.brush_size)

    # ---- public API ----------------------------------------------------------------------------

    @property
    def stack(self) -> LayerStack:
        """The layers this view shows and edits."""
        return self._stack

    @property
    def tools(self) -> ToolSettings:
        """The tool settings (observable; panels bind to them)."""
        return self._tools

    @property
    def canvas_actions(self) -> CanvasActions:
        """The canvas's actions by name (undo, redo, brush, eraser, size_up, size_down, ...)."""
        return self._actions

    def actions(self) -> list[QAction]:  # type: ignore[override]
        """The canvas's QActions, for menus and toolbars (they are also added to this widget)."""
        return self._actions.all()

    def layer_item(self, layer_id: str) -> LayerItem:
        """The scene item that shows a layer."""
        return self._items[layer_id]

    def zoom(self) -> float:
        """The current scale: screen pixels per canvas pixel."""
        return self.transform().m11()

    def set_zoom(self, zoom: float) -> None:
        """Scale to `zoom` screen pixels per canvas pixel, around the view centre."""
        if not MIN_ZOOM <= zoom <= MAX_ZOOM:
            raise ValueError(f"zoom must be within [{MIN_ZOOM}, {MAX_ZOOM}], got {zoom}")
        center = self.mapToScene(self.viewport().rect().center())
        self.setTransform(QTransform.fromScale(zoom, zoom))
        self.centerOn(center)
        self._zoomed()

    def _zoom_at(self, zoom: float, viewport_pos: QPointF) -> None:
        """Scale to `zoom` keeping the canvas point under `viewport_pos` where it is."""
        anchor = self.to_canvas(viewport_pos)
        self.setTransform(QTransform.fromScale(zoom, zoom))
        drift = self.viewportTransform().map(anchor) - viewport_pos
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + round(drift.x()))
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + round(drift.y()))
        self._zoomed()

    def zoom_to_fit(self) -> None:
        """Fit the whole canvas into the view."""
        size = self._stack.canvas_size.toSizeF()
        pad = 0.03 * max(size.width(), size.height())  # a little room around the edges
        self.fitInView(QRectF(-pad, -pad, size.width() + 2 * pad, size.height() + 2 * pad),
                       Qt.AspectRatioMode.KeepAspectRatio)
        self._zoomed()

    def set_preview(self, image: QImage | None, rect: QRect | None = None) -> None:
        """Show a generation preview above the layers in `rect` (default: the whole canvas); None hides it."""
        target = QRectF(rect) if rect is not None else QRectF(QPointF(0, 0), self._stack.canvas_size.toSizeF())
        self._preview.show_image(image, target)

    def preview_item(self) -> PreviewItem:
        """The scene item that shows the preview."""
        return self._preview

    def import_image(self, source: str | Path | QImage, name: str | None = None) -> Layer:
        """Add a picture as a new image layer (undoable), scaled down to fit and centred."""
        if isinstance(source, QImage):
            image, default_name = source, "Pasted image"
        else:
            image, default_name = load_image(source), Path(source).stem
        placed = place_on_canvas(image, self._stack.canvas_size)
        return self._stack.add_layer(LayerKind.IMAGE, name or default_name, placed)

    def paste(self) -> list[Layer]:
        """Import the clipboard's image (or image files) as new layers; reports when there is none."""
        sources = mime_images(QGuiApplication.clipboard().mimeData())
        if not sources:
            self.status_message.emit("The clipboard holds no image")
        return [self.import_image(source) for source in sources]

    def open_derive_dialog(self, preprocessor: str = "canny") -> Layer | None:
        """Derive a control map with any preprocessor from the current image layer (or the visible
        picture) with a live preview; writes into the current control layer of that type or a new one."""
        current = self._stack.current
        source = current if current is not None and current.kind is LayerKind.IMAGE else None
        dialog = DeriveDialog(layer_rgb(self._stack, source), preprocessor, parent=self)
        control = dialog.control() if dialog.exec() == QDialog.DialogCode.Accepted else None
        if control is None:
            return None
        chosen = dialog.preprocessor
        target = current.id if current is not None and current.control_type == chosen else None
        return write_control_layer(self._stack, control, dialog.keypoints(), chosen, target)

    def pose_handles(self) -> PoseHandles:
        """The scene item that shows the joints of the current pose layer."""
        return self._pose_handles

    def finish_gesture(self) -> None:
        """End a gesture in progress (as if the pointer were released), e.g. before undo."""
        if self._gesture is not None:
            gesture, self._gesture = self._gesture, None
            gesture.release(*self._last_input)

    def cancel_gesture(self) -> None:
        """Throw away a gesture in progress."""
        if self._gesture is not None:
            gesture, self._gesture = self._gesture, None
            gesture.cancel()

    def to_canvas(self, viewport_pos: QPointF) -> QPointF:
        """Map a viewport position (subpixel) to canvas pixels."""
        inverted, _ok = self.viewportTransform().inverted()
        return inverted.map(QPointF(viewport_pos))

    # ---- keeping the scene in step with the stack ----------------------------------------------

    def _sync_items(self) -> None:
        layers = self._stack.layers()
        alive = {layer.id: layer for layer in layers}
        for layer_id in list(self._items):
            if alive.get(layer_id) is not self._items[layer_id].layer:
                self._scene.removeItem(self._items.pop(layer_id))
        for z, layer in enumerate(layers):
            item = self._items.get(layer.id)
            if item is None:
                item = self._items[layer.id] = LayerItem(layer)
                self._scene.addItem(item)
            else:
                item.sync()
            item.setZValue(z)

    def _layer_changed(self, layer_id: str) -> None:
        item = self._items.get(layer_id)
        if item is not None:
            item.sync()

    def _pixels_changed(self, layer_id: str, rect: QRect) -> None:
        item = self._items.get(layer_id)
        if item is not None:
            item.refresh(rect)

    def _sync_pose_handles(self) -> None:
        canvas = QRectF(QPointF(0, 0), self._stack.canvas_size.toSizeF())
        self._pose_handles.show_pose(editable_pose(self._stack.current), canvas)

    def _canvas_resized(self) -> None:
        self._update_scene_rect()
        self.zoom_to_fit()  # a new size (preset, opened project) is shown whole, centred

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        if not self._fitted_once:  # the first time the view has its real size: show the canvas whole
            self._fitted_once = True
            QTimer.singleShot(0, self.zoom_to_fit)  # after the window's layout has settled

    def _update_scene_rect(self) -> None:
        size = self._stack.canvas_size
        margin = 2 * max(size.width(), size.height())
        self._scene.setSceneRect(QRectF(-margin, -margin, size.width() + 2 * margin, size.height() + 2 * margin))

    def _zoomed(self) -> None:
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.zoom() < 1.0)
        self.zoom_changed.emit(self.zoom())

    def _tool_changed(self, kind: ToolKind) -> None:
        self.finish_gesture()
        if kind not in _SIZED_TOOLS:
            self._cursor.setVisible(False)

    # ---- drawing -------------------------------------------------------------------------------

    def drawBackground(self, painter: QPainter, rect: QRectF | QRect) -> None:  # noqa: N802 (Qt API)
        """A dark surround and a checkerboard under the canvas (transparent pixels)."""
        painter.fillRect(rect, QColor(48, 48, 52))
        canvas = QRectF(QPointF(0, 0), self._stack.canvas_size.toSizeF())
        brush = QBrush(self._checker)
        brush.setTransform(QTransform.fromScale(1 / self.zoom(), 1 / self.zoom()))  # same size on screen
        painter.fillRect(canvas.intersected(QRectF(rect)), brush)

    # ---- input ---------------------------------------------------------------------------------

    def _begin(self, viewport_pos: QPointF, pressure: float, kind: ToolKind | None = None) -> None:
        if self._gesture is not None:
            return
        self.gesture_started.emit()
        kind = kind or self._tools.tool
        layer = self._stack.current
        if kind is not ToolKind.PICKER:
            if layer is None:
                self.status_message.emit("Choose a layer to paint on")
                return
            if not layer.visible:
                self.status_message.emit(f"The layer {layer.name!r} is hidden")
                return
        pos = self.to_canvas(viewport_pos)
        self._gesture = self._pose_drag(layer, pos) or begin_gesture(kind, self._stack, layer, self._tools)
        self._last_input = (pos, pressure)
        if self._gesture is not None:
            self._gesture.press(pos, pressure)

    def _pose_drag(self, layer: Layer | None, pos: QPointF) -> PoseDrag | None:
        """A joint drag when the press lands on a joint of the current pose layer (any tool)."""
        pose = editable_pose(layer)
        joint = joint_at(pose, pos, HIT_RADIUS / self.zoom()) if pose else None
        return PoseDrag(self._stack, layer, joint, self._pose_handles) if joint and layer else None

    def _continue(self, viewport_pos: QPointF, pressure: float) -> None:
        pos = self.to_canvas(viewport_pos)
        self._cursor.setPos(pos)
        if self._gesture is not None:
            self._last_input = (pos, pressure)
            self._gesture.move(pos, pressure)

    def _end(self, viewport_pos: QPointF, pressure: float) -> None:
        if self._gesture is not None:
            gesture, self._gesture = self._gesture, None
            pos = self.to_canvas(viewport_pos)
            gesture.release(pos, pressure)

    def _pan_to(self, viewport_pos: QPoint) -> None:
        assert self._pan_from is not None
        delta = viewport_pos - self._pan_from
        self._pan_from = viewport_pos
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - delta.x())
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() - delta.y())

    def _start_pan(self, viewport_pos: QPoint) -> None:
        self._pan_from = viewport_pos
        self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)

    def _stop_pan(self) -> None:
        self._pan_from = None
        shape = Qt.CursorShape.OpenHandCursor if self._space_held else Qt.CursorShape.CrossCursor
        self.viewport().setCursor(shape)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt API)
        """Left button: the tool (or pan while space is held); middle button: pan."""
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and self._space_held):
            self._start_pan(event.position().toPoint())
        elif button == Qt.MouseButton.LeftButton:
            self._begin(event.position(), 1.0)
        else:
            super().mousePressEvent(event)
            return
        event.accept()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt API)
        """A quick second click is a second press (a dab), not a scene double click."""
        self.mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt API)
        """Pan, or continue the gesture, and move the brush outline."""
        if self._pan_from is not None:
            self._pan_to(event.position().toPoint())
        else:
            self._cursor.setVisible(self._tools.tool in _SIZED_TOOLS)
            self._continue(event.position(), 1.0)
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt API)
        """End a pan or the gesture."""
        if self._pan_from is not None and event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton):
            self._stop_pan()
        elif event.button() == Qt.MouseButton.LeftButton:
            self._end(event.position(), 1.0)
        else:
            super().mouseReleaseEvent(event)
            return
        event.accept()

    def viewportEvent(self, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        """Tablet input: pressure scales the brush; the pen's eraser end erases."""
        if isinstance(event, QTabletEvent):
            self._tablet(event)
            return True
        if event.type() == QEvent.Type.Leave:
            self._cursor.setVisible(False)
        return super().viewportEvent(event)

    def _tablet(self, event: QTabletEvent) -> None:
        kind = event.type()
        pressure = max(0.0, min(1.0, event.pressure()))
        if kind == QEvent.Type.TabletPress and event.button() == Qt.MouseButton.LeftButton and not self._space_held:
            eraser = event.pointerType() == QPointingDevice.PointerType.Eraser
            self._begin(event.position(), pressure, ToolKind.ERASER if eraser else None)
        elif kind == QEvent.Type.TabletMove:
            self._continue(event.position(), pressure)
        elif kind == QEvent.Type.TabletRelease and event.button() == Qt.MouseButton.LeftButton:
            self._end(event.position(), pressure)
        else:
            event.ignore()  # let Qt turn it into mouse events (e.g. panning with the pen)
            return
        event.accept()

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 (Qt API)
        """Zoom around the pointer."""
        steps = event.angleDelta().y() / 120
        if steps == 0:
            return
        zoom = min(MAX_ZOOM, max(MIN_ZOOM, self.zoom() * WHEEL_STEP**steps))
        self._zoom_at(zoom, event.position())
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt API)
        """Space starts pan mode; Escape cancels the gesture in progress."""
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = True
            if self._pan_from is None:
                self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
        elif event.key() == Qt.Key.Key_Escape:
            self.cancel_gesture()
        elif not (event.key() == Qt.Key.Key_Space and event.isAutoRepeat()):
            super().keyPressEvent(event)
            return
        event.accept()

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt API)
        """Releasing space ends pan mode."""
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = False
            if self._pan_from is None:
                self.viewport().setCursor(Qt.CursorShape.CrossCursor)
            event.accept()
            return
        super().keyReleaseEvent(event)

    def focusOutEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt API)
        """Forget a held space key when focus leaves (its release would never arrive)."""
        self._space_held = False
        super().focusOutEvent(event)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt API)
        """Accept drops of image files or image data."""
        if mime_images(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802 (Qt API)
        """Keep accepting an image drag over the whole view."""
        self.dragEnterEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt API)
        """Import each dropped picture as a new image layer."""
        sources = mime_images(event.mimeData())
        for source in sources:
            try:
                self.import_image(source)
            except ValueError as exc:
                self.status_message.emit(str(exc))
        if sources:
            event.acceptProposedAction()
