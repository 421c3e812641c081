"""Deriving control maps from image layers: any preprocessor of engine.control into a control
layer (a pose layer keeps its keypoints); the live-preview dialog is in derive_dialog."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.control import PREPROCESSORS, PoseKeypoints, draw_pose, estimate_pose
from studio.canvas.imaging import qimage_to_premultiplied_rgba, rgba_to_qimage
from studio.canvas.layers import Layer, LayerKind, LayerStack, composite

PREVIEW_SIDE = 384
POSE = "pose"


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
