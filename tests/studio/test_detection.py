"""Detect on the canvas: the shapes detector runs on the composited canvas off the GUI thread, the
overlay shows boxes with "label score" tags above the layers, toggles, and exports COCO JSON."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint

import engine.detect.registry as registry
from engine.data.dataset import make_sample
from studio.canvas.detections import OVERLAY_Z, TagItem
from studio.canvas.imaging import rgba_to_qimage
from studio.window import MainWindow

SEED = 1_000_007  # a held-out scene: a ring, a star and two circles (all fully visible)


def test_detect_shows_a_toggleable_overlay_and_exports_coco(window: MainWindow, qtbot, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    sample = make_sample(SEED, 512)
    background = window.stack.layers()[0]
    window.stack.set_pixels(background.id, rgba_to_qimage(sample.image), QPoint(0, 0))
    threads: list[threading.Thread] = []
    real_run = registry.run_detector

    def recording_run(*args, **kwargs):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread())
        return real_run(*args, **kwargs)

    monkeypatch.setattr(registry, "run_detector", recording_run)
    controller = window.detection
    assert not controller.show_action.isEnabled() and not controller.export_action.isEnabled()
    controller.detector_actions["shapes"].trigger()
    assert controller.detector == "shapes"
    with qtbot.waitSignal(controller.detected, timeout=30_000):
        controller.detect_action.trigger()
        assert not controller.detect_action.isEnabled()  # one run at a time
    assert threads and threads[0] is not threading.main_thread()  # engine work ran on the bridge's worker
    assert window.history.rowCount() == 0  # the window left the detection result alone

    overlay = controller.overlay
    assert overlay.scene() is window.canvas.scene() and overlay.zValue() == OVERLAY_Z
    assert all(item.zValue() < OVERLAY_Z for item in (window.canvas.layer_item(background.id),))
    items = overlay.items()
    assert sorted(item.detection.label for item in items) == ["circle", "circle", "ring", "star"]
    tags = [child for item in items for child in item.childItems() if isinstance(child, TagItem)]
    assert [t.text for t in tags] == [f"{i.detection.label} {i.detection.score:.2f}" for i in items]
    truth = {label.box for label in sample.labels}
    for item in items:  # boxes in canvas pixels, over the shapes they name
        rect = item.rect()
        assert any(abs(rect.left() - b[0]) < 12 and abs(rect.bottom() - b[3]) < 12 for b in truth)

    assert controller.show_action.isChecked() and overlay.isVisible()
    controller.show_action.trigger()
    assert not overlay.isVisible() and not controller.show_action.isChecked()
    controller.show_action.trigger()
    assert overlay.isVisible()

    out = tmp_path / "detections.json"
    assert controller.export(out)
    coco = json.loads(out.read_text())
    assert coco["images"] == [{"id": 1, "file_name": "canvas.png", "width": 512, "height": 512}]
    assert len(coco["annotations"]) == 4
    assert [c["name"] for c in coco["categories"]][:3] == ["circle", "square", "triangle"]  # the detector's order

    window.job_model.set(width=640)  # a new canvas size: the boxes no longer fit
    assert overlay.items() == [] and not controller.export_action.isEnabled()


def test_a_failing_detector_shows_an_error(window: MainWindow, qtbot, tmp_path: Path) -> None:
    controller = window.detection
    controller.set_detector(str(tmp_path / "missing.onnx"))
    assert not any(a.isChecked() for a in controller.detector_actions.values())
    with qtbot.waitSignal(window.bridge.finished, timeout=10_000):
        controller.detect()
    assert "missing.onnx: no such file" in window.last_error_box.text()
    assert controller.detect_action.isEnabled() and controller.result is None
    with pytest.raises(ValueError, match="unknown detector 'nope'"):
        controller.set_detector("nope")
