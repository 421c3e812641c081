"""Studio fixtures: the engine's tiny models are shared with the GUI tests, and a main window that
must not generate (its tests drive everything but the engine)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from studio.window import MainWindow
from tests.engine.conftest import tiny_models, tiny_resources  # noqa: F401 (pytest fixtures)


def no_generation(job, inputs, ctx):  # type: ignore[no-untyped-def]
    """A generate function for windows whose tests must not generate."""
    raise RuntimeError("generation is not part of this test")


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "prefs.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, tmp_path: Path, settings: QSettings) -> Iterator[MainWindow]:
    """A shown main window with its own preferences file and autosave path."""
    w = MainWindow(no_generation, settings, autosave_path=tmp_path / "rec" / "session.atelier")
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.bridge.shutdown(5000)
    w.autosaver.wait()
