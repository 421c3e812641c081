"""The derive dialog: pick any preprocessor of engine.control, edit its parameters in widgets built
from its params dataclass, and watch the control map update live."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.control import PREPROCESSORS, ParamSpec, PoseKeypoints, PoseNotFoundError
from engine.settings.codec import SettingsError
from studio.canvas.derive import PREVIEW_SIDE, run_preprocessor
from studio.canvas.imaging import rgba_to_qimage


def _decimals(step: float) -> int:
    return max(0, -math.floor(math.log10(step))) if step < 1 else 0


class ParamForm(QWidget):
    """One widget per ParamSpec (spin box, check box or choice box); `values()` reads them back."""

    changed = Signal()

    def __init__(self, specs: tuple[ParamSpec, ...], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.widgets: dict[str, QWidget] = {}
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        for spec in specs:
            widget = self._widget(spec)
            widget.setToolTip(spec.doc)
            self.widgets[spec.name] = widget
            form.addRow(spec.label, widget)

    def _widget(self, spec: ParamSpec) -> QWidget:
        if spec.kind == "bool":
            box = QCheckBox(checked=bool(spec.default))
            box.toggled.connect(self.changed)
            return box
        if spec.kind == "choice":
            combo = QComboBox()
            combo.addItems(list(spec.choices))
            combo.setCurrentText(str(spec.default))
            combo.currentTextChanged.connect(self.changed)
            return combo
        assert spec.minimum is not None and spec.maximum is not None and spec.step is not None
        if spec.kind == "int":
            spin: QSpinBox | QDoubleSpinBox = QSpinBox(minimum=int(spec.minimum), maximum=int(spec.maximum),
                                                       singleStep=int(spec.step))
        else:
            spin = QDoubleSpinBox(minimum=spec.minimum, maximum=spec.maximum, singleStep=spec.step,
                                  decimals=max(2, _decimals(spec.step)))
        spin.setValue(spec.default)  # type: ignore[arg-type]
        spin.setKeyboardTracking(False)  # typed numbers apply on enter, not on every digit
        spin.valueChanged.connect(self.changed)
        return spin

    def values(self) -> dict[str, Any]:
        """The widgets' values by field name."""
        out: dict[str, Any] = {}
        for name, widget in self.widgets.items():
            if isinstance(widget, QCheckBox):
                out[name] = widget.isChecked()
            elif isinstance(widget, QComboBox):
                out[name] = widget.currentText()
            else:
                out[name] = widget.value()  # type: ignore[attr-defined]
        return out

    def set_value(self, name: str, value: Any) -> None:
        """Set one widget (emits `changed` when the value differs)."""
        widget = self.widgets[name]
        if isinstance(widget, QCheckBox):
            widget.setChecked(bool(value))
        elif isinstance(widget, QComboBox):
            widget.setCurrentText(str(value))
        else:
            widget.setValue(value)  # type: ignore[attr-defined]


class DeriveDialog(QDialog):
    """Choose a preprocessor and its parameters with a live preview; after OK, `control()` and
    `keypoints()` hold the accepted map (and pose keypoints)."""

    preview_updated = Signal()

    def __init__(self, rgb: np.ndarray, preprocessor: str = "canny", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Derive control map")
        self._rgb = np.array(rgb, dtype=np.uint8, copy=True)  # (H, W, 3), our own copy
        self._control: np.ndarray | None = None
        self._pose: tuple[PoseKeypoints, ...] | None = None
        self.kind_box = QComboBox(toolTip="The preprocessor; its map feeds ControlNet units of the same type.")
        for ident, pre in PREPROCESSORS.items():
            self.kind_box.addItem(pre.name, ident)
        self.kind_box.setCurrentIndex(self.kind_box.findData(preprocessor))
        self.form = ParamForm(PREPROCESSORS[self.preprocessor].specs())
        self.message = QLabel(wordWrap=True)
        self._preview = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self._preview.setMinimumSize(PREVIEW_SIDE // 2, PREVIEW_SIDE // 2)
        self._buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self._buttons.accepted.connect(self.accept)
        self._buttons.rejected.connect(self.reject)
        self._layout = QVBoxLayout(self)
        for widget in (self._preview, self.kind_box, self.form, self.message, self._buttons):
            self._layout.addWidget(widget, 1 if widget is self._preview else 0)
        self.kind_box.currentIndexChanged.connect(self._kind_changed)
        self.form.changed.connect(self._update_preview)
        self._update_preview()

    @property
    def preprocessor(self) -> str:
        """The chosen preprocessor id."""
        return str(self.kind_box.currentData())

    def params(self) -> Any:
        """The params object of the widgets' values (raises SettingsError for a bad combination)."""
        return PREPROCESSORS[self.preprocessor].make_params(**self.form.values())

    def control(self) -> np.ndarray | None:
        """The (H, W, 3) uint8 map for the current choice (a copy), or None when it failed."""
        return None if self._control is None else self._control.copy()

    def keypoints(self) -> tuple[PoseKeypoints, ...] | None:
        """The pose keypoints the map was drawn from (pose only)."""
        return self._pose

    def preview_image(self) -> QImage:
        """The preview as shown (scaled to fit the preview area)."""
        pixmap = self._preview.pixmap()
        return QImage() if pixmap.isNull() else pixmap.toImage()

    def _kind_changed(self) -> None:
        form = ParamForm(PREPROCESSORS[self.preprocessor].specs())
        self._layout.replaceWidget(self.form, form)
        self.form.deleteLater()
        self.form = form
        form.changed.connect(self._update_preview)
        self._update_preview()

    def _update_preview(self) -> None:
        try:
            self._control, self._pose = run_preprocessor(self._rgb, self.preprocessor, self.params())
            self.message.setText("")
        except (SettingsError, PoseNotFoundError) as exc:
            self._control, self._pose = None, None
            self.message.setText(str(exc))
        self._buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(self._control is not None)
        if self._control is None:
            self._preview.clear()
        else:
            pixmap = QPixmap.fromImage(rgba_to_qimage(self._control)).scaled(
                PREVIEW_SIDE, PREVIEW_SIDE, Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation)
            self._preview.setPixmap(pixmap)
        self.preview_updated.emit()
