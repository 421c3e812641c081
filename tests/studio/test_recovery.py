"""Autosave writes a recovery project in the background; a clean exit removes it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QSettings

from engine.control import draw_pose
from engine.control.pose import BODY_POINTS
from engine.paths import HOME_ENV
from engine.project import Project, ProjectLayer
from engine.settings import Job
from studio.app import offer_recovery
from studio.canvas.derive import write_control_layer
from studio.canvas.layers import control_array
from studio.recovery import Autosaver, find_recovery, recovery_path
from studio.window import MainWindow
from tests.engine.control.images import STICK_FIGURE, stick_figure
from tests.studio.canvas.helpers import drag


def _snapshot(counter: list[int]):  # type: ignore[no-untyped-def]
    def snap() -> Project:
        counter.append(1)
        pixels = np.full((8, 8, 4), len(counter), np.uint8)
        return Project(8, 8, (ProjectLayer("l1", "L", "image", pixels),), Job(seed=len(counter)))
    return snap


def test_autosave_then_recover_then_clean_exit(qtbot, tmp_path: Path) -> None:
    calls: list[int] = []
    saver = Autosaver(_snapshot(calls), tmp_path / "rec" / "session.atelier", interval_ms=20)
    with qtbot.waitSignal(saver.saved, timeout=5000):
        saver.start()
    qtbot.waitUntil(lambda: len(calls) >= 3, timeout=5000)
    saver.wait()
    restored = find_recovery(saver.path)
    assert restored is not None and restored.settings.seed >= 1
    assert int(restored.layers[0].pixels[0, 0, 0]) == restored.settings.seed
    saver.discard()
    assert not saver.path.exists() and find_recovery(saver.path) is None


def test_unreadable_recovery_is_kept_aside(tmp_path: Path) -> None:
    path = tmp_path / "session.atelier"
    path.write_bytes(b"not a zip")
    assert find_recovery(path) is None
    assert (tmp_path / "session.unreadable").read_bytes() == b"not a zip"


def test_failed_autosave_is_reported(qtbot, tmp_path: Path) -> None:
    blocker_file = tmp_path / "file"
    blocker_file.write_text("x")
    saver = Autosaver(_snapshot([]), blocker_file / "sub" / "session.atelier")
    with qtbot.waitSignal(saver.failed, timeout=5000):
        saver.save_now()


def _window(qtbot, tmp_path: Path, name: str) -> MainWindow:  # type: ignore[no-untyped-def]
    settings = QSettings(str(tmp_path / f"{name}.ini"), QSettings.Format.IniFormat)
    window = MainWindow(lambda *args: [], settings, autosave_path=recovery_path())
    qtbot.addWidget(window)
    return window


def test_a_pose_layer_survives_crash_recovery(qtbot, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The autosave a crashed session leaves restores a pose layer with its keypoints, still draggable."""
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    crashed = _window(qtbot, tmp_path, "crashed")
    people = stick_figure(512)
    layer = write_control_layer(crashed.stack, draw_pose(people, 512, 512), people, "pose")
    with qtbot.waitSignal(crashed.autosaver.saved, timeout=5000):
        crashed.autosaver.save_now()
    crashed.autosaver.wait()  # the session ends here without a clean exit: the recovery file stays

    restarted = _window(qtbot, tmp_path, "restarted")
    restarted.show()
    qtbot.waitExposed(restarted)
    assert offer_recovery(restarted, ask=False)
    restored = restarted.stack.layer(layer.id)
    assert restored.pose == people and restored.control_type == "pose" and restored.tint == layer.tint
    assert restarted.stack.current is restored and restored.image == layer.image
    restarted.canvas.zoom_to_fit()
    x, y = (c * 4 for c in STICK_FIGURE["left_wrist"])
    drag(restarted.canvas, [(x, y), (x + 30, y + 30)])
    moved = restored.pose[0].body[BODY_POINTS.index("left_wrist")]
    assert (moved.x, moved.y) == pytest.approx((x + 30, y + 30), abs=2.0)
    np.testing.assert_array_equal(control_array(restored), draw_pose(restored.pose, 512, 512))
    restarted.autosaver.wait()
