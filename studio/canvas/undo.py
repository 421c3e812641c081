"""Undo commands for every canvas edit; pixel edits store only the changed rectangle."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QRect, QSize
from PySide6.QtGui import QImage, QUndoCommand

from studio.canvas.imaging import draw_replace

if TYPE_CHECKING:
    from studio.canvas.layers import Layer, LayerStack

_MERGE_OPACITY = 0x4154_0001  # ids for QUndoCommand.mergeWith; any constant unique to this module


class PixelsCommand(QUndoCommand):
    """Replace one rectangle of a layer's pixels; keeps the before and after pixels of that rectangle."""

    def __init__(self, stack: LayerStack, layer_id: str, rect: QRect, before: QImage, after: QImage,
                 text: str) -> None:
        super().__init__(text)
        if before.size() != rect.size() or after.size() != rect.size():
            raise ValueError("before/after images must have the size of the changed rectangle")
        self._stack, self._layer_id, self._rect = stack, layer_id, QRect(rect)
        self._before, self._after = before, after

    @property
    def rect(self) -> QRect:
        """The changed rectangle, in canvas pixels."""
        return QRect(self._rect)

    def _write(self, pixels: QImage) -> None:
        layer = self._stack.layer(self._layer_id)
        draw_replace(layer.image, self._rect.topLeft(), pixels)
        self._stack.notify_pixels_changed(self._layer_id, self._rect)

    def redo(self) -> None:
        """Write the after-pixels (a no-op in effect for strokes already painted live)."""
        self._write(self._after)

    def undo(self) -> None:
        """Write the before-pixels back."""
        self._write(self._before)


class AddLayerCommand(QUndoCommand):
    """Insert a layer at a stack index."""

    def __init__(self, stack: LayerStack, layer: Layer, index: int) -> None:
        super().__init__(f"Add layer {layer.name}")
        self._stack, self._layer, self._index = stack, layer, index

    def redo(self) -> None:
        """Insert the layer and make it current."""
        self._stack._insert(self._layer, self._index)
        self._stack.set_current(self._layer.id)

    def undo(self) -> None:
        """Take the layer out again."""
        self._stack._take(self._layer.id)


class RemoveLayerCommand(QUndoCommand):
    """Remove a layer; undo puts the same layer object back at its index."""

    def __init__(self, stack: LayerStack, layer_id: str) -> None:
        layer = stack.layer(layer_id)
        super().__init__(f"Remove layer {layer.name}")
        self._stack, self._layer, self._index = stack, layer, stack.index_of(layer_id)

    def redo(self) -> None:
        """Take the layer out."""
        self._stack._take(self._layer.id)

    def undo(self) -> None:
        """Put the layer back and make it current."""
        self._stack._insert(self._layer, self._index)
        self._stack.set_current(self._layer.id)


class MoveLayerCommand(QUndoCommand):
    """Move a layer to another stack index."""

    def __init__(self, stack: LayerStack, layer_id: str, new_index: int) -> None:
        super().__init__(f"Move layer {stack.layer(layer_id).name}")
        self._stack, self._layer_id = stack, layer_id
        self._old, self._new = stack.index_of(layer_id), new_index

    def redo(self) -> None:
        """Move to the new index."""
        self._stack._move(self._layer_id, self._new)

    def undo(self) -> None:
        """Move back to the old index."""
        self._stack._move(self._layer_id, self._old)


class LayerPropertyCommand(QUndoCommand):
    """Change one display property of a layer (name, visible or opacity)."""

    def __init__(self, stack: LayerStack, layer_id: str, prop: str, value: Any, text: str) -> None:
        super().__init__(text)
        self._stack, self._layer_id, self._prop = stack, layer_id, prop
        self._old, self._new = getattr(stack.layer(layer_id), prop), value

    def id(self) -> int:
        """Opacity changes of one layer merge (a slider drag is one undo step)."""
        return _MERGE_OPACITY if self._prop == "opacity" else -1

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 (Qt override)
        """Absorb a following opacity change of the same layer."""
        if not isinstance(other, LayerPropertyCommand) or other._layer_id != self._layer_id:
            return False
        self._new = other._new
        return True

    def redo(self) -> None:
        """Apply the new value."""
        self._stack._set_property(self._layer_id, self._prop, self._new)

    def undo(self) -> None:
        """Restore the old value."""
        self._stack._set_property(self._layer_id, self._prop, self._old)


class ResizeCanvasCommand(QUndoCommand):
    """Change the canvas size; keeps every layer's old and new images (all of them change)."""

    def __init__(self, stack: LayerStack, size: QSize, new_images: dict[str, QImage]) -> None:
        super().__init__(f"Canvas size {size.width()}x{size.height()}")
        self._stack = stack
        self._old_size, self._new_size = QSize(stack.canvas_size), QSize(size)
        self._old_images = {layer.id: layer.image for layer in stack.layers()}
        self._new_images = new_images

    def redo(self) -> None:
        """Switch to the new size and images."""
        self._stack._set_canvas(self._new_size, self._new_images)

    def undo(self) -> None:
        """Switch back to the old size and images."""
        self._stack._set_canvas(self._old_size, self._old_images)


class EditSession:
    """The pixel edits of one gesture on one layer: keeps the before-pixels and the dirty rectangle,
    and turns them into one undo command at the end."""

    def __init__(self, stack: LayerStack, layer: Layer) -> None:
        self._stack, self.layer = stack, layer
        # One full copy per gesture keeps every segment cheap; only the dirty part is kept for undo.
        self._snapshot = layer.image.copy()
        self._dirty = QRect()

    @property
    def dirty(self) -> QRect:
        """The union of every rectangle touched so far."""
        return QRect(self._dirty)

    @property
    def snapshot(self) -> QImage:
        """The layer's pixels as they were when the gesture began."""
        return self._snapshot

    def restore(self, rect: QRect) -> None:
        """Put the before-pixels back inside `rect` (for redrawing a preview shape or a stroke)."""
        rect = rect.intersected(self._snapshot.rect())
        if not rect.isEmpty():
            draw_replace(self.layer.image, rect.topLeft(), self._snapshot, rect)

    def touch(self, rect: QRect) -> None:
        """Record that `rect` changed and tell the stack's listeners."""
        rect = rect.intersected(self._snapshot.rect())
        if rect.isEmpty():
            return
        self._dirty = self._dirty.united(rect)
        self._stack.notify_pixels_changed(self.layer.id, rect)

    def commit(self, text: str) -> PixelsCommand | None:
        """Push one undo command for everything this gesture changed (none if nothing changed)."""
        if self._dirty.isEmpty() or self._stack.find(self.layer.id) is None:
            return None
        rect = self._dirty
        command = PixelsCommand(self._stack, self.layer.id, rect, self._snapshot.copy(rect),
                                self.layer.image.copy(rect), text)
        self._stack.undo_stack.push(command)
        self._dirty = QRect()
        return command

    def cancel(self) -> None:
        """Throw the gesture's changes away."""
        if not self._dirty.isEmpty():
            dirty, self._dirty = self._dirty, QRect()
            self.restore(dirty)
            self._stack.notify_pixels_changed(self.layer.id, dirty)
