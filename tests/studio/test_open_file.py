"""Opening a file handed over by the desktop (`atelier FILE`), the version in the About box and the
window icon."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtWidgets import QMessageBox

import studio.app
from engine import __version__
from engine.metadata import save_png
from engine.settings import Job
from studio import cli
from studio.app import app_icon
from studio.canvas import LayerKind
from studio.window import MainWindow


def _layers(window: MainWindow) -> list[str]:
    return [layer.name for layer in window.stack.layers() if layer.kind is LayerKind.IMAGE]


def test_a_project_file_opens_the_project(window: MainWindow, tmp_path: Path) -> None:
    window.job_model.set_job(Job(prompt="a saved session", width=256, height=192))
    path = tmp_path / "work.atelier"
    assert window.save_project(path=path)
    window.new_canvas()
    window.job_model.set_job(Job(prompt="something else"))
    assert window.open_file(path)
    assert window.job_model.job.prompt == "a saved session"
    assert window.windowTitle().startswith("work.atelier")


def test_an_atelier_png_opens_as_a_layer_with_its_settings(window: MainWindow, tmp_path: Path) -> None:
    path = tmp_path / "made.png"
    job = Job(prompt="a blue ring", seed=1234, width=128, height=128)
    save_png(Image.new("RGB", (128, 128), "blue"), path, job)
    assert window.open_file(path)
    assert window.job_model.job.prompt == "a blue ring" and window.job_model.job.seed == 1234
    assert (window.stack.canvas_size.width(), window.stack.canvas_size.height()) == (128, 128)
    assert "made" in _layers(window)
    assert "and its settings" in window.statusBar().currentMessage()


def test_a_plain_picture_opens_as_a_layer_and_keeps_the_settings(window: MainWindow, tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    Image.new("RGB", (64, 48), "red").save(path)
    before = window.job_model.job
    assert window.open_file(path)
    assert window.job_model.job == before
    assert "photo" in _layers(window)


def test_an_unknown_file_is_one_clear_error(window: MainWindow, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    assert not window.open_file(path)
    assert "not an Atelier project or an image" in window.last_error_box.text()


def test_atelier_file_means_the_studio_opening_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "made.png"
    Image.new("RGB", (8, 8)).save(path)
    seen: dict[str, object] = {}

    def fake_run_app(argv: list[str], screenshot: Path | None = None, recover: str = "ask",
                     open_path: Path | None = None) -> int:
        seen.update(open_path=open_path, recover=recover)
        return 0

    monkeypatch.setattr(studio.app, "run_app", fake_run_app)
    assert cli.main([str(path)]) == 0
    assert seen == {"open_path": path, "recover": "ask"}
    assert cli.main(["gui", "--recover", "no", str(path)]) == 0
    assert seen == {"open_path": path, "recover": "no"}


def test_a_missing_file_or_a_mistyped_command_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([str(tmp_path / "gone.atelier")]) == 1
    assert "gone.atelier: no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["rendr"])  # a word, not a file: argparse's "invalid choice"
    assert "invalid choice: 'rendr'" in capsys.readouterr().err


def test_about_shows_the_version(window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "about", lambda parent, title, text: shown.append(text))
    window._about()
    assert f"Atelier {__version__}" in shown[0]


def test_window_icon_has_every_shipped_size(qapp) -> None:  # type: ignore[no-untyped-def]
    icon = app_icon()
    sizes = {(s.width(), s.height()) for s in icon.availableSizes()}
    assert {(16, 16), (32, 32), (48, 48), (256, 256)} <= sizes
