"""Two-way binding of plain widgets to one JobModel field, without feedback loops."""

from __future__ import annotations

from typing import Any, Callable

from PySide6.QtCore import QSignalBlocker
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QPlainTextEdit, QSpinBox, QWidget

from studio.models.job_model import JobModel


def _bind(model: JobModel, name: str, widget: QWidget, write: Callable[[Any], None],
          edited, read: Callable[[], Any]) -> None:  # type: ignore[no-untyped-def]
    def show(value: Any) -> None:
        with QSignalBlocker(widget):
            write(value)

    show(model.get(name))
    getattr(model, f"{name}_changed").connect(show)

    def commit(*_: Any) -> None:
        if not model.set(**{name: read()}):
            show(model.get(name))  # rejected: show the value the model kept

    edited.connect(commit)


def bind_int(model: JobModel, name: str, spin: QSpinBox) -> None:
    """Bind an integer Job field to a spin box."""
    _bind(model, name, spin, spin.setValue, spin.valueChanged, spin.value)


def bind_float(model: JobModel, name: str, spin: QDoubleSpinBox) -> None:
    """Bind a float Job field to a double spin box."""
    _bind(model, name, spin, spin.setValue, spin.valueChanged, spin.value)


def bind_text(model: JobModel, name: str, edit: QPlainTextEdit) -> None:
    """Bind a string Job field to a plain-text editor (keeps the cursor when the text is equal)."""
    def write(value: str) -> None:
        if edit.toPlainText() != value:
            edit.setPlainText(value)

    _bind(model, name, edit, write, edit.textChanged, edit.toPlainText)


def bind_choice(model: JobModel, name: str, combo: QComboBox) -> None:
    """Bind a string Job field to a combo box whose item data are the allowed ids."""
    def write(value: str) -> None:
        combo.setCurrentIndex(max(combo.findData(value), 0))

    _bind(model, name, combo, write, combo.currentIndexChanged, combo.currentData)


def bind_bool(model: JobModel, name: str, box: QCheckBox) -> None:
    """Bind a boolean Job field to a check box."""
    _bind(model, name, box, box.setChecked, box.toggled, box.isChecked)
