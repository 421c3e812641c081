"""The History dock: results as thumbnails; put one on the canvas, reuse its settings or seed."""

from __future__ import annotations

from PySide6.QtCore import QSize, Signal
from PySide6.QtWidgets import QHBoxLayout, QListView, QPushButton, QVBoxLayout, QWidget

from studio.models.history import HistoryEntry, HistoryModel


class HistoryPanel(QWidget):
    """Emits what the user wants done with the selected entry; the window does it."""

    place_requested = Signal(object)  # HistoryEntry
    reuse_settings_requested = Signal(object)  # HistoryEntry
    reuse_seed_requested = Signal(object)  # HistoryEntry
    export_requested = Signal(object)  # HistoryEntry

    def __init__(self, model: HistoryModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._model = model
        self.view = QListView(viewMode=QListView.ViewMode.IconMode, resizeMode=QListView.ResizeMode.Adjust,
                              iconSize=QSize(96, 96), uniformItemSizes=True, wordWrap=True)
        self.view.setModel(model)
        buttons = {
            "To canvas": ("Put the image on the canvas as a new layer", self.place_requested),
            "Settings": ("Reuse all its settings", self.reuse_settings_requested),
            "Seed": ("Reuse its seed only", self.reuse_seed_requested),
            "Export…": ("Save it as a PNG with its settings", self.export_requested),
        }
        row = QHBoxLayout()
        self.buttons: dict[str, QPushButton] = {}
        for text, (tip, signal) in buttons.items():
            button = QPushButton(text, toolTip=tip)
            button.clicked.connect(lambda _=False, s=signal: self._emit(s))
            row.addWidget(button)
            self.buttons[text] = button
        layout = QVBoxLayout(self)
        layout.addWidget(self.view)
        layout.addLayout(row)
        self.view.doubleClicked.connect(lambda _: self._emit(self.place_requested))

    def selected(self) -> HistoryEntry | None:
        """The selected entry, or None."""
        index = self.view.currentIndex()
        return self._model.entry(index.row()) if index.isValid() else None

    def _emit(self, signal) -> None:  # type: ignore[no-untyped-def]
        entry = self.selected()
        if entry is not None:
            signal.emit(entry)
