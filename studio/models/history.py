"""Generation history: results with their exact settings, as a Qt list model."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QSize, Qt
from PySide6.QtGui import QImage

from engine.sampling.names import sampler_display_name
from engine.settings import Job
from studio.canvas.imaging import rgba_to_qimage

THUMB_SIZE = QSize(128, 128)
EntryRole = Qt.ItemDataRole.UserRole + 1


@dataclass(frozen=True)
class HistoryEntry:
    """One generated image (H, W, 3) uint8 and the job that made it (its own seed)."""

    id: int
    image: np.ndarray = field(repr=False)
    job: Job
    created: float


class HistoryModel(QAbstractListModel):
    """Newest first; each row shows a thumbnail, and its tooltip the prompt and settings."""

    def __init__(self, parent=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(parent)
        self._entries: list[HistoryEntry] = []
        self._thumbs: dict[int, QImage] = {}
        self._ids = itertools.count(1)

    def add(self, image: np.ndarray, job: Job, created: float | None = None) -> HistoryEntry:
        """Record a result at the top of the list."""
        entry = HistoryEntry(next(self._ids), image.copy(), job, created or time.time())
        self.beginInsertRows(QModelIndex(), 0, 0)
        self._entries.insert(0, entry)
        self._thumbs[entry.id] = rgba_to_qimage(image).scaled(
            THUMB_SIZE, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        self.endInsertRows()
        return entry

    def entries(self) -> list[HistoryEntry]:
        """All entries, newest first."""
        return list(self._entries)

    def entry(self, row: int) -> HistoryEntry:
        """The entry at `row`."""
        return self._entries[row]

    def remove(self, row: int) -> None:
        """Forget one entry."""
        self.beginRemoveRows(QModelIndex(), row, row)
        entry = self._entries.pop(row)
        self._thumbs.pop(entry.id, None)
        self.endRemoveRows()

    def clear(self) -> None:
        """Forget every entry."""
        self.beginResetModel()
        self._entries.clear()
        self._thumbs.clear()
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._entries)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):  # type: ignore[no-untyped-def]
        if not index.isValid() or not 0 <= index.row() < len(self._entries):
            return None
        entry = self._entries[index.row()]
        if role == Qt.ItemDataRole.DecorationRole:
            return self._thumbs[entry.id]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"#{entry.job.seed}"
        if role == Qt.ItemDataRole.ToolTipRole:
            job = entry.job
            return (f"{job.prompt or '(no prompt)'}\n{sampler_display_name(job.sampler)}, {job.steps} steps, "
                    f"CFG {job.cfg_scale:g}, seed {job.seed}, {job.width}x{job.height}")
        if role == EntryRole:
            return entry
        return None
