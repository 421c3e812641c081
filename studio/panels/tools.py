"""The Tools dock: painting tools, brush size/opacity/hardness and colour, deriving control maps."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QColorDialog, QFormLayout, QGridLayout, QPushButton, QSlider, QToolButton, QVBoxLayout, QWidget

from studio.canvas.actions import CanvasActions
from studio.canvas.tools import ToolSettings


class ToolsPanel(QWidget):
    """Buttons for the canvas tool actions and sliders bound to the ToolSettings."""

    def __init__(self, tools: ToolSettings, actions: CanvasActions, derive: Callable[[], object],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._tools = tools
        grid = QGridLayout()
        for i, action in enumerate(actions.tool_actions.values()):
            button = QToolButton()
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            grid.addWidget(button, i // 4, i % 4)
        self.size = QSlider(Qt.Orientation.Horizontal, minimum=1, maximum=512, toolTip="Brush size ([ and ])")
        self.opacity = QSlider(Qt.Orientation.Horizontal, minimum=1, maximum=100, toolTip="Brush opacity")
        self.hardness = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100, toolTip="Brush edge hardness")
        self.color = QPushButton(toolTip="Brush colour (image and segmentation layers)")
        self.derive = QPushButton("Derive control map…", toolTip="Make a control map (canny, scribble, line "
                                  "art, segmentation, pose, tile, shuffle) from the image layers")
        self.derive.clicked.connect(lambda _checked=False: derive())
        form = QFormLayout()
        form.addRow("Size", self.size)
        form.addRow("Opacity", self.opacity)
        form.addRow("Hardness", self.hardness)
        form.addRow("Colour", self.color)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addLayout(form)
        layout.addWidget(self.derive)
        layout.addStretch(1)
        self._bind()

    def _bind(self) -> None:
        t = self._tools
        self.size.setValue(int(t.brush_size))
        self.opacity.setValue(round(t.opacity * 100))
        self.hardness.setValue(round(t.hardness * 100))
        self._show_color(t.color)
        t.brush_size_changed.connect(lambda v: self._quiet(self.size, int(v)))
        t.opacity_changed.connect(lambda v: self._quiet(self.opacity, round(v * 100)))
        t.hardness_changed.connect(lambda v: self._quiet(self.hardness, round(v * 100)))
        t.color_changed.connect(self._show_color)
        self.size.valueChanged.connect(lambda v: setattr(t, "brush_size", int(v)))
        self.opacity.valueChanged.connect(lambda v: setattr(t, "opacity", v / 100))
        self.hardness.valueChanged.connect(lambda v: setattr(t, "hardness", v / 100))
        self.color.clicked.connect(self._pick_color)

    @staticmethod
    def _quiet(slider: QSlider, value: int) -> None:
        slider.blockSignals(True)
        slider.setValue(value)
        slider.blockSignals(False)

    def _show_color(self, color: QColor) -> None:
        color = QColor(color)
        text = "#000000" if color.lightnessF() > 0.5 else "#ffffff"  # the name stays readable on its swatch
        self.color.setText(color.name())
        self.color.setStyleSheet(f"background: {color.name()}; color: {text}")

    def _pick_color(self) -> None:
        color = QColorDialog.getColor(self._tools.color, self, "Brush colour")
        if color.isValid():
            self._tools.color = color
