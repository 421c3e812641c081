"""The QActions the canvas owns (undo/redo, tools, brush size, paste, zoom), for menus and shortcuts."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QActionGroup, QKeySequence, QUndoStack

from studio.canvas.tools import ToolKind, ToolSettings

_TOOL_ACTIONS: tuple[tuple[ToolKind, str, str], ...] = (
    (ToolKind.BRUSH, "&Brush", "B"),
    (ToolKind.ERASER, "&Eraser", "E"),
    (ToolKind.LINE, "&Line", "L"),
    (ToolKind.RECT, "&Rectangle", ""),
    (ToolKind.ELLIPSE, "E&llipse", ""),
    (ToolKind.FILL, "&Fill", "G"),
    (ToolKind.PICKER, "Colour &Picker", "I"),
)


class CanvasActions(QObject):
    """Named QActions bound to the tool settings and the undo stack; `all()` lists them."""

    def __init__(self, tools: ToolSettings, undo_stack: QUndoStack, *, before_history: Callable[[], None],
                 paste: Callable[[], object], zoom_to_fit: Callable[[], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._tools, self._undo_stack, self._before_history = tools, undo_stack, before_history
        self.undo = self._action("&Undo", [QKeySequence("Ctrl+Z")], self._undo)
        self.redo = self._action("&Redo", [QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")], self._redo)
        self.size_down = self._action("Smaller Brush", [QKeySequence("[")], lambda: tools.step_brush_size(-1))
        self.size_up = self._action("Larger Brush", [QKeySequence("]")], lambda: tools.step_brush_size(+1))
        self.paste = self._action("&Paste Image as Layer", [QKeySequence(QKeySequence.StandardKey.Paste)],
                                  lambda: paste())
        self.zoom_fit = self._action("Zoom to &Fit", [QKeySequence("Ctrl+0")], zoom_to_fit)
        self.tool_group = QActionGroup(self)
        self.tool_actions: dict[ToolKind, QAction] = {}
        for kind, text, key in _TOOL_ACTIONS:
            action = self._action(text, [QKeySequence(key)] if key else [], self._tool_setter(kind))
            action.setCheckable(True)
            action.setChecked(kind is tools.tool)
            self.tool_group.addAction(action)
            self.tool_actions[kind] = action
        self.brush, self.eraser = self.tool_actions[ToolKind.BRUSH], self.tool_actions[ToolKind.ERASER]
        tools.tool_changed.connect(self._tool_changed)
        self._bind_history()

    def all(self) -> list[QAction]:
        """Every action: history, tools, brush size, paste and zoom."""
        return [self.undo, self.redo, *self.tool_actions.values(), self.size_down, self.size_up,
                self.paste, self.zoom_fit]

    def _action(self, text: str, keys: list[QKeySequence], slot: Callable[[], object]) -> QAction:
        action = QAction(text, self)
        action.setShortcuts(keys)
        action.triggered.connect(lambda _checked=False: slot())
        return action

    def _tool_setter(self, kind: ToolKind) -> Callable[[], None]:
        def choose() -> None:
            self._tools.tool = kind
        return choose

    def _bind_history(self) -> None:
        stack = self._undo_stack
        self.undo.setEnabled(stack.canUndo())
        self.redo.setEnabled(stack.canRedo())
        stack.canUndoChanged.connect(self.undo.setEnabled)
        stack.canRedoChanged.connect(self.redo.setEnabled)
        stack.undoTextChanged.connect(self._undo_text_changed)
        stack.redoTextChanged.connect(self._redo_text_changed)

    def _tool_changed(self, kind: ToolKind) -> None:
        self.tool_actions[kind].setChecked(True)

    def _undo_text_changed(self, text: str) -> None:
        self.undo.setText(f"&Undo {text}".rstrip())

    def _redo_text_changed(self, text: str) -> None:
        self.redo.setText(f"&Redo {text}".rstrip())

    def _undo(self) -> None:
        self._before_history()  # an unfinished gesture becomes its own step first
        self._undo_stack.undo()

    def _redo(self) -> None:
        self._before_history()
        self._undo_stack.redo()
