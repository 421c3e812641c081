"""The main window: docks, persistence, projects, settings import and the error path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QSettings, QSize

from engine.control import draw_pose
from engine.control.pose import BODY_POINTS
from engine.metadata import save_png
from engine.settings import Job, load_settings
from studio.canvas import LayerKind
from studio.canvas.control_kinds import CONTROL_KINDS
from studio.canvas.derive import write_control_layer
from studio.canvas.layers import control_array
from studio.panels.controlnet import CONTROL_TYPES
from studio.window import MainWindow
from tests.engine.control.images import STICK_FIGURE, stick_figure
from tests.engine.test_settings import FULL_JOB
from tests.studio.canvas.helpers import drag
from tests.studio.conftest import no_generation


def test_window_has_every_dock_and_menu(window: MainWindow) -> None:
    assert set(window.docks) == {"prompt", "sampler", "controlnet", "models", "tools", "layers", "history"}
    assert [a.text() for a in window.menuBar().actions()] == ["&File", "&Edit", "&Tools", "&Generate", "&View", "&Help"]
    assert window.generate_action.shortcut().toString() == "Ctrl+Return"
    assert window.cancel_action.shortcut().toString() == "Esc"


def test_first_window_fits_the_screen_and_tall_panels_scroll(window: MainWindow, qtbot) -> None:
    """The docks stacked at their natural heights need more than a 1000 px screen; the window still
    opens inside the screen's free area (the History buttons reachable) and a squeezed panel scrolls."""
    free = window.screen().availableGeometry()
    assert window.height() <= free.height() and window.width() <= free.width()
    assert window.minimumSizeHint().height() < 600
    sampler = window.docks["sampler"].widget()
    assert sampler.widget() is window.sampler_panel
    qtbot.waitUntil(lambda: sampler.viewport().height() < window.sampler_panel.minimumSizeHint().height())
    assert sampler.verticalScrollBar().maximum() > 0  # the rest of the panel is a scroll away
    history = window.docks["history"]
    assert window.rect().contains(history.geometry())


def test_job_size_and_canvas_follow_each_other(window: MainWindow) -> None:
    window.job_model.set(width=640, height=384)
    assert window.stack.canvas_size == QSize(640, 384)
    window.stack.undo_stack.undo()
    assert (window.job_model.job.width, window.job_model.job.height) == (512, 512)


def _canvas_on_screen(window: MainWindow):  # type: ignore[no-untyped-def]
    size = window.stack.canvas_size
    return window.canvas.mapFromScene(0, 0, size.width(), size.height()).boundingRect()


def test_canvas_is_shown_whole_and_centred(window: MainWindow, qtbot) -> None:
    """On first show and after a resize of the canvas, the whole canvas is in view, in the middle."""
    for size in (None, (1024, 384)):
        if size is not None:
            window.job_model.set(width=size[0], height=size[1])
        view = window.canvas.viewport().rect()
        qtbot.waitUntil(lambda: view.contains(_canvas_on_screen(window)), timeout=2_000)
        shown = _canvas_on_screen(window)
        assert abs(shown.center().x() - view.center().x()) <= 2 and abs(shown.center().y() - view.center().y()) <= 2
        assert max(shown.width() / view.width(), shown.height() / view.height()) > 0.85  # fills the view


def test_control_unit_gets_its_own_layer(window: MainWindow) -> None:
    window.control_panel.add_button.click()
    (unit,) = window.job_model.job.controls
    layer = window.stack.layer(unit.image.removeprefix("layer:"))
    assert layer.kind is LayerKind.CONTROL
    assert window.control_panel.layer_box.currentData() == unit.image


@pytest.mark.parametrize("control_type", list(CONTROL_TYPES))
def test_each_control_unit_type_gets_a_layer_of_its_kind(window: MainWindow, control_type: str) -> None:
    assert set(CONTROL_TYPES) == set(CONTROL_KINDS)  # every type the panel offers has a layer kind
    box = window.control_panel.type_box
    box.setCurrentIndex(box.findData(control_type))
    window.control_panel.add_button.click()
    (unit,) = window.job_model.job.controls
    layer = window.stack.layer(unit.image.removeprefix("layer:"))
    assert unit.type == control_type and layer.kind is LayerKind.CONTROL and layer.control_type == control_type
    assert layer.control is CONTROL_KINDS[control_type] and window.stack.current is layer
    assert control_array(layer).max() == 0  # a fresh map is black


def test_changing_a_units_type_retypes_its_layer_unless_the_layer_was_retyped_by_hand(window: MainWindow) -> None:
    box = window.control_panel.type_box
    box.setCurrentIndex(box.findData("scribble"))
    window.control_panel.add_button.click()
    (unit,) = window.job_model.job.controls
    layer = window.stack.layer(unit.image.removeprefix("layer:"))
    box.setCurrentIndex(box.findData("canny"))  # the selected unit's type, as the user picks it
    assert window.job_model.job.controls[0].type == "canny"
    assert layer.control_type == "canny" and layer.name == "canny map"
    window.stack.rename_layer(layer.id, "my edges")
    box.setCurrentIndex(box.findData("lineart"))
    assert layer.control_type == "lineart" and layer.name == "my edges"  # a name the user chose stays
    window.stack.set_control_type(layer.id, "seg")  # the layer says otherwise: the unit's change leaves it
    box.setCurrentIndex(box.findData("pose"))
    assert window.job_model.job.controls[0].type == "pose" and layer.control_type == "seg"


def test_pose_layer_survives_save_and_reopen_and_its_joints_still_drag(window: MainWindow, tmp_path: Path) -> None:
    size = window.stack.canvas_size.width()
    people = stick_figure(size)
    layer = write_control_layer(window.stack, draw_pose(people, size, size), people, "pose")
    window.stack.set_opacity(layer.id, 0.8)
    tint, pixels = layer.tint, layer.image.copy()
    path = tmp_path / "pose.atelier"
    assert window.save_project(path=path)
    window.new_canvas()
    assert window.open_project(path)
    reopened = window.stack.layer(layer.id)
    assert window.stack.current is reopened and reopened.pose == people
    assert (reopened.control_type, reopened.tint, reopened.opacity) == ("pose", tint, 0.8)
    assert reopened.image == pixels and window.canvas.pose_handles().isVisible()
    window.canvas.zoom_to_fit()
    x, y = (c * size / 128 for c in STICK_FIGURE["left_wrist"])
    drag(window.canvas, [(x, y), (x + 20, y + 10), (x + 40, y + 20)])
    moved = reopened.pose[0].body[BODY_POINTS.index("left_wrist")]
    assert (moved.x, moved.y) == pytest.approx((x + 40, y + 20), abs=2.0)
    np.testing.assert_array_equal(control_array(reopened), draw_pose(reopened.pose, size, size))


def test_project_round_trip(window: MainWindow, tmp_path: Path) -> None:
    window.job_model.set(prompt="a red star", steps=12)
    layer = window.stack.layers()[0]
    window.stack.set_pixels(layer.id, Image_to_qimage(np.full((16, 16, 4), 200, np.uint8)), QPoint(4, 4))
    window.history.add(np.full((8, 8, 3), 77, np.uint8), Job(seed=5))
    path = tmp_path / "p.atelier"
    assert window.save_project(path=path)
    before = [(l.id, l.name, l.kind) for l in window.stack.layers()]
    pixels = window.stack.layers()[0].image.copy()
    window.new_canvas()
    window.job_model.set(prompt="something else")
    assert window.open_project(path)
    assert [(l.id, l.name, l.kind) for l in window.stack.layers()] == before
    assert window.stack.layers()[0].image == pixels
    assert window.job_model.job.prompt == "a red star" and window.history.entry(0).job.seed == 5


def Image_to_qimage(arr: np.ndarray):  # type: ignore[no-untyped-def]
    from studio.canvas.imaging import rgba_to_qimage

    return rgba_to_qimage(arr)


def test_bad_files_show_errors_and_keep_everything(window: MainWindow, tmp_path: Path) -> None:
    window.job_model.set(prompt="my careful prompt")
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 1, "steps": 0}')
    assert not window.import_settings(bad)
    assert "steps" in window.last_error_box.text() or "steps" in window.statusBar().currentMessage()
    broken = tmp_path / "broken.atelier"
    broken.write_bytes(b"not a project")
    layers_before = len(window.stack.layers())
    assert not window.open_project(broken)
    assert window.job_model.job.prompt == "my careful prompt" and len(window.stack.layers()) == layers_before


def test_import_settings_from_png_and_export(window: MainWindow, tmp_path: Path) -> None:
    png = tmp_path / "r.png"
    save_png(Image.new("RGB", (8, 8)), png, FULL_JOB)
    assert window.import_settings(png)
    assert window.job_model.job == FULL_JOB
    out = tmp_path / "s.json"
    assert window.export_settings(out) and load_settings(out) == FULL_JOB


def test_preferences_persist_between_runs(qtbot, tmp_path: Path, settings: QSettings) -> None:
    first = MainWindow(no_generation, settings, autosave_path=tmp_path / "a.atelier")
    qtbot.addWidget(first)
    first.job_model.set(prompt="remember me", steps=33)
    first.docks["history"].setVisible(False)
    first.close()
    second = MainWindow(no_generation, QSettings(settings.fileName(), QSettings.Format.IniFormat),
                        autosave_path=tmp_path / "b.atelier")
    qtbot.addWidget(second)
    assert (second.job_model.job.prompt, second.job_model.job.steps) == ("remember me", 33)
    assert not second.docks["history"].isVisibleTo(second)
    second.close()


def test_generation_error_is_non_blocking_and_loses_nothing(window: MainWindow, qtbot) -> None:
    window.job_model.set(prompt="keep this")
    with qtbot.waitSignal(window.bridge.finished, timeout=5000):
        window.generate()
    assert window.last_error_box.isVisible() and not window.last_error_box.isModal()
    assert "not part of this test" in window.last_error_box.text()
    assert "Traceback" in window.last_error_box.detailedText()
    assert window.job_model.job.prompt == "keep this"


def _card_scan(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A scan with one model folder that carries a card recommending 128 px and Euler."""
    from engine.models import Family, Layout, ModelEntry, ModelKind, ScanResult
    from engine.models.card import write_card

    folder = tmp_path / "models" / "shapes"
    folder.mkdir(parents=True)
    write_card(folder, "Shapes (built-in)", "knows shapes", {"width": 128, "height": 128, "sampler": "euler"})
    entry = ModelEntry(folder, "shapes", ModelKind.CHECKPOINT, Layout.DIFFUSERS_FOLDER, Family.SD1, (Family.SD1,),
                       "unet", 0)
    return ScanResult((entry,)), folder


def test_first_run_starts_with_the_default_models_recommended_settings(qtbot, tmp_path: Path,
                                                                      settings: QSettings) -> None:
    scan, folder = _card_scan(tmp_path)
    w = MainWindow(no_generation, settings, autosave_path=tmp_path / "a.atelier",
                   scan_models=lambda: (scan, (str(folder.parent),)))
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.job_model.job.model.path == str(folder))
    job = w.job_model.job
    assert (job.width, job.height, job.sampler) == (128, 128, "euler")
    assert w.stack.canvas_size == QSize(128, 128)
    assert w.models_panel.list.item(0).text() == "Shapes (built-in)"  # the card's name
    w.job_model.set(width=256, height=256)
    w.close()
    # Not on later runs: what the user set is remembered.
    again = MainWindow(no_generation, QSettings(settings.fileName(), QSettings.Format.IniFormat),
                       autosave_path=tmp_path / "b.atelier", scan_models=lambda: (scan, (str(folder.parent),)))
    qtbot.addWidget(again)
    qtbot.wait(50)
    assert (again.job_model.job.width, again.job_model.job.height) == (256, 256)
    again.close()
