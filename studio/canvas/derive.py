"""Deriving control maps from image layers: any preprocessor of engine.control into a control
layer (a pose layer keeps its keypoints), and the canny live-preview dialog."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from engine.control import PREPROCESSORS, CannyParams, PoseKeypoints, canny, draw_pose, estimate_pose
from studio.canvas.imaging import qimage_to_premultiplied_rgba, rgba_to_qimage
from studio.canvas.layers import Layer, LayerKind, LayerStack, composite

MAX_THRESHOLD = 500
PREVIEW_SIDE = 384
POSE = "pose"


def derive_canny(rgb: np.ndarray, low: int, high: int) -> np.ndarray:
    """Canny edges (Canny 1986) of an (H, W, 3) uint8 RGB image as an (H, W, 3) white-on-black map."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}")
    return canny(rgb, CannyParams(low=int(low), high=int(high)))


def layer_rgb(stack: LayerStack, layer: Layer | None = None) -> np.ndarray:
    """The (H, W, 3) uint8 RGB a preprocessor reads: one layer, or the visible picture; transparent
    parts read as black."""
    image = composite(stack) if layer is None else layer.image
    return np.ascontiguousarray(qimage_to_premultiplied_rgba(image)[:, :, :3])  # (H, W, 3)


def run_preprocessor(rgb: np.ndarray, preprocessor: str, params: Any = None
                     ) -> tuple[np.ndarray, tuple[PoseKeypoints, ...] | None]:
    """The map of a registry preprocessor and, for pose, the keypoints it was drawn from. Raises the
    engine's errors (SettingsError, PoseNotFoundError) for the caller to show."""
    pre = PREPROCESSORS[preprocessor]
    params = pre.params() if params is None else params
    if preprocessor != POSE:
        return pre(rgb, params), None
    people = estimate_pose(rgb, params)
    return draw_pose(people, rgb.shape[1], rgb.shape[0]), people


def derive_layer(stack: LayerStack, rgb: np.ndarray, preprocessor: str, params: Any = None,
                 target_id: str | None = None, name: str | None = None) -> Layer:
    """Run a preprocessor on `rgb` and write its map with `write_control_layer`."""
    expected = (stack.canvas_size.height(), stack.canvas_size.width())
    if rgb.shape[:2] != expected:
        raise ValueError(f"source is {rgb.shape[1]}x{rgb.shape[0]}, the canvas is {expected[1]}x{expected[0]}")
    if preprocessor not in PREPROCESSORS:
        raise KeyError(f"unknown preprocessor {preprocessor!r}; valid: {', '.join(PREPROCESSORS)}")
    if target_id is not None and stack.layer(target_id).kind is not LayerKind.CONTROL:
        raise ValueError(f"{stack.layer(target_id)!r} is not a control layer")
    control, pose = run_preprocessor(rgb, preprocessor, params)
    return write_control_layer(stack, control, pose, preprocessor, target_id, name)


def write_control_layer(stack: LayerStack, control: np.ndarray, pose: tuple[PoseKeypoints, ...] | None,
                        preprocessor: str, target_id: str | None = None, name: str | None = None) -> Layer:
    """Write a map into a control layer as one undo step: into `target_id`, or a new control layer
    of the preprocessor's type on top. A pose map keeps its keypoints with the layer; any other map
    written into a pose layer drops them. Returns the layer."""
    target = stack.layer(target_id) if target_id is not None else None
    if target is not None and target.kind is not LayerKind.CONTROL:
        raise ValueError(f"{target!r} is not a control layer")
    image = rgba_to_qimage(control)
    display = PREPROCESSORS[preprocessor].name
    undo = stack.undo_stack
    undo.beginMacro(f"Derive {display.lower()}")
    try:
        if target is None:
            target = stack.add_layer(LayerKind.CONTROL, name or display, image, control_type=preprocessor)
        else:
            stack.set_pixels(target.id, image, text=f"Derive {preprocessor} into {target.name}")
        stack.set_pose(target.id, pose)
    finally:
        undo.endMacro()
    return target


def derive_canny_layer(stack: LayerStack, rgb: np.ndarray, low: int, high: int,
                       target_id: str | None = None, name: str = "Canny") -> Layer:
    """Write the canny map of `rgb` into a control layer (undoable): into `target_id`, or a new
    "canny" control layer on top. Returns that layer."""
    return derive_layer(stack, rgb, "canny", CannyParams(low=int(low), high=int(high)), target_id, name)


def _threshold_slider(value: int) -> QSlider:
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(0, MAX_THRESHOLD)
    slider.setValue(value)
    slider.setTracking(True)  # the preview follows the slider while it moves
    return slider


class CannyDeriveDialog(QDialog):
    """Pick canny thresholds while watching the edge map update live."""

    preview_updated = Signal()

    def __init__(self, rgb: np.ndarray, low: int = 100, high: int = 200, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Derive canny edges")
        self._rgb = np.array(rgb, dtype=np.uint8, copy=True)  # (H, W, 3), our own copy
        self._edges = derive_canny(self._rgb, low, high)
        self.low_slider, self.high_slider = _threshold_slider(low), _threshold_slider(high)
        self._low_label, self._high_label = QLabel(), QLabel()
        self._preview = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self._preview.setMinimumSize(PREVIEW_SIDE // 2, PREVIEW_SIDE // 2)
        self._build_layout()
        self.low_slider.valueChanged.connect(self._low_moved)
        self.high_slider.valueChanged.connect(self._high_moved)
        self._update_preview()

    def _build_layout(self) -> None:
        form = QFormLayout()
        form.addRow("Low threshold", self.low_slider)
        form.addRow("", self._low_label)
        form.addRow("High threshold", self.high_slider)
        form.addRow("", self._high_label)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self._preview, 1)
        layout.addLayout(form)
        layout.addWidget(buttons)

    @property
    def low(self) -> int:
        """The lower hysteresis threshold."""
        return self.low_slider.value()

    @property
    def high(self) -> int:
        """The upper hysteresis threshold."""
        return self.high_slider.value()

    def edges(self) -> np.ndarray:
        """The (H, W, 3) uint8 map for the current thresholds (a copy)."""
        return self._edges.copy()

    def preview_image(self) -> QImage:
        """The preview as shown (scaled to fit the preview area)."""
        return self._preview.pixmap().toImage()

    def _low_moved(self, value: int) -> None:
        if value > self.high_slider.value():
            self.high_slider.setValue(value)  # keeps low <= high visibly; its handler updates the preview
            return
        self._update_preview()

    def _high_moved(self, value: int) -> None:
        if value < self.low_slider.value():
            self.low_slider.setValue(value)
            return
        self._update_preview()

    def _update_preview(self) -> None:
        self._edges = derive_canny(self._rgb, self.low, self.high)
        self._low_label.setText(str(self.low))
        self._high_label.setText(str(self.high))
        image = rgba_to_qimage(self._edges)
        pixmap = QPixmap.fromImage(image).scaled(
            PREVIEW_SIDE, PREVIEW_SIDE, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        self._preview.setPixmap(pixmap)
        self.preview_updated.emit()
