"""Autosave writes a recovery project in the background; a clean exit removes it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.project import Project, ProjectLayer
from engine.settings import Job
from studio.recovery import Autosaver, find_recovery


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
