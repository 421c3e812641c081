"""The application object and main window."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
)

from engine import __version__
from engine.metadata import MetadataError, read_image_settings
from engine.settings import Job, SettingsFileError, load_settings, save_settings, settings_to_json

APP_NAME = "Atelier"


class MainWindow(QMainWindow):
    """The studio window: menus, a status bar and (for now) a view of the current settings."""

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle(APP_NAME)
        self.resize(1280, 800)
        self._job = Job()
        self._settings_view = QPlainTextEdit(readOnly=True)
        self._settings_view.setObjectName("settingsView")
        self.setCentralWidget(self._settings_view)
        self._build_menus()
        self.statusBar().addPermanentWidget(QLabel(f"atelier {__version__}"))
        self.set_job(self._job)

    @property
    def job(self) -> Job:
        """The settings the next generation will use."""
        return self._job

    def set_job(self, job: Job) -> None:
        """Replace the current settings and show them."""
        self._job = job
        self._settings_view.setPlainText(settings_to_json(job))

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._add_action(file_menu, "&Import Settings…", self._import_settings, QKeySequence.StandardKey.Open)
        self._add_action(file_menu, "&Export Settings…", self._export_settings)
        file_menu.addSeparator()
        self._add_action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        help_menu = self.menuBar().addMenu("&Help")
        self._add_action(help_menu, "&About Atelier", self._about)

    def _add_action(self, menu, text: str, slot, shortcut=None) -> QAction:  # type: ignore[no-untyped-def]
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def import_settings(self, path: Path) -> bool:
        """Load settings from a JSON file or a PNG's metadata; report problems in a message box."""
        try:
            if path.suffix.lower() == ".png":
                job = read_image_settings(path).job
            else:
                job = load_settings(path)
        except (SettingsFileError, MetadataError) as exc:
            self.statusBar().showMessage(f"Could not import settings: {exc}", 10_000)
            QMessageBox.warning(self, "Import settings", f"Could not import settings.\n\n{exc}")
            return False
        self.set_job(job)
        self.statusBar().showMessage(f"Imported settings from {path.name}", 5_000)
        return True

    def export_settings(self, path: Path) -> bool:
        """Write the current settings as JSON; report problems in a message box."""
        try:
            save_settings(self._job, path)
        except OSError as exc:
            QMessageBox.warning(self, "Export settings", f"Could not write {path}.\n\n{exc}")
            return False
        self.statusBar().showMessage(f"Exported settings to {path.name}", 5_000)
        return True

    def _import_settings(self) -> None:
        name, _ = QFileDialog.getOpenFileName(
            self, "Import settings", "", "Settings or images (*.json *.png);;All files (*)"
        )
        if name:
            self.import_settings(Path(name))

    def _export_settings(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "Export settings", "settings.json", "Settings (*.json)")
        if name:
            self.export_settings(Path(name))

    def _about(self) -> None:
        QMessageBox.about(
            self, "About Atelier",
            f"<b>Atelier {__version__}</b><p>A local studio for diffusion and flow image generation.</p>",
        )


def run_app(argv: list[str], screenshot: Path | None = None) -> int:
    """Create the application, show the main window and run the event loop.

    With `screenshot`, the window grabs itself once shown, saves the PNG and quits.
    """
    app = QApplication.instance() or QApplication(argv)
    app.setApplicationName(APP_NAME)
    app.setApplicationVersion(__version__)
    window = MainWindow()
    window.show()
    if screenshot is not None:
        def grab_and_quit() -> None:
            ok = window.grab().save(str(screenshot))
            app.exit(0 if ok else 1)

        QTimer.singleShot(500, grab_and_quit)
    return app.exec()


if __name__ == "__main__":
    sys.exit(run_app(sys.argv))
