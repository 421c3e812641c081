"""Autosave and crash recovery: the session is written to a recovery project every 60 s and
after every generation, atomically, off the GUI thread; a clean exit removes it, so a
recovery file found at start-up means the last session did not end cleanly."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal

from engine.paths import recovery_dir
from engine.project import Project, ProjectError, load_project, save_project

AUTOSAVE_INTERVAL_MS = 60_000
RECOVERY_NAME = "session.atelier"


def recovery_path(folder: Path | None = None) -> Path:
    """The recovery project file."""
    return (folder or recovery_dir()) / RECOVERY_NAME


class _SaveSignals(QObject):
    done = Signal(str)  # "" on success, else the error message


class _SaveTask(QRunnable):
    def __init__(self, project: Project, path: Path, signals: _SaveSignals) -> None:
        super().__init__()
        self._project, self._path, self._signals = project, path, signals

    def run(self) -> None:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            save_project(self._project, self._path)
            self._signals.done.emit("")
        except (OSError, ValueError) as exc:
            self._signals.done.emit(str(exc))


class Autosaver(QObject):
    """Snapshots the session (on the GUI thread, cheap copies) and writes it in the background."""

    saved = Signal(Path)
    failed = Signal(str)

    def __init__(self, snapshot: Callable[[], Project], path: Path | None = None,
                 interval_ms: int = AUTOSAVE_INTERVAL_MS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._snapshot = snapshot
        self.path = path or recovery_path()
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._signals = _SaveSignals(self)
        self._signals.done.connect(self._on_done)
        self._in_flight = 0
        self._timer = QTimer(self, interval=interval_ms)
        self._timer.timeout.connect(self.save_now)

    def start(self) -> None:
        """Begin periodic autosaves."""
        self._timer.start()

    def save_now(self) -> None:
        """Take a snapshot and write it in the background (writes queue, never overlap)."""
        self._in_flight += 1
        self._pool.start(_SaveTask(self._snapshot(), self.path, self._signals))

    def wait(self, timeout_ms: int = 10_000) -> bool:
        """Block until pending writes are done (tests and quit only)."""
        return self._pool.waitForDone(timeout_ms)

    def discard(self) -> None:
        """On a clean exit: stop, wait for writes, and remove the recovery file."""
        self._timer.stop()
        self.wait()
        self.path.unlink(missing_ok=True)

    def _on_done(self, error: str) -> None:
        self._in_flight -= 1
        if error:
            self.failed.emit(error)
        else:
            self.saved.emit(self.path)


def find_recovery(path: Path | None = None) -> Project | None:
    """The project left by a session that did not exit cleanly, or None.

    A recovery file that cannot be read is kept aside (renamed) rather than deleted.
    """
    path = path or recovery_path()
    if not path.exists():
        return None
    try:
        return load_project(path)
    except ProjectError:
        path.replace(path.with_suffix(".unreadable"))
        return None
