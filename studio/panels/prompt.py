"""The Prompt dock: prompt and negative prompt with weight highlighting, seed, batch."""

from __future__ import annotations

import random
from pathlib import Path

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QKeyEvent,
    QPalette,
    QRegularExpressionValidator,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.settings.job import MAX_SEED
from studio.models.job_model import JobModel
from studio.panels.binding import bind_int, bind_text
from studio.panels.prompt_weights import adjust_weight, syntax_spans

WEIGHT_STEP = 0.1


def is_dark(palette: QPalette) -> bool:
    """Whether a palette is a dark one (its text base is darker than mid-grey)."""
    return palette.color(QPalette.ColorRole.Base).lightnessF() < 0.5


class WeightHighlighter(QSyntaxHighlighter):
    """Colours (words:1.2), (words), [words] and <lora:...> in a prompt."""

    LIGHT = {"weight": "#2a7ab0", "emphasis": "#2a7ab0", "deemphasis": "#8a6d3b", "lora": "#8e44ad",
             "number": "#c0392b"}
    DARK = {"weight": "#6cb6e8", "emphasis": "#6cb6e8", "deemphasis": "#d8b46a", "lora": "#c59be0",
            "number": "#f07b6b"}  # the same hues, light enough to read on a dark base

    def __init__(self, document: QTextDocument, dark: bool = False) -> None:
        super().__init__(document)
        self.colors = self.DARK if dark else self.LIGHT

    def set_dark(self, dark: bool) -> None:
        """Follow a light or dark palette."""
        colors = self.DARK if dark else self.LIGHT
        if colors is not self.colors:
            self.colors = colors
            self.rehighlight()

    def highlightBlock(self, text: str) -> None:  # noqa: N802 (Qt override)
        for span in syntax_spans(text):
            fmt = QTextCharFormat()
            fmt.setForeground(QColor(self.colors[span.kind]))
            if span.kind == "number":
                fmt.setFontWeight(700)
            self.setFormat(span.start, span.end - span.start, fmt)


class PromptEdit(QPlainTextEdit):
    """A prompt editor: Ctrl+Up/Down changes the weight of the selection or the word at the cursor."""

    def __init__(self, placeholder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText(placeholder)
        self.setTabChangesFocus(True)
        self._highlighter = WeightHighlighter(self.document(), is_dark(self.palette()))

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt override)
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:  # the system switched light/dark
            self._highlighter.set_dark(is_dark(self.palette()))

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt override)
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier and event.key() in (Qt.Key.Key_Up, Qt.Key.Key_Down):
            self.change_weight(WEIGHT_STEP if event.key() == Qt.Key.Key_Up else -WEIGHT_STEP)
            event.accept()
            return
        super().keyPressEvent(event)

    def change_weight(self, delta: float) -> None:
        """Apply `adjust_weight` to the current selection as one undoable edit."""
        cursor = self.textCursor()
        text, start, end = adjust_weight(self.toPlainText(), cursor.selectionStart(), cursor.selectionEnd(), delta)
        if text == self.toPlainText():
            return
        cursor.beginEditBlock()
        cursor.select(cursor.SelectionType.Document)
        cursor.insertText(text)
        cursor.endEditBlock()
        cursor.setPosition(start)
        cursor.setPosition(end, cursor.MoveMode.KeepAnchor)
        self.setTextCursor(cursor)


class SeedEdit(QWidget):
    """The seed, with a randomise button and a lock: unlocked, every generation draws a new seed."""

    def __init__(self, model: JobModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._model = model
        self._rng = random.SystemRandom()
        self.edit = QLineEdit()
        self.edit.setValidator(QRegularExpressionValidator(r"\d{1,19}"))
        self.edit.setToolTip("The seed of the first image; image n of a batch uses seed + n.")
        self.randomize_button = QToolButton(text="Random", toolTip="Pick a new random seed")
        self.lock = QCheckBox("Lock", toolTip="Keep this seed for the next generations")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for w in (self.edit, self.randomize_button, self.lock):
            row.addWidget(w)
        self.edit.setText(str(model.job.seed))
        model.seed_changed.connect(lambda seed: self.edit.setText(str(seed)))
        self.edit.editingFinished.connect(self._commit)
        self.randomize_button.clicked.connect(self.randomize)

    def _commit(self) -> None:
        text = self.edit.text()
        if not text or not self._model.set(seed=min(int(text), MAX_SEED)):
            self.edit.setText(str(self._model.job.seed))

    def randomize(self) -> None:
        """Set a fresh random seed."""
        self._model.set(seed=self._rng.randrange(2**32))

    def seed_for_next_job(self) -> int:
        """The seed the next generation uses: kept when locked, drawn anew otherwise."""
        if not self.lock.isChecked():
            self.randomize()
        return self._model.job.seed


class PromptPanel(QWidget):
    """Prompt, negative prompt, seed and batch; a PNG or JSON dropped here restores settings."""

    settings_dropped = Signal(Path)

    def __init__(self, model: JobModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.prompt = PromptEdit("Prompt: what to generate. (word:1.2) weights, Ctrl+Up/Down")
        self.negative = PromptEdit("Negative prompt: what to avoid")
        self.negative.setMaximumHeight(80)
        bind_text(model, "prompt", self.prompt)
        bind_text(model, "negative_prompt", self.negative)
        self.seed = SeedEdit(model)
        self.batch_size = QSpinBox(minimum=1, maximum=64, toolTip="Images generated together in one pass")
        self.batch_count = QSpinBox(minimum=1, maximum=1000, toolTip="Passes run one after another")
        bind_int(model, "batch_size", self.batch_size)
        bind_int(model, "batch_count", self.batch_count)
        form = QFormLayout()
        form.addRow("Seed", self.seed)
        batch = QHBoxLayout()
        batch.addWidget(self.batch_size)
        batch.addWidget(self.batch_count)
        form.addRow("Batch size / count", batch)
        layout = QVBoxLayout(self)
        layout.addWidget(self.prompt, 3)
        layout.addWidget(self.negative, 1)
        layout.addLayout(form)

    def dragEnterEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        if self._settings_path(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        path = self._settings_path(event)
        if path is not None:
            event.acceptProposedAction()
            self.settings_dropped.emit(path)

    @staticmethod
    def _settings_path(event) -> Path | None:  # type: ignore[no-untyped-def]
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        for url in urls:
            path = Path(url.toLocalFile())
            if path.suffix.lower() in (".png", ".json"):
                return path
        return None
