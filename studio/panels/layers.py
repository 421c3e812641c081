"""The Layers dock: the layer list (top first) with visibility, opacity, order and add/remove."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListView, QMenu, QSlider, QToolButton, QVBoxLayout, QWidget

from studio.canvas.control_kinds import CONTROL_KINDS
from studio.canvas.layers import LayerKind, LayerStack

CONTROL_LAYER_TYPES = tuple(CONTROL_KINDS)


class LayersPanel(QWidget):
    """Edits the LayerStack; every change goes through its undo stack."""

    def __init__(self, stack: LayerStack, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._stack = stack
        self.view = QListView()
        self.view.setModel(stack)
        self.view.setDragDropMode(QListView.DragDropMode.NoDragDrop)
        self.opacity = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100, toolTip="Layer opacity")
        add = QToolButton(text="+", toolTip="Add a layer", popupMode=QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(add)
        menu.addAction("Image layer", lambda: self._add(LayerKind.IMAGE, "Image"))
        menu.addAction("Inpaint mask", lambda: stack.set_current(stack.mask_layer().id))
        for control_type in CONTROL_LAYER_TYPES:
            menu.addAction(f"Control layer: {control_type}", lambda t=control_type: self._add(LayerKind.CONTROL, t, t))
        add.setMenu(menu)
        self.add_button = add
        self.remove_button = QToolButton(text="−", toolTip="Remove the selected layer")
        self.up_button = QToolButton(text="▲", toolTip="Move the layer up")
        self.down_button = QToolButton(text="▼", toolTip="Move the layer down")
        row = QHBoxLayout()
        for w in (add, self.remove_button, self.up_button, self.down_button):
            row.addWidget(w)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view)
        opacity_row = QHBoxLayout()
        opacity_row.addWidget(QLabel("Opacity"))
        opacity_row.addWidget(self.opacity, 1)
        layout.addLayout(opacity_row)
        layout.addLayout(row)
        self.view.selectionModel().currentChanged.connect(self._selected)
        stack.current_changed.connect(self._show_current)
        stack.layer_changed.connect(lambda _id: self._show_current(stack.current.id if stack.current else ""))
        self.opacity.valueChanged.connect(self._set_opacity)
        self.remove_button.clicked.connect(self._remove)
        self.up_button.clicked.connect(lambda: self._move(+1))
        self.down_button.clicked.connect(lambda: self._move(-1))
        self._show_current(stack.current.id if stack.current else "")

    def _add(self, kind: LayerKind, name: str, control_type: str | None = None) -> None:
        layer = self._stack.add_layer(kind, name, control_type=control_type)
        self._stack.set_current(layer.id)

    def _selected(self, index) -> None:  # type: ignore[no-untyped-def]
        if index.isValid():
            self._stack.set_current(self._stack.layer_at_row(index.row()).id)

    def _show_current(self, layer_id: str) -> None:
        layer = self._stack.find(layer_id) if layer_id else None
        for w in (self.opacity, self.remove_button, self.up_button, self.down_button):
            w.setEnabled(layer is not None)
        if layer is None:
            return
        self.opacity.blockSignals(True)
        self.opacity.setValue(round(layer.opacity * 100))
        self.opacity.blockSignals(False)
        index = self._stack.index(self._stack.row_of(layer_id))
        if self.view.currentIndex() != index:
            self.view.setCurrentIndex(index)

    def _set_opacity(self, value: int) -> None:
        if self._stack.current is not None:
            self._stack.set_opacity(self._stack.current.id, value / 100)

    def _remove(self) -> None:
        if self._stack.current is not None:
            self._stack.remove_layer(self._stack.current.id)

    def _move(self, delta: int) -> None:
        layer = self._stack.current
        if layer is not None:
            target = self._stack.index_of(layer.id) + delta
            if 0 <= target < len(self._stack.layers()):
                self._stack.move_layer(layer.id, target)
