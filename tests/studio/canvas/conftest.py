"""Fixtures for canvas tests: a small layer stack and a shown view fitted to it."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSize

from studio.canvas.layers import LayerStack
from studio.canvas.view import CanvasView

CANVAS = QSize(128, 128)


@pytest.fixture
def stack(qapp) -> LayerStack:
    """An empty 128x128 layer stack with its own undo stack."""
    return LayerStack(CANVAS)


@pytest.fixture
def view(qtbot, stack: LayerStack) -> CanvasView:
    """A shown 400x400 canvas view over `stack`, zoomed to fit."""
    widget = CanvasView(stack, stack.undo_stack)
    qtbot.addWidget(widget)
    widget.resize(400, 400)
    widget.show()
    qtbot.waitExposed(widget)
    widget.zoom_to_fit()
    return widget
