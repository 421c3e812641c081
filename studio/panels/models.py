"""The Models dock: base models found in the models folders; choosing one sets the job's model."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from engine.models.detect import ModelKind
from engine.models.store import ModelEntry, ScanResult
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
            item = QListWidgetItem(f"{entry.name}  [{family}]")
            item.setData(EntryRole, entry)
            item.setToolTip(f"{entry.path}\n{entry.architecture}, {entry.size_bytes / 2**20:.0f} MiB")
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
            entry: ModelEntry = item.data(EntryRole)
            self._model.set(model=ModelRef(name=entry.name, path=str(entry.path)))

    def _show_selected(self, ref: ModelRef) -> None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            if str(item.data(EntryRole).path) == (ref.path or ""):
                self.list.blockSignals(True)
                self.list.setCurrentItem(item)
                self.list.blockSignals(False)
                return
