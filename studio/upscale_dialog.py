"""The Upscale dialog: source, upscaler, scale and tile size; OK starts the run on its controller, then a
progress bar follows the tiles and Cancel stops the run. It closes when the run ends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout,
                               QHBoxLayout, QProgressBar, QSpinBox, QWidget)

from engine.upscale import UPSCALERS
from engine.upscale.tiling import MAX_TILE, MIN_TILE

if TYPE_CHECKING:
    from studio.upscale import UpscaleController, UpscaleRequest

DEFAULT_TILE = 256  # what the tile box shows when "auto" is turned off


class UpscaleDialog(QDialog):
    """Asks for an UpscaleRequest and shows its run's progress."""

    def __init__(self, controller: UpscaleController, has_history_image: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Upscale")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._controller = controller
        self.source = QComboBox(toolTip="What to upscale.")
        self.source.addItem("Canvas (all visible image layers)", "canvas")
        self.source.addItem("Selected History image", "history")
        self.source.model().item(1).setEnabled(has_history_image)  # type: ignore[attr-defined]
        self.upscaler = QComboBox()
        for name, spec in UPSCALERS.items():
            self.upscaler.addItem(name, name)
            self.upscaler.setItemData(self.upscaler.count() - 1, spec.summary, Qt.ItemDataRole.ToolTipRole)
        self.scale = QDoubleSpinBox(minimum=1.0, maximum=8.0, value=2.0, singleStep=0.5, decimals=2, suffix="×",
                                    toolTip="How many times larger the result is.")
        self.auto_tile = QCheckBox("Auto", checked=True, toolTip="Pick the tile size from free memory.")
        self.tile = QSpinBox(minimum=MIN_TILE, maximum=MAX_TILE, value=DEFAULT_TILE, singleStep=64, suffix=" px",
                             enabled=False, toolTip="Input pixels per tile side (model upscalers run in tiles).")
        self.auto_tile.toggled.connect(lambda auto: self.tile.setEnabled(not auto))
        tile_row = QHBoxLayout()
        tile_row.addWidget(self.auto_tile)
        tile_row.addWidget(self.tile)
        self.progress = QProgressBar(textVisible=True, visible=False)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.start)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Source", self.source)
        form.addRow("Upscaler", self.upscaler)
        form.addRow("Scale", self.scale)
        form.addRow("Tile size", tile_row)
        form.addRow(self.progress)
        form.addRow(self.buttons)
        controller.progress.connect(self._on_progress)
        controller.running_changed.connect(self._on_running)

    def request(self) -> UpscaleRequest:
        """The settings as shown."""
        from studio.upscale import UpscaleRequest

        tile = None if self.auto_tile.isChecked() else self.tile.value()
        return UpscaleRequest(self.source.currentData(), self.upscaler.currentData(), self.scale.value(), tile)

    def start(self) -> None:
        """Start the run; the dialog stays open with its progress bar until the run ends."""
        if self._controller.start(self.request()) is None:
            return
        self.progress.setRange(0, 0)  # busy until the first tile
        self.progress.setVisible(True)
        for widget in (self.source, self.upscaler, self.scale, self.auto_tile, self.tile):
            widget.setEnabled(False)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(False)

    def reject(self) -> None:
        """Cancel: stop the run if one is going (the dialog closes when it ends), else close."""
        if self._controller.running and self.progress.isVisible():
            self._controller.cancel()
            self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setEnabled(False)
            return
        super().reject()

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.progress.setFormat(f"tile {done} of {total}")

    def _on_running(self, running: bool) -> None:
        if not running and self.progress.isVisible():
            self.accept()
