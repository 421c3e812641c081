"""Tools > Upscale…: the canvas or a History image is upscaled on the bridge into a new layer (the canvas
and its layers scaled with it) and a History entry whose Job records the Upscale; cancel leaves both alone."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QSize
from shiboken6 import isValid

from engine.settings import Job, Upscale
from studio.canvas.imaging import qimage_to_rgba, rgba_to_qimage
from studio.canvas.layers import LayerKind
from studio.upscale import UpscaleRequest
from studio.upscale_dialog import UpscaleDialog
from studio.window import MainWindow


def _paint(window: MainWindow, size: QSize, seed: int = 0) -> None:
    window.stack.resize_canvas(size)
    rgb = np.random.default_rng(seed).integers(0, 256, (size.height(), size.width(), 3), dtype=np.uint8)
    window.stack.set_pixels(window.stack.layers()[0].id, rgba_to_qimage(rgb), QPoint(0, 0))


def test_the_dialog_upscales_the_canvas_into_a_layer_and_a_history_entry(window: MainWindow, qtbot) -> None:
    _paint(window, QSize(64, 48))
    controller = window.detection.upscale
    tools = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Tools")
    assert controller.upscale_action in tools.actions()
    dialog = controller.open_dialog()
    assert isinstance(dialog, UpscaleDialog)
    assert not dialog.source.model().item(1).isEnabled()  # no History image to upscale yet
    dialog.upscaler.setCurrentIndex(dialog.upscaler.findData("lanczos"))
    dialog.scale.setValue(2.0)
    with qtbot.waitSignal(controller.upscaled, timeout=30_000):
        dialog.buttons.accepted.emit()
        assert not controller.upscale_action.isEnabled()
    qtbot.waitUntil(lambda: not isValid(dialog) or not dialog.isVisible())  # closed when the run ended
    stack = window.stack
    assert stack.canvas_size == QSize(128, 96)
    assert [layer.image.size() for layer in stack.layers()] == [QSize(128, 96)] * 2  # the old layer scaled too
    top = stack.layers()[-1]
    assert top.kind is LayerKind.IMAGE and top.name == "Upscaled (lanczos ×2)" and stack.current.id == top.id
    entry = window.history.entry(0)
    assert entry.image.shape == (96, 128, 3)
    assert np.array_equal(qimage_to_rgba(top.image)[..., :3], entry.image)
    assert entry.job == Job(width=64, height=48, upscale=Upscale("lanczos", 2.0, "pixel", None))
    assert window.detection.result is None and window.history.rowCount() == 1  # the window left it alone
    assert "Upscaled to 128x96" in window.statusBar().currentMessage()
    stack.undo_stack.undo()  # one step takes back the layer and the resize
    assert stack.canvas_size == QSize(64, 48) and len(stack.layers()) == 1


def test_a_history_image_keeps_its_job_and_too_large_a_result_is_refused(window: MainWindow, qtbot) -> None:
    job = Job(prompt="a star", seed=7, width=64, height=64)
    image = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    window.history.add(image, job)
    window.history_panel.view.setCurrentIndex(window.history.index(0))
    controller = window.detection.upscale
    with qtbot.waitSignal(controller.upscaled, timeout=30_000) as blocker:
        controller.start(UpscaleRequest("history", "bicubic", 1.5, tile=128))
    assert blocker.args[0].job == Job(prompt="a star", seed=7, width=64, height=64,
                                      upscale=Upscale("bicubic", 1.5, "pixel", 128))
    assert window.stack.canvas_size == QSize(96, 96) and window.history.rowCount() == 2
    with qtbot.waitSignal(controller.failed) as refused:
        assert controller.start(UpscaleRequest("canvas", "lanczos", 9.0)) is None
    assert refused.args[:2] == ["Cannot upscale", "scale: must be <= 8.0, got 9.0"]
    window.stack.resize_canvas(QSize(1100, 64))
    with qtbot.waitSignal(controller.failed) as refused:
        assert controller.start(UpscaleRequest("canvas", "lanczos", 8.0)) is None
    assert refused.args[1] == "the result would be 8800x512 px; the canvas allows at most 8192 px per side"
    assert not controller.running


def test_cancel_after_the_first_tile_leaves_canvas_and_history_alone(window: MainWindow, qtbot) -> None:
    _paint(window, QSize(1024, 1024), seed=2)
    controller = window.detection.upscale
    dialog = controller.open_dialog()
    dialog.upscaler.setCurrentIndex(dialog.upscaler.findData("atelier-x4"))
    dialog.scale.setValue(2.0)
    dialog.auto_tile.setChecked(False)
    dialog.tile.setValue(64)
    tiles: list[tuple[int, int]] = []

    def first_tile(done: int, total: int) -> None:
        tiles.append((done, total))
        if len(tiles) == 1:
            dialog.reject()  # the dialog's Cancel button while running

    controller.progress.connect(first_tile)
    with qtbot.waitSignal(window.bridge.cancelled, timeout=60_000):
        dialog.start()
    qtbot.waitUntil(lambda: not controller.running)
    assert tiles and tiles[0][1] > 100 and tiles[-1][0] < tiles[0][1]  # stopped well before the last tile
    assert window.stack.canvas_size == QSize(1024, 1024) and len(window.stack.layers()) == 1
    assert window.history.rowCount() == 0
    assert window.statusBar().currentMessage().startswith("Upscale cancelled")
    qtbot.waitUntil(lambda: not isValid(dialog) or not dialog.isVisible())  # closed when the run ended


def test_upscaler_files_from_a_models_scan_run_and_a_bad_one_is_reported(qtbot, tmp_path, settings) -> None:
    from engine.models import ModelStore
    from studio.panels.hires import FILE_ROLE
    from tests.engine.upscale.test_model_file import basicsr_layout, rrdbnet, save
    from tests.studio.conftest import no_generation

    models = tmp_path / "models"
    good = save(basicsr_layout(rrdbnet(1)), models / "upscalers" / "esrgan-x2.pth", "params_ema")
    store = ModelStore.with_roots([models])
    w = MainWindow(no_generation, settings, autosave_path=tmp_path / "rec" / "s.atelier",
                   scan_models=lambda: (store.scan(), (str(models),)))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    try:
        w.rescan_models()
        hires = w.sampler_panel.hires.upscaler
        at = hires.findData("upscalers/esrgan-x2")
        assert at == 3 and hires.itemData(at, FILE_ROLE)  # after lanczos, bicubic, atelier-x4; before the latents
        _paint(w, QSize(40, 32), seed=3)
        controller = w.detection.upscale
        dialog = controller.open_dialog()
        dialog.upscaler.setCurrentIndex(dialog.upscaler.findData(str(good)))
        assert dialog.upscaler.currentText() == "upscalers/esrgan-x2"
        dialog.scale.setValue(2.0)
        with qtbot.waitSignal(controller.upscaled, timeout=30_000) as done:
            dialog.buttons.accepted.emit()
        assert done.args[0].job.upscale.upscaler == str(good) and done.args[0].image.shape == (64, 80, 3)
        assert w.stack.canvas_size == QSize(80, 64) and w.stack.layers()[-1].name == "Upscaled (esrgan-x2 ×2)"

        bad = tmp_path / "broken.safetensors"
        bad.write_bytes(b"\x00" * 100)
        dialog = controller.open_dialog()
        dialog.choose_file(str(bad))  # what the File… button adds
        assert dialog.upscaler.currentText() == "broken"
        with qtbot.waitSignal(controller.failed, timeout=30_000) as failed:
            dialog.buttons.accepted.emit()
        assert failed.args[0] == "Upscaling failed" and "broken.safetensors: corrupt or truncated" in failed.args[1]
        assert w.stack.canvas_size == QSize(80, 64) and w.history.rowCount() == 1  # nothing lost or added
    finally:
        w.bridge.shutdown(5000)
        w.autosaver.wait()
