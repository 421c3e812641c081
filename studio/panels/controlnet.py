"""The ControlNet dock: the job's control units, each with type, model, weight, start/end and
the canvas layer that feeds it. The units live in the job model (`Job.controls`)."""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.settings import ControlUnit
from studio.models.job_model import JobModel

CONTROL_TYPES: dict[str, str] = {
    "scribble": "Scribble",
    "canny": "Canny edges",
    "lineart": "Line art",
    "seg": "Segmentation",
    "pose": "Pose",
    "tile": "Tile",
    "shuffle": "Shuffle",
}
LAYER_PREFIX = "layer:"


class ControlNetPanel(QWidget):
    """Edits `Job.controls`; adding a unit asks the window for a control layer to feed it."""

    add_requested = Signal(str)  # control type: the window creates a layer and calls add_unit
    remove_requested = Signal(str)  # the image reference of the removed unit
    type_changed = Signal(str, str, str)  # a unit's image reference, its old type, its new type

    def __init__(self, model: JobModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._model = model
        self.units = QListWidget()
        self.type_box = QComboBox(toolTip="What kind of map this unit reads.")
        for ident, label in CONTROL_TYPES.items():
            self.type_box.addItem(label, ident)
        self.model_box = QComboBox(editable=True, toolTip="The ControlNet model for this unit.")
        self.layer_box = QComboBox(toolTip="The canvas layer whose pixels are the control map.")
        self.weight = QDoubleSpinBox(minimum=0.0, maximum=2.0, singleStep=0.05, decimals=2,
                                     toolTip="How strongly the map steers the image.")
        self.start = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.05, decimals=2,
                                    toolTip="Fraction of the steps after which the unit starts.")
        self.end = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.05, decimals=2,
                                  toolTip="Fraction of the steps after which the unit stops.")
        self.add_button = QPushButton("Add unit")
        self.remove_button = QPushButton("Remove")
        self._build()
        model.controls_changed.connect(self._show_units)
        self._show_units(model.job.controls)

    def _build(self) -> None:
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        form = QFormLayout()
        form.addRow("Type", self.type_box)
        form.addRow("Model", self.model_box)
        form.addRow("Layer", self.layer_box)
        form.addRow("Weight", self.weight)
        form.addRow("Start", self.start)
        form.addRow("End", self.end)
        layout = QVBoxLayout(self)
        layout.addWidget(self.units)
        layout.addLayout(buttons)
        layout.addLayout(form)
        self.units.currentRowChanged.connect(self._show_current)
        self.add_button.clicked.connect(lambda: self.add_requested.emit(self.type_box.currentData()))
        self.remove_button.clicked.connect(self._remove_current)
        for spin in (self.weight, self.start, self.end):
            spin.valueChanged.connect(self._commit)
        for combo in (self.type_box, self.layer_box):
            combo.currentIndexChanged.connect(self._commit)
        self.model_box.currentTextChanged.connect(self._commit)

    def set_layer_choices(self, layers: list[tuple[str, str]]) -> None:
        """The control layers a unit can read, as (layer id, name)."""
        self.layer_box.blockSignals(True)
        self.layer_box.clear()
        for layer_id, name in layers:
            self.layer_box.addItem(name, LAYER_PREFIX + layer_id)
        self.layer_box.blockSignals(False)
        self._show_current(self.units.currentRow())

    def set_model_choices(self, names: list[str]) -> None:
        """The ControlNet models found in the model store."""
        text = self.model_box.currentText()
        self.model_box.blockSignals(True)
        self.model_box.clear()
        self.model_box.addItems(names)
        self.model_box.setEditText(text)
        self.model_box.blockSignals(False)

    def add_unit(self, control_type: str, image: str) -> None:
        """Append a unit reading `image` (usually "layer:<id>") and select it."""
        unit = ControlUnit(type=control_type, image=image)
        self._model.set(controls=(*self._model.job.controls, unit))
        self.units.setCurrentRow(len(self._model.job.controls) - 1)

    def _remove_current(self) -> None:
        row = self.units.currentRow()
        controls = list(self._model.job.controls)
        if 0 <= row < len(controls):
            removed = controls.pop(row)
            self._model.set(controls=tuple(controls))
            self.remove_requested.emit(removed.image)

    def _show_units(self, controls: tuple[ControlUnit, ...]) -> None:
        row = self.units.currentRow()
        self.units.blockSignals(True)
        self.units.clear()
        for i, unit in enumerate(controls):
            self.units.addItem(f"{i + 1}. {CONTROL_TYPES.get(unit.type, unit.type)}  ×{unit.weight:g}")
        self.units.blockSignals(False)
        self.units.setCurrentRow(min(max(row, 0), len(controls) - 1) if controls else -1)
        self._show_current(self.units.currentRow())

    def _show_current(self, row: int) -> None:
        controls = self._model.job.controls
        enabled = 0 <= row < len(controls)
        for w in (self.type_box, self.model_box, self.layer_box, self.weight, self.start, self.end,
                  self.remove_button):
            w.setEnabled(enabled)
        if not enabled:
            return
        unit = controls[row]
        widgets = (self.type_box, self.model_box, self.layer_box, self.weight, self.start, self.end)
        for w in widgets:
            w.blockSignals(True)
        self.type_box.setCurrentIndex(max(self.type_box.findData(unit.type), 0))
        self.model_box.setEditText(unit.model or "")
        self.layer_box.setCurrentIndex(self.layer_box.findData(unit.image))
        self.weight.setValue(unit.weight)
        self.start.setValue(unit.start)
        self.end.setValue(unit.end)
        for w in widgets:
            w.blockSignals(False)

    def _commit(self, *_: object) -> None:
        row = self.units.currentRow()
        controls = list(self._model.job.controls)
        if not 0 <= row < len(controls):
            return
        unit = controls[row]
        image = self.layer_box.currentData() or unit.image
        changes = dict(type=self.type_box.currentData(), model=self.model_box.currentText() or None, image=image,
                       weight=self.weight.value(), start=self.start.value(), end=self.end.value())
        try:
            controls[row] = dataclasses.replace(unit, **changes)
        except ValueError as exc:  # e.g. start >= end: show the stored unit again
            self._model.invalid.emit(f"controls[{row}]", str(exc))
            self._show_current(row)
            return
        if self._model.set(controls=tuple(controls)) and controls[row].type != unit.type:
            self.type_changed.emit(controls[row].image, unit.type, controls[row].type)
