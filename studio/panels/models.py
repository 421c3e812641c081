"""The Models dock: base models found in the models folders; choosing one sets the job's model."""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from engine.models.card import read_card, with_recommended
from engine.models.detect import ModelKind
from engine.models.store import ModelEntry, ScanResult
from engine.pipeline.resolve import is_builtin
from engine.settings import ModelRef
from studio.models.job_model import JobModel

EntryRole = Qt.ItemDataRole.UserRole + 1


class ModelsPanel(QWidget):
    """Lists checkpoints from a store scan; the window runs the scan and passes the result in."""

    rescan_requested = Signal()

    def __init__(self, model: JobModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._model = model
        self.list = QListWidget()
        self.status = QLabel(wordWrap=True)
        self.rescan = QPushButton("Rescan", toolTip="Look for new model files in the models folders")
        layout = QVBoxLayout(self)
        layout.addWidget(self.list)
        layout.addWidget(self.status)
        layout.addWidget(self.rescan)
        self.rescan.clicked.connect(self.rescan_requested)
        self.list.currentItemChanged.connect(self._chosen)
        model.model_changed.connect(self._show_selected)

    def set_scan(self, scan: ScanResult, folders: tuple[str, ...]) -> None:
        """Show the base models of a scan and any files that could not be read."""
        self.list.blockSignals(True)
        self.list.clear()
        for entry in scan.entries:
            if entry.kind is not ModelKind.CHECKPOINT:
                continue
            family = entry.family.value if entry.family else "?"
            card = read_card(entry.path) if entry.path.is_dir() else None
            label = card.name if card is not None and card.name else f"{entry.name}  [{family}]"
            item = QListWidgetItem(label)
            item.setData(EntryRole, entry)
            about = f"\n{card.description}" if card is not None and card.description else ""
            item.setToolTip(f"{entry.path}\n{entry.architecture}, {entry.size_bytes / 2**20:.0f} MiB{about}")
            self.list.addItem(item)
        self.list.blockSignals(False)
        problems = "".join(f"\n⚠ {p.path.name}: {p.reason}" for p in scan.problems)
        if self.list.count() == 0:
            self.status.setText("No models found. Put checkpoints in:\n" + "\n".join(folders) + problems)
        else:
            self.status.setText(f"{self.list.count()} model(s)" + problems)
        self._show_selected(self._model.job.model)

    def _chosen(self, item: QListWidgetItem | None) -> None:
        if item is not None:
            self.apply(item.data(EntryRole))

    def apply(self, entry: ModelEntry) -> None:
        """Make `entry` the job's model, with the settings its card recommends (the built-in
        model's 128 px size, sampler and CFG)."""
        job = dataclasses.replace(self._model.job, model=ModelRef(name=entry.name, path=str(entry.path)))
        self._model.set_job(with_recommended(job, read_card(entry.path)))

    def choose_default(self) -> None:
        """Select the model a job that names none would use: the user's first, else the built-in one."""
        entries = [self.list.item(i).data(EntryRole) for i in range(self.list.count())]
        if entries:
            self.apply(min(entries, key=lambda e: (is_builtin(e.path), e.name.casefold())))

    def _show_selected(self, ref: ModelRef) -> None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            if str(item.data(EntryRole).path) == (ref.path or ""):
                self.list.blockSignals(True)
                self.list.setCurrentItem(item)
                self.list.blockSignals(False)
                return
