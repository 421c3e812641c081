"""The studio canvas: layers, tools, undo, control-map drawing and the view that shows them."""

from studio.canvas.layers import (
    Layer,
    LayerKind,
    LayerStack,
    composite,
    control_array,
    mask_array,
    qimage_to_rgba,
    rgba_to_qimage,
)
from studio.canvas.presets import size_presets
from studio.canvas.tools import ToolKind, ToolSettings
from studio.canvas.view import CanvasView

__all__ = [
    "CanvasView", "Layer", "LayerKind", "LayerStack", "ToolKind", "ToolSettings", "composite",
    "control_array", "mask_array", "qimage_to_rgba", "rgba_to_qimage", "size_presets",
]
