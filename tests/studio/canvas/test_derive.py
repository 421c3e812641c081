"""Canny control maps: edges of a synthetic square, the live-preview dialog and writing into layers."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtWidgets import QDialog

from studio.canvas.derive import CannyDeriveDialog, derive_canny, derive_canny_layer, layer_rgb
from studio.canvas.layers import LayerKind, LayerStack, control_array, rgba_to_qimage
from studio.canvas.view import CanvasView


def square(size: int = 128, level: int = 200) -> np.ndarray:
    rgb = np.zeros((size, size, 3), np.uint8)
    rgb[32:96, 32:96] = level
    return rgb


def test_canny_finds_the_edges_of_a_square() -> None:
    edges = derive_canny(square(), 100, 200)
    assert edges.shape == (128, 128, 3) and edges.dtype == np.uint8
    assert set(np.unique(edges)) == {0, 255} and (edges[..., 0] == edges[..., 2]).all()
    on = edges[..., 0] > 0
    ys, xs = np.nonzero(on)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == pytest.approx((32, 95, 32, 95), abs=1)
    assert not on[40:88, 40:88].any() and not on[:28].any()  # nothing inside or far outside
    assert on[64, 30:35].any() and on[30:35, 64].any()


def test_canny_thresholds_matter_and_are_checked() -> None:
    faint = square(level=40)
    assert derive_canny(faint, 50, 100).max() == 255
    assert derive_canny(faint, 400, 500).max() == 0
    with pytest.raises(ValueError, match="low <= high"):
        derive_canny(faint, 200, 100)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        derive_canny(faint[..., 0], 1, 2)


def test_dialog_preview_updates_while_the_slider_moves(qtbot) -> None:
    dialog = CannyDeriveDialog(square(level=40), low=50, high=100)
    qtbot.addWidget(dialog)
    shown = dialog.preview_image()
    assert dialog.edges().max() == 255
    with qtbot.waitSignal(dialog.preview_updated, timeout=1000):
        dialog.high_slider.setValue(500)
    assert dialog.high == 500 and dialog.edges().max() == 0
    assert dialog.preview_image() != shown
    with qtbot.waitSignal(dialog.preview_updated, timeout=1000):
        dialog.low_slider.setValue(480)
    assert dialog.low == 480 and dialog.high == 500
    dialog.high_slider.setValue(100)  # low follows so that low <= high holds
    assert dialog.low == 100 and dialog.edges().max() == 255


def test_derive_into_a_new_or_existing_control_layer_with_undo(stack: LayerStack) -> None:
    image = stack.add_layer(LayerKind.IMAGE, "photo", rgba_to_qimage(square()))
    rgb = layer_rgb(stack, image)
    np.testing.assert_array_equal(rgb, square())
    layer = derive_canny_layer(stack, rgb, 100, 200)
    assert layer.kind is LayerKind.CONTROL and layer.control_type == "canny"
    np.testing.assert_array_equal(control_array(layer), derive_canny(square(), 100, 200))
    scribble = stack.add_layer(LayerKind.CONTROL, "scribble", control_type="scribble")
    derive_canny_layer(stack, rgb, 100, 200, target_id=scribble.id)
    assert control_array(scribble).max() == 255
    stack.undo_stack.undo()
    assert control_array(scribble).max() == 0
    with pytest.raises(ValueError, match="not a control layer"):
        derive_canny_layer(stack, rgb, 1, 2, target_id=image.id)


def test_view_dialog_flow_writes_a_canny_layer(view: CanvasView, stack: LayerStack, monkeypatch) -> None:
    stack.add_layer(LayerKind.IMAGE, "photo", rgba_to_qimage(square()))
    monkeypatch.setattr(CannyDeriveDialog, "exec", lambda self: QDialog.DialogCode.Accepted)
    layer = view.open_canny_dialog()
    assert layer is not None and stack.current is layer and control_array(layer).max() == 255
