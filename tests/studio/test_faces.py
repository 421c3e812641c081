"""Tools > Detect > Align Faces: faces found and aligned off the GUI thread, a folder asked for, and the
crops and faces.json written as `atelier faces --align` writes them; a canvas without a face says so and
writes nothing."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QMenu

import engine.face.landmarks as landmarks
from engine.face import align_face
from engine.face.export import LANDMARK_ORDER
from studio.canvas.imaging import rgba_to_qimage
from studio.window import MainWindow


def _paint(window: MainWindow, rgb: np.ndarray) -> None:
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    window.stack.set_pixels(window.stack.layers()[0].id, rgba_to_qimage(rgba), QPoint(0, 0))


def test_align_faces_writes_the_crops_and_their_landmarks(window: MainWindow, qtbot, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from skimage import data

    astronaut = data.astronaut()
    _paint(window, astronaut)
    threads: list[threading.Thread] = []
    real_find = landmarks.find_faces

    def recording_find(*args, **kwargs):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread())
        return real_find(*args, **kwargs)

    monkeypatch.setattr(landmarks, "find_faces", recording_find)
    controller = window.detection.faces
    menus = {menu.title(): menu for menu in window.menuBar().findChildren(QMenu)}
    assert controller.align_action in menus["&Detect"].actions()
    out = tmp_path / "faces"
    asked: list[bool] = []
    controller.choose_folder = lambda: asked.append(True) or out
    with qtbot.waitSignal(controller.written, timeout=60_000) as written:
        controller.align_action.trigger()
        assert not controller.align_action.isEnabled()  # one run at a time
    assert threads and threads[0] is not threading.main_thread()  # engine work ran on the bridge's worker
    assert asked == [True] and window.history.rowCount() == 0  # the window left the result alone
    assert written.args[0] == [out / "face_000.png"]
    record = json.loads((out / "faces.json").read_text())
    assert (record["width"], record["height"], record["method"], record["size"]) == (512, 512, "arcface", 512)
    assert record["landmark_order"] == list(LANDMARK_ORDER) and len(record["faces"]) == 1
    face = record["faces"][0]
    expected = align_face(astronaut, real_find(astronaut)[0], 512)
    assert np.abs(np.array(face["landmarks"]) - expected.face.points).max() < 0.01
    assert np.abs(np.array(face["crop_landmarks"]) - expected.landmarks).max() < 0.01
    crop = np.asarray(Image.open(out / face["file"]))
    assert crop.shape == (512, 512, 3) and np.abs(crop.astype(int) - expected.crop.astype(int)).max() <= 1
    assert "Wrote 1 aligned face" in window.statusBar().currentMessage()
    qtbot.waitUntil(controller.align_action.isEnabled)


def test_a_canvas_without_a_face_says_so_and_writes_nothing(window: MainWindow, qtbot, tmp_path: Path) -> None:
    _paint(window, np.full((512, 512, 3), 180, np.uint8))
    controller = window.detection.faces
    controller.choose_folder = lambda: pytest.fail("no face: no folder to ask for")
    with qtbot.waitSignal(controller.status_message, timeout=60_000,
                          check_params_cb=lambda m: m.startswith("No face")) as message:
        controller.align_action.trigger()
    assert "nothing written" in message.args[0] and "No face found" in window.statusBar().currentMessage()
    assert not any(tmp_path.glob("**/face_*.png")) and not any(tmp_path.glob("**/faces.json"))
