"""The Upscale dialog: source, upscaler, scale and tile size; OK starts the run on its controller, then a
progress bar follows the tiles and Cancel stops the run. It closes when the run ends."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QProgressBar, QPushButton, QSpinBox, QWidget)

from engine.upscale import UPSCALERS
from engine.upscale.tiling import MAX_TILE, MIN_TILE

if TYPE_CHECKING:
    from studio.upscale import UpscaleController, UpscaleRequest

DEFAULT_TILE = 256  # what the tile box shows when "auto" is turned off
MODEL_FILTER = "Upscaler models (*.safetensors *.pth *.pt *.ckpt *.bin)"


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
            self._add_upscaler(name, name, spec.summary)
        for name, path, architecture in controller.upscaler_files:  # from the models folders
            self._add_upscaler(name, path, f"{path}\n{architecture}")
        self.browse = QPushButton("File…", toolTip="Use an upscaler model file: ESRGAN / Real-ESRGAN (RRDBNet), "
                                  "Real-ESRGAN compact (SRVGGNetCompact), SwinIR or HAT, .safetensors or .pth")
        self.browse.clicked.connect(self.choose_file)
        upscaler_row = QHBoxLayout()
        upscaler_row.addWidget(self.upscaler, 1)
        upscaler_row.addWidget(self.browse)
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
        form.addRow("Upscaler", upscaler_row)
        form.addRow("Scale", self.scale)
        form.addRow("Tile size", tile_row)
        form.addRow(self.progress)
        form.addRow(self.buttons)
        controller.progress.connect(self._on_progress)
        controller.running_changed.connect(self._on_running)

    def _add_upscaler(self, label: str, data: str, tip: str) -> None:
        self.upscaler.addItem(label, data)
        self.upscaler.setItemData(self.upscaler.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)

    def choose_file(self, path: str | None = None) -> None:
        """Add an upscaler model file to the list and select it (`path`, else one picked in a file dialog)."""
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Upscaler model file", "", MODEL_FILTER)
        if not path:
            return
        if self.upscaler.findData(path) < 0:
            self._add_upscaler(Path(path).stem, path, path)
        self.upscaler.setCurrentIndex(self.upscaler.findData(path))

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
        for widget in (self.source, self.upscaler, self.browse, self.scale, self.auto_tile, self.tile):
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
