"""The main window opens with its menus and imports/exports settings without losing any."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtWidgets import QMessageBox

from engine.metadata import save_png
from engine.settings import Job, load_settings
from studio.app import MainWindow
from tests.engine.test_settings import FULL_JOB


@pytest.fixture
def window(qtbot):
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


@pytest.fixture
def warnings(monkeypatch) -> list[str]:
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: shown.append(text))
    return shown


def test_window_has_menus(window: MainWindow) -> None:
    titles = [a.text() for a in window.menuBar().actions()]
    assert titles == ["&File", "&Help"]
    assert window.windowTitle() == "Atelier"


def test_import_settings_from_png_and_export_json(window: MainWindow, tmp_path: Path, warnings) -> None:
    png = tmp_path / "result.png"
    save_png(Image.new("RGB", (8, 8)), png, FULL_JOB)
    assert window.import_settings(png)
    assert window.job == FULL_JOB
    out = tmp_path / "exported.json"
    assert window.export_settings(out)
    assert load_settings(out) == FULL_JOB
    assert warnings == []


def test_broken_file_shows_error_and_keeps_settings(window: MainWindow, tmp_path: Path, warnings) -> None:
    window.set_job(Job(prompt="my careful prompt"))
    broken = tmp_path / "broken.json"
    broken.write_text('{"version": 1, "steps": 0}')
    assert not window.import_settings(broken)
    assert window.job == Job(prompt="my careful prompt")
    assert len(warnings) == 1 and "steps: must be >= 1" in warnings[0]
    assert "steps" in window.statusBar().currentMessage()
