"""Canny control maps through the general derive path: the dialog's live preview follows the
thresholds (and refuses low > high), and the map is written into a new or existing layer with undo."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QSpinBox

from engine.control import CannyParams, canny
from studio.canvas.derive import derive_layer, layer_rgb
from studio.canvas.derive_dialog import DeriveDialog
from studio.canvas.layers import LayerKind, LayerStack, control_array, rgba_to_qimage
from studio.canvas.view import CanvasView


def square(size: int = 128, level: int = 200) -> np.ndarray:
    rgb = np.zeros((size, size, 3), np.uint8)
    rgb[32:96, 32:96] = level
    return rgb


def test_canny_dialog_previews_live_while_the_thresholds_move(qtbot) -> None:
    faint = square(level=40)
    dialog = DeriveDialog(faint, "canny")
    qtbot.addWidget(dialog)
    low, high = dialog.form.widgets["low"], dialog.form.widgets["high"]
    assert isinstance(high, QSpinBox) and high.maximum() == 500
    assert isinstance(low, QSpinBox) and (low.minimum(), low.maximum()) == (0, 500)
    assert dialog.params() == CannyParams()
    np.testing.assert_array_equal(dialog.control(), canny(faint, CannyParams()))
    assert dialog.control().max() == 255
    shown = dialog.preview_image()
    with qtbot.waitSignal(dialog.preview_updated, timeout=1000):
        dialog.form.set_value("high", 500)
    with qtbot.waitSignal(dialog.preview_updated, timeout=1000):
        dialog.form.set_value("low", 480)  # too high for a faint square: no edges
    assert dialog.params() == CannyParams(low=480, high=500)
    assert dialog.control().max() == 0 and dialog.preview_image() != shown
    ok = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
    with qtbot.waitSignal(dialog.preview_updated, timeout=1000):
        dialog.form.set_value("high", 100)  # below low: said so, and nothing can be accepted
    assert "low <= high" in dialog.message.text() and not ok.isEnabled() and dialog.control() is None
    assert dialog.preview_image().isNull()
    dialog.form.set_value("low", 50)
    assert dialog.message.text() == "" and ok.isEnabled()
    np.testing.assert_array_equal(dialog.control(), canny(faint, CannyParams(low=50, high=100)))


def test_derive_canny_into_a_new_or_existing_control_layer_with_undo(stack: LayerStack) -> None:
    image = stack.add_layer(LayerKind.IMAGE, "photo", rgba_to_qimage(square()))
    rgb = layer_rgb(stack, image)
    np.testing.assert_array_equal(rgb, square())
    layer = derive_layer(stack, rgb, "canny", CannyParams(low=100, high=200))
    assert layer.kind is LayerKind.CONTROL and layer.control_type == "canny" and layer.name == "Canny edges"
    np.testing.assert_array_equal(control_array(layer), canny(square(), CannyParams(low=100, high=200)))
    scribble = stack.add_layer(LayerKind.CONTROL, "scribble", control_type="scribble")
    derive_layer(stack, rgb, "canny", target_id=scribble.id)
    assert control_array(scribble).max() == 255
    stack.undo_stack.undo()
    assert control_array(scribble).max() == 0
    with pytest.raises(ValueError, match="not a control layer"):
        derive_layer(stack, rgb, "canny", target_id=image.id)
    with pytest.raises(ValueError, match="the canvas is 128x128"):
        derive_layer(stack, rgb[:64], "canny")


def test_view_dialog_flow_writes_canny_into_the_current_canny_layer(view: CanvasView, stack: LayerStack,
                                                                    monkeypatch) -> None:
    stack.add_layer(LayerKind.IMAGE, "photo", rgba_to_qimage(square(level=40)))

    def accept_with_low_thresholds(dialog: DeriveDialog) -> QDialog.DialogCode:
        assert dialog.preprocessor == "canny"
        dialog.form.set_value("low", 50)
        dialog.form.set_value("high", 100)
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(DeriveDialog, "exec", accept_with_low_thresholds)
    layer = view.open_derive_dialog()
    assert layer is not None and stack.current is layer and layer.control_type == "canny"
    np.testing.assert_array_equal(control_array(layer), canny(square(level=40), CannyParams(low=50, high=100)))
    layers = len(stack.layers())
    assert view.open_derive_dialog("canny") is layer and len(stack.layers()) == layers  # the current canny layer
    monkeypatch.setattr(DeriveDialog, "exec", lambda dialog: QDialog.DialogCode.Rejected)
    assert view.open_derive_dialog() is None and len(stack.layers()) == layers
