"""The studio's session <-> an engine Project: canvas layers (with control tints and pose
keypoints), history and settings."""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtGui import QColor

from engine.project import Project, ProjectHistoryItem, ProjectLayer
from engine.settings import Job
from studio.canvas.layers import Layer, LayerKind, LayerStack, control_tint
from studio.canvas.imaging import qimage_to_rgba, rgba_to_qimage
from studio.models.history import HistoryModel


def _project_layer(layer: Layer) -> ProjectLayer:
    tint = layer.tint
    return ProjectLayer(id=layer.id, name=layer.name, kind=layer.kind.value, pixels=qimage_to_rgba(layer.image),
                        visible=layer.visible, opacity=layer.opacity, control_type=layer.control_type,
                        tint=(tint.red(), tint.green(), tint.blue()) if layer.kind is LayerKind.CONTROL else None,
                        pose=layer.pose)


def snapshot(stack: LayerStack, history: HistoryModel, job: Job) -> Project:
    """An immutable copy of the session (GUI thread; cheap array copies only)."""
    layers = tuple(_project_layer(layer) for layer in stack.layers())
    items = tuple(ProjectHistoryItem(e.image, e.job, e.created) for e in reversed(history.entries()))
    size = stack.canvas_size
    current = stack.current.id if stack.current is not None else None
    return Project(size.width(), size.height(), layers, job, items, current)


def _layer(p: ProjectLayer, controls_below: int) -> Layer:
    kind = LayerKind(p.kind)
    tint = None
    if kind is LayerKind.CONTROL:  # projects from before tints were saved get the tints adding layers gives
        tint = QColor(*p.tint) if p.tint is not None else control_tint(controls_below)
    return Layer(kind, p.name, rgba_to_qimage(p.pixels), control_type=p.control_type, tint=tint,
                 visible=p.visible, opacity=p.opacity, layer_id=p.id, pose=p.pose)


def restore(project: Project, stack: LayerStack, history: HistoryModel) -> Job:
    """Load a project into the canvas and history; returns its settings for the job model."""
    layers: list[Layer] = []
    for p in project.layers:
        layers.append(_layer(p, sum(layer.kind is LayerKind.CONTROL for layer in layers)))
    stack.reset(QSize(project.width, project.height), layers)
    if project.current_layer and stack.find(project.current_layer) is not None:
        stack.set_current(project.current_layer)
    history.clear()
    for item in project.history:  # stored oldest first; the model shows newest first
        history.add(item.image, item.job, item.created)
    return project.settings
