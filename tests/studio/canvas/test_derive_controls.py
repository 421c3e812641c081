"""Deriving any registry preprocessor into a control layer through the dialog, and editing a pose
layer by dragging its joints on the canvas (redrawn on release, undoable)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QSize
from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QSpinBox
from skimage import data

from engine.control import PREPROCESSORS, LineartParams, ScribbleParams, SegParams, draw_pose, redraw_pose, seg
from engine.control.pose import BODY_POINTS, COLORS
from studio.canvas.derive import derive_layer, layer_rgb, write_control_layer
from studio.canvas.derive_dialog import DeriveDialog
from studio.canvas.layers import LayerKind, LayerStack, control_array, rgba_to_qimage
from studio.canvas.view import CanvasView
from studio.panels.controlnet import CONTROL_TYPES
from tests.engine.control.images import STICK_FIGURE, stick_figure
from tests.studio.canvas.helpers import drag

LEFT_SHOULDER = BODY_POINTS.index("left_shoulder")
LEFT_WRIST = BODY_POINTS.index("left_wrist")


def photo(side: int = 128) -> np.ndarray:
    return np.ascontiguousarray(data.astronaut()[:: 512 // side, :: 512 // side])  # (side, side, 3)


def test_the_registry_is_what_the_controlnet_panel_offers() -> None:
    for ident, pre in PREPROCESSORS.items():
        assert CONTROL_TYPES[ident] == pre.name


def test_dialog_builds_widgets_from_params_and_previews_live(qtbot) -> None:
    dialog = DeriveDialog(photo(), "scribble")
    qtbot.addWidget(dialog)
    assert [dialog.kind_box.itemData(i) for i in range(dialog.kind_box.count())] == list(PREPROCESSORS)
    thickness = dialog.form.widgets["thickness"]
    sigma = dialog.form.widgets["sigma"]
    assert isinstance(thickness, QSpinBox) and (thickness.minimum(), thickness.maximum()) == (0, 10)
    assert isinstance(sigma, QDoubleSpinBox) and sigma.value() == ScribbleParams().sigma
    np.testing.assert_array_equal(dialog.control(), PREPROCESSORS["scribble"](photo()))
    shown = dialog.preview_image()
    with qtbot.waitSignal(dialog.preview_updated, timeout=2000):
        dialog.form.set_value("thickness", 4)
    assert dialog.params() == ScribbleParams(thickness=4) and dialog.preview_image() != shown
    np.testing.assert_array_equal(dialog.control(), PREPROCESSORS["scribble"](photo(), ScribbleParams(thickness=4)))
    dialog.kind_box.setCurrentIndex(dialog.kind_box.findData("lineart"))
    assert isinstance(dialog.form.widgets["method"], QComboBox) and dialog.params() == LineartParams()
    dialog.form.set_value("sigma", 0.0)  # xdog needs sigma > 0: shown, and OK is disabled
    ok = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
    assert "xdog needs sigma > 0" in dialog.message.text() and not ok.isEnabled() and dialog.control() is None
    dialog.form.set_value("method", "adaptive")
    assert dialog.message.text() == "" and ok.isEnabled() and dialog.control() is not None


def test_view_derives_a_segmentation_layer_through_the_dialog(view: CanvasView, stack: LayerStack,
                                                               monkeypatch) -> None:
    stack.add_layer(LayerKind.IMAGE, "photo", rgba_to_qimage(photo()))

    def accept_with_five_clusters(dialog: DeriveDialog) -> QDialog.DialogCode:
        dialog.form.set_value("clusters", 5)
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(DeriveDialog, "exec", accept_with_five_clusters)
    layer = view.open_derive_dialog("seg")
    assert layer is not None and stack.current is layer
    assert layer.kind is LayerKind.CONTROL and layer.control_type == "seg" and layer.pose is None
    np.testing.assert_array_equal(control_array(layer), seg(photo(), SegParams(clusters=5)))
    stack.undo_stack.undo()
    assert stack.find(layer.id) is None


@pytest.fixture
def pose_view(qtbot) -> CanvasView:
    """A shown view over a 512 x 512 canvas holding the astronaut photo (large enough for MediaPipe)."""
    stack = LayerStack(QSize(512, 512))
    stack.add_layer(LayerKind.IMAGE, "photo", rgba_to_qimage(data.astronaut()))
    widget = CanvasView(stack, stack.undo_stack)
    qtbot.addWidget(widget)
    widget.resize(600, 600)
    widget.show()
    qtbot.waitExposed(widget)
    widget.zoom_to_fit()
    return widget


def test_dragging_a_joint_redraws_the_pose_map_and_undo_restores_it(pose_view: CanvasView) -> None:
    stack = pose_view.stack
    layer = derive_layer(stack, layer_rgb(stack), "pose")
    assert layer.control_type == "pose" and stack.current is layer and layer.pose is not None
    original_pose, original_map = layer.pose, control_array(layer)
    np.testing.assert_array_equal(original_map, draw_pose(original_pose, 512, 512))
    handles = pose_view.pose_handles()
    assert handles.isVisible() and len(handles.points()) > 18

    shoulder = original_pose[0].body[LEFT_SHOULDER]
    target = (shoulder.x + 40, shoulder.y + 50)
    drag(pose_view, [(shoulder.x, shoulder.y), (shoulder.x + 20, shoulder.y + 25), target])
    moved = layer.pose[0].body[LEFT_SHOULDER]
    assert (moved.x, moved.y) == pytest.approx(target, abs=2.0)
    assert layer.pose[0].body[:LEFT_SHOULDER] == original_pose[0].body[:LEFT_SHOULDER]
    redrawn = control_array(layer)
    np.testing.assert_array_equal(redrawn, draw_pose(layer.pose, 512, 512))
    above = int(shoulder.y) - 20  # the limbs of that joint start at the neck, below this row
    assert (redrawn != original_map).any() and (redrawn[:above] == original_map[:above]).all()

    stack.undo_stack.undo()  # one step: keypoints and pixels together
    assert layer.pose == original_pose
    np.testing.assert_array_equal(control_array(layer), original_map)
    stack.undo_stack.redo()
    np.testing.assert_array_equal(control_array(layer), redrawn)


def test_handles_show_only_for_the_current_visible_pose_layer(pose_view: CanvasView) -> None:
    stack = pose_view.stack
    pose_layer = derive_layer(stack, layer_rgb(stack), "pose")
    assert pose_view.pose_handles().isVisible()
    stack.set_current(stack.layers()[0].id)  # the photo
    assert not pose_view.pose_handles().isVisible()
    stack.set_current(pose_layer.id)
    stack.set_visible(pose_layer.id, False)
    assert not pose_view.pose_handles().isVisible()
    stack.set_visible(pose_layer.id, True)
    derive_layer(stack, layer_rgb(stack), "canny", target_id=pose_layer.id)  # a canny map drops the keypoints
    assert pose_layer.pose is None and not pose_view.pose_handles().isVisible()
    stack.undo_stack.undo()
    assert pose_layer.pose is not None and pose_view.pose_handles().isVisible()


def test_a_press_away_from_joints_still_paints(pose_view: CanvasView) -> None:
    stack = pose_view.stack
    layer = derive_layer(stack, layer_rgb(stack), "pose")
    pose = layer.pose
    drag(pose_view, [(470, 470), (490, 490)])  # far from every joint: a brush stroke
    assert layer.pose == pose and control_array(layer)[480, 480].max() == 255


def test_dragging_a_joint_keeps_what_was_painted_on_the_pose_layer(view: CanvasView, stack: LayerStack) -> None:
    people = stick_figure()
    layer = write_control_layer(stack, draw_pose(people, 128, 128), people, "pose")
    view.tools.brush_size = 4
    drag(view, [(5, 115), (25, 115)])  # far from the skeleton
    drag(view, [(88, 84), (100, 84)])  # across the left forearm, near (not on) the wrist
    painted = control_array(layer)
    assert layer.pose == people and (painted[115, 8:22] == 255).all() and (painted[84, 90:98] == 255).all()

    wrist = STICK_FIGURE["left_wrist"]
    drag(view, [wrist, (110, 95), (120, 100)])
    moved = layer.pose[0].body[LEFT_WRIST]
    assert (moved.x, moved.y) == pytest.approx((120, 100), abs=1.0)
    redrawn = control_array(layer)
    np.testing.assert_array_equal(redrawn, redraw_pose(painted, people, layer.pose))
    assert (redrawn[115, 8:22] == 255).all() and (redrawn[84, 90:98] == 255).all()  # both strokes kept
    assert redrawn[80, 96].tolist() == [0, 0, 0] and redrawn[88, 98].tolist() == [0, 0, 0]  # the old forearm
    assert redrawn[int(moved.y), int(moved.x)].tolist() == list(COLORS[LEFT_WRIST])
    stack.undo_stack.undo()
    assert layer.pose == people
    np.testing.assert_array_equal(control_array(layer), painted)
