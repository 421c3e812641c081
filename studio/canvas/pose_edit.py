"""Editing a pose control layer: handles on its joints and the drag gesture that moves one joint and,
on release, redraws the moved limbs as one undo step. What was painted on the layer is kept: only the
pixels the moved limbs change are redrawn (`engine.control.redraw_pose`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from engine.control import PoseKeypoints, redraw_pose, with_joint_moved
from engine.control.pose import PART_SIZES
from studio.canvas.imaging import rgba_to_qimage
from studio.canvas.layers import Layer, LayerKind, LayerStack, control_array

HANDLE_RADIUS = 5.0  # screen pixels: the ring drawn on each joint
FACE_HANDLE_RADIUS = 2.0  # the 70 face points get small rings, so the body's joints stay readable
HIT_RADIUS = 9.0  # screen pixels: how near a press must be to grab a joint


@dataclass(frozen=True)
class JointRef:
    """One point of a pose: person index, part name ("body", "left_hand", ...) and point index."""

    person: int
    part: str
    index: int


def editable_pose(layer: Layer | None) -> tuple[PoseKeypoints, ...] | None:
    """The keypoints of a visible pose control layer, else None."""
    if layer is None or layer.kind is not LayerKind.CONTROL or not layer.visible:
        return None
    return layer.pose or None


def joint_at(pose: tuple[PoseKeypoints, ...], pos: QPointF, radius: float) -> JointRef | None:
    """The existing point nearest `pos` (canvas pixels) within `radius`, or None."""
    best: tuple[float, JointRef] | None = None
    for person, keypoints in enumerate(pose):
        for part in PART_SIZES:
            for index, point in enumerate(keypoints.part(part) or ()):
                if point is None:
                    continue
                distance = math.hypot(point.x - pos.x(), point.y - pos.y())
                if distance <= radius and (best is None or distance < best[0]):
                    best = (distance, JointRef(person, part, index))
    return best[1] if best is not None else None


class PoseHandles(QGraphicsItem):
    """Rings on every joint of the pose being edited (a fixed size on screen); the joint being
    dragged is drawn at the pointer."""

    def __init__(self, parent: QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self._pose: tuple[PoseKeypoints, ...] = ()
        self._dragged: tuple[JointRef, QPointF] | None = None
        self._bounds = QRectF()
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setVisible(False)

    def show_pose(self, pose: tuple[PoseKeypoints, ...] | None, canvas: QRectF) -> None:
        """Show the joints of `pose` (None hides the handles)."""
        self.prepareGeometryChange()
        self._pose, self._dragged, self._bounds = pose or (), None, QRectF(canvas)
        self.setVisible(bool(pose))
        self.update()

    def drag(self, joint: JointRef | None, pos: QPointF | None = None) -> None:
        """Draw `joint` at `pos` while it is dragged (None: back to the keypoints)."""
        self._dragged = (joint, QPointF(pos)) if joint is not None and pos is not None else None
        self.update()

    def points(self) -> list[tuple[JointRef, QPointF]]:
        """Every handle and where it is drawn."""
        out = []
        for person, keypoints in enumerate(self._pose):
            for part in PART_SIZES:
                for index, point in enumerate(keypoints.part(part) or ()):
                    if point is not None:
                        ref, at = JointRef(person, part, index), QPointF(point.x, point.y)
                        if self._dragged is not None and self._dragged[0] == ref:
                            at = self._dragged[1]
                        out.append((ref, at))
        return out

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt API)
        """The canvas with room for handles on its edges."""
        return self._bounds.adjusted(-50, -50, 50, 50)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        """A dark and a light ring per joint, one screen pixel wide (small ones on the face)."""
        scale = painter.worldTransform().m11() or 1.0
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for color, grow in ((QColor(0, 0, 0, 200), 1.0 / scale), (QColor(255, 255, 255), 0.0)):
            pen = QPen(color, 1)
            pen.setCosmetic(True)
            painter.setPen(pen)
            for ref, at in self.points():
                radius = (FACE_HANDLE_RADIUS if ref.part == "face" else HANDLE_RADIUS) / scale
                painter.drawEllipse(at, radius + grow, radius + grow)


class PoseDrag:
    """Drag one joint of a pose layer: the handle follows the pointer; release moves the keypoint,
    redraws the limbs that moved (keeping paint) and pushes the keypoints and the changed pixels as
    one undo step."""

    def __init__(self, stack: LayerStack, layer: Layer, joint: JointRef, handles: PoseHandles) -> None:
        if not layer.pose:
            raise ValueError(f"{layer!r} has no pose keypoints to edit")
        self._stack, self._layer, self._joint, self._handles = stack, layer, joint, handles
        self._start = QPointF()

    def press(self, pos: QPointF, pressure: float) -> None:
        """Grab the joint."""
        self._start = QPointF(pos)
        self._handles.drag(self._joint, pos)

    def move(self, pos: QPointF, pressure: float) -> None:
        """Show the joint at the pointer."""
        self._handles.drag(self._joint, pos)

    def release(self, pos: QPointF, pressure: float) -> None:
        """Move the keypoint and redraw its limbs (nothing happens for a click without a move)."""
        self._handles.drag(None)
        if pos == self._start or self._stack.find(self._layer.id) is None or not self._layer.pose:
            return
        j = self._joint
        pose = with_joint_moved(self._layer.pose, j.person, j.part, j.index, (pos.x(), pos.y()))
        before = control_array(self._layer)  # (H, W, 3)
        after = redraw_pose(before, self._layer.pose, pose)
        undo = self._stack.undo_stack
        undo.beginMacro(f"Move {j.part.replace('_', ' ')} point {j.index} of {self._layer.name}")
        try:
            self._stack.set_pose(self._layer.id, pose)
            changed = np.nonzero((before != after).any(axis=2))
            if len(changed[0]):
                top, left = int(changed[0].min()), int(changed[1].min())
                patch = after[top:int(changed[0].max()) + 1, left:int(changed[1].max()) + 1]
                self._stack.set_pixels(self._layer.id, rgba_to_qimage(np.ascontiguousarray(patch)), QPoint(left, top),
                                       text="Redraw pose")
        finally:
            undo.endMacro()

    def cancel(self) -> None:
        """Put the handle back; nothing was changed."""
        self._handles.drag(None)
