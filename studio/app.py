"""The application: preferences, crash recovery, and the main window wired to the engine."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from engine import __version__
from engine.paths import builtin_models_dir, icons_dir, user_data_dir, user_models_dir
from studio.generation import EngineSession
from studio.recovery import find_recovery, recovery_path
from studio.session import restore
from studio.window import APP_NAME, MainWindow


def preferences() -> QSettings:
    """The preferences file (an ini under the user data folder, so ATELIER_HOME moves it too)."""
    return QSettings(str(user_data_dir() / "preferences.ini"), QSettings.Format.IniFormat)


def offer_recovery(window: MainWindow, ask: bool = True) -> bool:
    """If the last session did not end cleanly, offer to restore its autosave."""
    project = find_recovery(recovery_path())
    if project is None:
        return False
    if ask:
        answer = QMessageBox.question(
            window, "Recover session",
            "Atelier did not close normally last time. Restore the autosaved canvas, history and settings?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes)
        if answer != QMessageBox.StandardButton.Yes:
            return False
    window.job_model.set_job(restore(project, window.stack, window.history))
    window.statusBar().showMessage("Restored the autosaved session", 10_000)
    return True


def create_window(engine: EngineSession | None = None) -> MainWindow:
    """The main window connected to an engine session and the models folders."""
    engine = engine or EngineSession()
    try:  # where the user's models go: there from the first start, so the Models dock can point to it
        user_models_dir().mkdir(parents=True, exist_ok=True)
    except OSError:
        pass  # a read-only home: the scan reports the missing folder
    folders = (str(user_models_dir()), str(builtin_models_dir()))
    return MainWindow(engine.generate, preferences(), autosave_path=recovery_path(),
                      scan_models=lambda: (engine.scan_models(), folders))


def app_icon() -> QIcon:
    """Atelier's icon in every size it ships (the window's, the taskbar's, the About box's)."""
    icon = QIcon()
    for png in sorted(icons_dir().glob("atelier-*.png")):
        icon.addFile(str(png))
    return icon


def run_app(argv: list[str], screenshot: Path | None = None, recover: str = "ask",
            open_path: Path | None = None) -> int:
    """Create the application and run the event loop.

    With `screenshot`, the window grabs itself once shown, saves the PNG and quits.
    `recover` is "ask", "yes" or "no" for a session left by a crash; `open_path` is a project or
    image to open once the window is up (after any recovery, so the file wins).
    """
    app = QApplication.instance() or QApplication(argv)
    app.setApplicationName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("atelier")  # ties the window to atelier.desktop (its icon, in the taskbar)
    app.setWindowIcon(app_icon())
    window = create_window()
    window.show()

    def start() -> None:  # one callback: recovery's question runs a nested event loop
        if recover != "no":
            offer_recovery(window, ask=recover == "ask")
        if open_path is not None:
            window.open_file(open_path)

    QTimer.singleShot(0, start)
    if screenshot is not None:
        def grab_and_quit() -> None:
            ok = window.grab().save(str(screenshot))
            window.close()
            app.exit(0 if ok else 1)

        QTimer.singleShot(800, grab_and_quit)
    return app.exec()


if __name__ == "__main__":
    sys.exit(run_app(sys.argv))
