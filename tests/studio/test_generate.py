"""Generating from the window with a tiny random model: previews, a result in History shown on the
canvas until the user paints, cancel, and a clear error for a model that is gone; the canvas never
loses anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QRectF, QSettings, Qt

from engine.models.families import Family
from engine.pipeline import Engine
from engine.pipeline.progress import Progress
from engine.settings import ModelRef
from studio.canvas.imaging import rgba_to_qimage
from studio.generation import EngineSession
from studio.window import MainWindow


@pytest.fixture
def window(qtbot, tmp_path: Path, tiny_models):  # type: ignore[no-untyped-def]
    session = EngineSession(Engine(device="cpu"))
    settings = QSettings(str(tmp_path / "prefs.ini"), QSettings.Format.IniFormat)
    w = MainWindow(session.generate, settings, autosave_path=tmp_path / "rec" / "session.atelier")
    qtbot.addWidget(w)
    w.show()
    model = tiny_models[Family.SD1].folder
    w.job_model.set(model=ModelRef(name="tiny", path=str(model)), prompt="a red star", steps=4,
                    width=64, height=64, cfg_scale=5.0, sampler="euler", schedule="karras")
    yield w
    w.bridge.shutdown(10_000)
    w.autosaver.wait()


def test_generate_delivers_previews_and_a_history_entry(window: MainWindow, qtbot) -> None:
    updates: list[Progress] = []
    window.bridge.step.connect(lambda _id, u: updates.append(u))
    with qtbot.waitSignal(window.bridge.result, timeout=120_000):
        window.generate()
    qtbot.waitUntil(lambda: window.history.rowCount() == 1, timeout=5_000)
    entry = window.history.entry(0)
    assert entry.image.shape == (64, 64, 3)
    assert entry.job.prompt == "a red star" and entry.job.steps == 4
    previews = [u for u in updates if u.preview is not None]
    assert len(updates) >= 4 and previews, updates
    window.place_on_canvas(entry)
    assert window.stack.current.name == f"Seed {entry.job.seed}"


def test_the_selected_result_shows_on_the_canvas_until_the_user_paints(window: MainWindow, qtbot) -> None:
    with qtbot.waitSignal(window.bridge.finished, timeout=120_000):
        window.generate()
    entry, preview = window.history.entry(0), window.canvas.preview_item()
    layers = [layer.id for layer in window.stack.layers()]
    # The newest result stays on the canvas where To canvas would put it, and is no layer yet.
    assert preview.isVisible() and preview.image == rgba_to_qimage(entry.image)
    assert preview.target == QRectF(0, 0, 64, 64)
    assert [layer.id for layer in window.stack.layers()] == layers
    qtbot.mousePress(window.canvas.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(20, 20))
    qtbot.mouseRelease(window.canvas.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(20, 20))
    assert not preview.isVisible() and window.history_panel.selected() is None
    window.history_panel.view.setCurrentIndex(window.history.index(0))  # choosing it shows it again
    assert preview.isVisible()
    window.cancel()  # Escape with nothing running hides it too
    assert not preview.isVisible()
    window.history_panel.view.setCurrentIndex(window.history.index(0))
    window.history_panel.buttons["To canvas"].click()
    assert not preview.isVisible() and window.stack.current.name == f"Seed {entry.job.seed}"


def test_cancel_mid_job(window: MainWindow, qtbot) -> None:
    window.job_model.set(steps=400)
    steps: list[Progress] = []
    window.bridge.step.connect(lambda _id, u: steps.append(u))
    window.generate()
    qtbot.waitUntil(lambda: len(steps) >= 1, timeout=120_000)
    with qtbot.waitSignal(window.bridge.cancelled, timeout=30_000):
        window.cancel()
    assert window.history.rowCount() == 0
    assert len(steps) < 400


def test_missing_model_is_a_clear_non_blocking_error(window: MainWindow, qtbot, tmp_path: Path) -> None:
    window.job_model.set(model=ModelRef(name="gone", path=str(tmp_path / "gone.safetensors")))
    layers = [l.id for l in window.stack.layers()]
    with qtbot.waitSignal(window.bridge.finished, timeout=60_000):
        window.generate()
    assert "gone.safetensors" in window.last_error_box.text()
    assert not window.last_error_box.isModal()
    assert [l.id for l in window.stack.layers()] == layers
