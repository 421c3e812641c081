"""The canvas layer stack: image layers, one inpaint mask and ControlNet control layers, as a Qt
item model whose every change goes through a QUndoStack."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QImage, QPainter, QUndoStack

from engine.control.pose import PoseKeypoints
from studio.canvas.control_kinds import ControlKind, control_kind
from studio.canvas.imaging import (
    LAYER_FORMAT,
    draw_replace,
    new_image,
    qimage_to_premultiplied_rgba,
    qimage_to_rgba,
    rgba_to_qimage,
)
from studio.canvas.undo import (
    AddLayerCommand,
    LayerPropertyCommand,
    MoveLayerCommand,
    PixelsCommand,
    RemoveLayerCommand,
    ResizeCanvasCommand,
)

__all__ = [
    "Layer", "LayerKind", "LayerStack", "composite", "control_array", "control_tint", "mask_array",
    "qimage_to_rgba", "rgba_to_qimage",
]

MAX_CANVAS_SIDE = 8192
MASK_TINT = (255, 40, 40)
CONTROL_TINTS = ((0, 200, 255), (255, 0, 200), (255, 210, 0), (0, 230, 110), (255, 120, 0))
DEFAULT_OPACITY = {"image": 1.0, "mask": 0.5, "control": 0.6}
_ModelIndex = QModelIndex | QPersistentModelIndex


class LayerKind(enum.Enum):
    """What a layer holds: pixels of the picture, the inpaint mask, or a ControlNet map."""

    IMAGE = "image"
    MASK = "mask"
    CONTROL = "control"


class Layer:
    """One canvas-sized layer; change it through its LayerStack so edits are undoable and signalled.

    Pixels: IMAGE layers hold the picture; the MASK layer holds white where inpainting repaints (the
    mask value is the alpha); CONTROL layers hold an opaque map (black + white strokes, or flat
    segmentation colours). `opacity` and `tint` only affect how the view shows the layer. A pose
    control layer derived from a photo also keeps its keypoints (`pose`), so its joints can be
    dragged and the map redrawn; painting on it does not change them, and a drag redraws only the
    moved limbs, keeping what was painted (`engine.control.redraw_pose`).
    """

    def __init__(self, kind: LayerKind, name: str, image: QImage, *, control_type: str | None = None,
                 tint: QColor | None = None, visible: bool = True, opacity: float | None = None,
                 layer_id: str | None = None, pose: tuple[PoseKeypoints, ...] | None = None) -> None:
        if kind is LayerKind.CONTROL and not control_type:
            raise ValueError("a control layer needs a control_type (e.g. 'scribble', 'canny', 'seg')")
        if kind is not LayerKind.CONTROL and (control_type is not None or pose is not None):
            raise ValueError(f"only control layers have a control_type and pose keypoints, not {kind.value} layers")
        if image.format() != LAYER_FORMAT:
            image = image.convertToFormat(LAYER_FORMAT)
        self._id = layer_id or uuid.uuid4().hex
        self._kind = kind
        self.name = name
        self.image = image
        self.control_type = control_type
        self.tint = QColor(tint) if tint is not None else QColor(*MASK_TINT)
        self.visible = visible
        self.opacity = DEFAULT_OPACITY[kind.value] if opacity is None else opacity
        _check_opacity(self.opacity)
        self.pose: tuple[PoseKeypoints, ...] | None = pose

    @property
    def id(self) -> str:
        """A stable uuid hex that names this layer in projects and jobs."""
        return self._id

    @property
    def kind(self) -> LayerKind:
        """What the layer holds."""
        return self._kind

    @property
    def control(self) -> ControlKind | None:
        """What kind of control map the layer holds (None for image and mask layers)."""
        return control_kind(self.control_type) if self.control_type is not None else None

    @property
    def is_flat(self) -> bool:
        """Whether painting must keep flat colours (no antialiasing), as segmentation maps need."""
        return self.control is not None and self.control.flat

    def __repr__(self) -> str:
        return f"Layer({self._kind.value}, {self.name!r}, id={self._id[:8]})"


def _check_opacity(opacity: float) -> None:
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be within [0, 1], got {opacity}")


def control_tint(index: int) -> QColor:
    """The tint of the `index`-th control layer (0 = bottom), so neighbouring maps look different."""
    return QColor(*CONTROL_TINTS[index % len(CONTROL_TINTS)])


def background_for(kind: LayerKind) -> QColor:
    """The colour a fresh layer of `kind` is filled with (black for control maps)."""
    return QColor(0, 0, 0) if kind is LayerKind.CONTROL else QColor(0, 0, 0, 0)


class LayerStack(QAbstractListModel):
    """The ordered layers of one canvas (index 0 at the bottom); model rows run top layer first."""

    IdRole = Qt.ItemDataRole.UserRole + 1
    NameRole = Qt.ItemDataRole.UserRole + 2
    VisibleRole = Qt.ItemDataRole.UserRole + 3
    OpacityRole = Qt.ItemDataRole.UserRole + 4
    KindRole = Qt.ItemDataRole.UserRole + 5
    ControlTypeRole = Qt.ItemDataRole.UserRole + 6

    canvas_size_changed = Signal(QSize)
    current_changed = Signal(str)  # layer id, "" for none
    layer_pixels_changed = Signal(str, QRect)  # layer id, changed rectangle in canvas pixels
    layer_changed = Signal(str)  # a property (name, visibility, opacity, control type) of one layer
    layers_changed = Signal()  # layers added, removed, moved, replaced or resized

    def __init__(self, size: QSize | None = None, undo_stack: QUndoStack | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        size = QSize(512, 512) if size is None else size
        _check_size(size)
        self._size = QSize(size)
        self._layers: list[Layer] = []
        self._current: str = ""
        self._undo = undo_stack if undo_stack is not None else QUndoStack(self)

    # ---- reading -------------------------------------------------------------------------------

    @property
    def undo_stack(self) -> QUndoStack:
        """The stack every edit of these layers is pushed onto."""
        return self._undo

    @property
    def canvas_size(self) -> QSize:
        """The size of every layer image, in pixels."""
        return QSize(self._size)

    def layers(self) -> list[Layer]:
        """All layers, bottom to top."""
        return list(self._layers)

    def find(self, layer_id: str) -> Layer | None:
        """The layer with this id, or None."""
        return next((layer for layer in self._layers if layer.id == layer_id), None)

    def layer(self, layer_id: str) -> Layer:
        """The layer with this id; KeyError if there is none."""
        layer = self.find(layer_id)
        if layer is None:
            raise KeyError(f"no layer with id {layer_id!r}")
        return layer

    def index_of(self, layer_id: str) -> int:
        """The stack index (0 = bottom) of a layer."""
        return self._layers.index(self.layer(layer_id))

    def row_of(self, layer_id: str) -> int:
        """The model row (0 = top) of a layer."""
        return len(self._layers) - 1 - self.index_of(layer_id)

    def layer_at_row(self, row: int) -> Layer:
        """The layer shown at a model row (0 = top)."""
        if not 0 <= row < len(self._layers):
            raise IndexError(f"row {row} out of range for {len(self._layers)} layers")
        return self._layers[len(self._layers) - 1 - row]

    @property
    def current(self) -> Layer | None:
        """The layer tools paint on, or None."""
        return self.find(self._current) if self._current else None

    def set_current(self, layer_id: str | None) -> None:
        """Choose the layer tools paint on (selection is not an undoable edit)."""
        layer_id = layer_id or ""
        if layer_id and self.find(layer_id) is None:
            raise KeyError(f"no layer with id {layer_id!r}")
        if layer_id != self._current:
            self._current = layer_id
            self.current_changed.emit(layer_id)

    def mask_layer(self) -> Layer:
        """The inpaint mask layer, created (undoably, on top) if there is none yet."""
        existing = self.find_mask()
        return existing if existing is not None else self.add_layer(LayerKind.MASK, "Inpaint mask")

    def find_mask(self) -> Layer | None:
        """The inpaint mask layer, or None (never creates one)."""
        return next((layer for layer in self._layers if layer.kind is LayerKind.MASK), None)

    def control_layers(self) -> list[Layer]:
        """The control layers, bottom to top."""
        return [layer for layer in self._layers if layer.kind is LayerKind.CONTROL]

    # ---- undoable edits ------------------------------------------------------------------------

    def add_layer(self, kind: LayerKind, name: str, image: QImage | None = None, index: int | None = None,
                  *, control_type: str | None = None) -> Layer:
        """Add a layer (undoable) and make it current; by default image layers go above the other
        image layers and mask/control layers on top. Returns the new layer."""
        if kind is LayerKind.MASK and self.find_mask() is not None:
            raise ValueError("the canvas already has an inpaint mask layer (there is at most one)")
        if image is None:
            image = new_image(self._size, background_for(kind))
        elif image.size() != self._size:
            raise ValueError(f"layer image is {image.width()}x{image.height()}, "
                             f"the canvas is {self._size.width()}x{self._size.height()}")
        else:
            image = image.convertToFormat(LAYER_FORMAT).copy()
        tint = control_tint(len(self.control_layers())) if kind is LayerKind.CONTROL else None
        layer = Layer(kind, name, image, control_type=control_type, tint=tint)
        index = self._default_index(kind) if index is None else index
        if not 0 <= index <= len(self._layers):
            raise IndexError(f"index {index} out of range for {len(self._layers)} layers")
        self._undo.push(AddLayerCommand(self, layer, index))
        return layer

    def remove_layer(self, layer_id: str) -> None:
        """Remove a layer (undoable)."""
        self._undo.push(RemoveLayerCommand(self, layer_id))

    def move_layer(self, layer_id: str, new_index: int) -> None:
        """Move a layer to stack index `new_index` (0 = bottom; undoable)."""
        if not 0 <= new_index < len(self._layers):
            raise IndexError(f"index {new_index} out of range for {len(self._layers)} layers")
        if self.index_of(layer_id) != new_index:
            self._undo.push(MoveLayerCommand(self, layer_id, new_index))

    def set_visible(self, layer_id: str, visible: bool) -> None:
        """Show or hide a layer (undoable)."""
        layer = self.layer(layer_id)
        if layer.visible != visible:
            text = f"{'Show' if visible else 'Hide'} layer {layer.name}"
            self._undo.push(LayerPropertyCommand(self, layer_id, "visible", bool(visible), text))

    def set_opacity(self, layer_id: str, opacity: float) -> None:
        """Change a layer's opacity in [0, 1] (undoable; a run of changes merges into one step)."""
        _check_opacity(opacity)
        layer = self.layer(layer_id)
        if layer.opacity != opacity:
            text = f"Opacity of {layer.name}"
            self._undo.push(LayerPropertyCommand(self, layer_id, "opacity", float(opacity), text))

    def rename_layer(self, layer_id: str, name: str) -> None:
        """Rename a layer (undoable)."""
        if not name:
            raise ValueError("a layer name must not be empty")
        if self.layer(layer_id).name != name:
            self._undo.push(LayerPropertyCommand(self, layer_id, "name", name, f"Rename layer to {name}"))

    def set_control_type(self, layer_id: str, control_type: str) -> None:
        """Change what a control layer's map means, e.g. when its ControlNet unit changes type (undoable)."""
        layer = self.layer(layer_id)
        if layer.kind is not LayerKind.CONTROL:
            raise ValueError(f"{layer!r} is not a control layer")
        if not control_type:
            raise ValueError("a control type must not be empty")
        if layer.control_type != control_type:
            text = f"Control type of {layer.name}: {control_type}"
            self._undo.push(LayerPropertyCommand(self, layer_id, "control_type", control_type, text))

    def set_pose(self, layer_id: str, pose: tuple[PoseKeypoints, ...] | None, text: str = "Set pose") -> None:
        """Keep (or drop, with None) the pose keypoints a control layer's map was drawn from (undoable)."""
        layer = self.layer(layer_id)
        if layer.kind is not LayerKind.CONTROL:
            raise ValueError(f"{layer!r} is not a control layer")
        if layer.pose != pose:
            self._undo.push(LayerPropertyCommand(self, layer_id, "pose", pose, text))

    def set_pixels(self, layer_id: str, image: QImage, at: QPoint | None = None, text: str = "Set pixels") -> None:
        """Replace the pixels under `image` placed at `at` (default: the top-left; undoable; clipped)."""
        at = QPoint(0, 0) if at is None else at
        layer = self.layer(layer_id)
        rect = QRect(at, image.size()).intersected(layer.image.rect())
        if rect.isEmpty():
            raise ValueError(f"the image placed at ({at.x()}, {at.y()}) lies outside the canvas")
        after = image.convertToFormat(LAYER_FORMAT).copy(rect.translated(-at))
        self._undo.push(PixelsCommand(self, layer_id, rect, layer.image.copy(rect), after, text))

    def resize_canvas(self, size: QSize, scale_content: bool = False) -> None:
        """Change the canvas size (undoable): crop/extend at the top-left, or scale every layer."""
        _check_size(size)
        if size == self._size:
            return
        images = {layer.id: _resized(layer, size, scale_content) for layer in self._layers}
        posed = [layer for layer in self._layers if layer.pose] if scale_content else []
        if not posed:
            self._undo.push(ResizeCanvasCommand(self, size, images))
            return
        # A scaled pose layer's keypoints scale with its map, in the same undo step.
        sx, sy = size.width() / self._size.width(), size.height() / self._size.height()
        self._undo.beginMacro(f"Canvas size {size.width()}x{size.height()}")
        self._undo.push(ResizeCanvasCommand(self, size, images))
        for layer in posed:
            assert layer.pose is not None
            self.set_pose(layer.id, tuple(p.scaled(sx, sy) for p in layer.pose), "Scale pose")
        self._undo.endMacro()

    def reset(self, size: QSize, layers: Sequence[Layer]) -> None:
        """Replace everything (e.g. when a project opens) and clear the undo history."""
        _check_size(size)
        for layer in layers:
            if layer.image.size() != size:
                raise ValueError(f"layer {layer.name!r} is not {size.width()}x{size.height()}")
        if sum(layer.kind is LayerKind.MASK for layer in layers) > 1:
            raise ValueError("a canvas has at most one inpaint mask layer")
        self._undo.clear()
        self.beginResetModel()
        self._size, self._layers = QSize(size), list(layers)
        self.endResetModel()
        self.canvas_size_changed.emit(QSize(size))
        self.layers_changed.emit()
        self.set_current(self._layers[-1].id if self._layers else None)

    def notify_pixels_changed(self, layer_id: str, rect: QRect) -> None:
        """Tell listeners that a layer's pixels changed inside `rect` (tools call this while painting)."""
        self.layer_pixels_changed.emit(layer_id, QRect(rect))

    # ---- immediate changes, used by the undo commands ------------------------------------------

    def _insert(self, layer: Layer, index: int) -> None:
        row = len(self._layers) - index
        self.beginInsertRows(QModelIndex(), row, row)
        self._layers.insert(index, layer)
        self.endInsertRows()
        self.layers_changed.emit()

    def _take(self, layer_id: str) -> Layer:
        index = self.index_of(layer_id)
        row = len(self._layers) - 1 - index
        self.beginRemoveRows(QModelIndex(), row, row)
        layer = self._layers.pop(index)
        self.endRemoveRows()
        if self._current == layer_id:
            below = self._layers[max(0, index - 1)].id if self._layers else None
            self.set_current(below)
        self.layers_changed.emit()
        return layer

    def _move(self, layer_id: str, new_index: int) -> None:
        n, old_index = len(self._layers), self.index_of(layer_id)
        old_row, new_row = n - 1 - old_index, n - 1 - new_index
        destination = new_row + 1 if new_row > old_row else new_row
        self.beginMoveRows(QModelIndex(), old_row, old_row, QModelIndex(), destination)
        self._layers.insert(new_index, self._layers.pop(old_index))
        self.endMoveRows()
        self.layers_changed.emit()

    def _set_property(self, layer_id: str, prop: str, value: Any) -> None:
        setattr(self.layer(layer_id), prop, value)
        row = self.index(self.row_of(layer_id))
        self.dataChanged.emit(row, row)
        self.layer_changed.emit(layer_id)

    def _set_canvas(self, size: QSize, images: dict[str, QImage]) -> None:
        self._size = QSize(size)
        for layer in self._layers:
            layer.image = images[layer.id]
        self.canvas_size_changed.emit(QSize(size))
        self.layers_changed.emit()

    def _default_index(self, kind: LayerKind) -> int:
        if kind is not LayerKind.IMAGE:
            return len(self._layers)
        image_indices = [i for i, layer in enumerate(self._layers) if layer.kind is LayerKind.IMAGE]
        return image_indices[-1] + 1 if image_indices else 0

    # ---- the item model ------------------------------------------------------------------------

    def rowCount(self, parent: _ModelIndex = QModelIndex()) -> int:  # noqa: N802, B008 (Qt API)
        """The number of layers (no children)."""
        return 0 if parent.isValid() else len(self._layers)

    def roleNames(self) -> dict[int, bytes]:  # noqa: N802 (Qt API)
        """Names of the custom roles (for QML and debugging)."""
        return {**super().roleNames(), self.IdRole: b"id", self.NameRole: b"name",
                self.VisibleRole: b"visible", self.OpacityRole: b"opacity", self.KindRole: b"kind",
                self.ControlTypeRole: b"controlType"}

    def data(self, index: _ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Name (display/edit), visibility (check state) and the custom roles of a row."""
        if not index.isValid() or not 0 <= index.row() < len(self._layers):
            return None
        layer = self.layer_at_row(index.row())
        values = {
            Qt.ItemDataRole.DisplayRole: layer.name, Qt.ItemDataRole.EditRole: layer.name,
            Qt.ItemDataRole.CheckStateRole: Qt.CheckState.Checked if layer.visible else Qt.CheckState.Unchecked,
            self.IdRole: layer.id, self.NameRole: layer.name, self.VisibleRole: layer.visible,
            self.OpacityRole: layer.opacity, self.KindRole: layer.kind, self.ControlTypeRole: layer.control_type,
        }
        return values.get(role)

    def setData(self, index: _ModelIndex, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802
        """Rename, show/hide or change opacity from a view (each an undoable edit)."""
        if not index.isValid():
            return False
        layer_id = self.layer_at_row(index.row()).id
        if role in (Qt.ItemDataRole.EditRole, self.NameRole) and isinstance(value, str) and value:
            self.rename_layer(layer_id, value)
        elif role == Qt.ItemDataRole.CheckStateRole:
            self.set_visible(layer_id, Qt.CheckState(value) == Qt.CheckState.Checked)
        elif role == self.VisibleRole:
            self.set_visible(layer_id, bool(value))
        elif role == self.OpacityRole:
            self.set_opacity(layer_id, float(value))
        else:
            return False
        return True

    def flags(self, index: _ModelIndex) -> Qt.ItemFlag:
        """Rows are selectable, renamable and checkable (visibility)."""
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return (Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEditable
                | Qt.ItemFlag.ItemIsUserCheckable)


def _check_size(size: QSize) -> None:
    w, h = size.width(), size.height()
    if not (0 < w <= MAX_CANVAS_SIDE and 0 < h <= MAX_CANVAS_SIDE):
        raise ValueError(f"canvas size must be within 1..{MAX_CANVAS_SIDE} per side, got {w}x{h}")


def _resized(layer: Layer, size: QSize, scale_content: bool) -> QImage:
    """A copy of a layer's image at `size`: scaled, or cropped/extended at the top-left."""
    if scale_content:
        mode = Qt.TransformationMode
        smooth = mode.FastTransformation if layer.is_flat else mode.SmoothTransformation  # flat maps stay flat
        return layer.image.scaled(size, Qt.AspectRatioMode.IgnoreAspectRatio, smooth).convertToFormat(LAYER_FORMAT)
    image = new_image(size, background_for(layer.kind))
    draw_replace(image, QPoint(0, 0), layer.image)
    return image


def composite(stack: LayerStack) -> QImage:
    """The visible image layers flattened bottom to top with their opacity (mask/control excluded)."""
    result = new_image(stack.canvas_size)
    painter = QPainter(result)
    for layer in stack.layers():
        if layer.kind is LayerKind.IMAGE and layer.visible and layer.opacity > 0:
            painter.setOpacity(layer.opacity)
            painter.drawImage(QPoint(0, 0), layer.image)
    painter.end()
    return result


def mask_array(stack: LayerStack) -> np.ndarray | None:
    """The inpaint mask as (H, W) uint8, 255 = repaint, or None without a mask layer (hidden counts)."""
    layer = stack.find_mask()
    if layer is None:
        return None
    return np.ascontiguousarray(qimage_to_premultiplied_rgba(layer.image)[:, :, 3])  # (H, W)


def control_array(layer: Layer) -> np.ndarray:
    """A control layer's map as (H, W, 3) uint8 RGB (transparent parts read as black)."""
    if layer.kind is not LayerKind.CONTROL:
        raise ValueError(f"{layer!r} is not a control layer")
    return np.ascontiguousarray(qimage_to_premultiplied_rgba(layer.image)[:, :, :3])  # (H, W, 3)
