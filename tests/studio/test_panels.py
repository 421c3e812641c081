"""Panels bind to the job model both ways and reject bad values without losing the old ones."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette

from engine.settings import ControlUnit, Job
from studio.models.job_model import JobModel
from studio.panels.controlnet import ControlNetPanel
from studio.panels.prompt import PromptPanel
from studio.panels.prompt_weights import adjust_weight, syntax_spans
from studio.panels.sampler import SamplerPanel


@pytest.fixture
def model() -> JobModel:
    return JobModel()


def test_sampler_panel_edits_and_follows_the_model(qtbot, model: JobModel) -> None:
    panel = SamplerPanel(model)
    qtbot.addWidget(panel)
    panel.steps.setValue(33)
    panel.sampler.setCurrentIndex(panel.sampler.findData("euler_ancestral"))
    panel.cfg.setValue(4.5)
    assert (model.job.steps, model.job.sampler, model.job.cfg_scale) == (33, "euler_ancestral", 4.5)
    model.set_job(Job(schedule="exponential", width=768))
    assert panel.schedule.currentData() == "exponential" and panel.width_box.value() == 768
    assert panel.sampler.currentText() == "DPM++ 2M"
    assert all(w.toolTip() for w in (panel.sampler, panel.schedule, panel.steps, panel.cfg, panel.denoise))


def test_bad_size_is_rejected_and_reported(qtbot, model: JobModel) -> None:
    panel = SamplerPanel(model)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(model.invalid) as blocker:
        panel.width_box.setValue(515)
    assert blocker.args[0] == "width" and "multiple of 8" in blocker.args[1]
    assert model.job.width == 512 and panel.width_box.value() == 512


def test_field_signals_fire_only_for_changed_fields(qtbot, model: JobModel) -> None:
    seen = []
    model.steps_changed.connect(lambda v: seen.append(("steps", v)))
    model.prompt_changed.connect(lambda v: seen.append(("prompt", v)))
    model.set(steps=12)
    model.set(steps=12)
    assert seen == [("steps", 12)]


def test_prompt_panel_weights_and_seed(qtbot, model: JobModel) -> None:
    panel = PromptPanel(model)
    qtbot.addWidget(panel)
    panel.prompt.setPlainText("a red star")
    cursor = panel.prompt.textCursor()
    cursor.setPosition(2)
    cursor.setPosition(5, cursor.MoveMode.KeepAnchor)
    panel.prompt.setTextCursor(cursor)
    qtbot.keyClick(panel.prompt, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(panel.prompt, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
    assert model.job.prompt == "a (red:1.2) star"
    qtbot.keyClick(panel.prompt, Qt.Key.Key_Down, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(panel.prompt, Qt.Key.Key_Down, Qt.KeyboardModifier.ControlModifier)
    assert model.job.prompt == "a red star"
    panel.seed.lock.setChecked(True)
    model.set(seed=42)
    assert panel.seed.seed_for_next_job() == 42
    panel.seed.lock.setChecked(False)
    seeds = {panel.seed.seed_for_next_job() for _ in range(5)}
    assert len(seeds) >= 4 and panel.seed.edit.text() == str(model.job.seed)


def _weight_colour(edit) -> str:  # type: ignore[no-untyped-def]
    block = edit.document().firstBlock()
    formats = [r for r in block.layout().formats() if r.format.foreground().style() != Qt.BrushStyle.NoBrush]
    return formats[0].format.foreground().color().name()


def test_prompt_highlighting_follows_a_light_or_dark_palette(qtbot, model: JobModel) -> None:
    panel = PromptPanel(model)
    qtbot.addWidget(panel)
    panel.prompt.setPlainText("a (red:1.2) star")
    light = _weight_colour(panel.prompt)
    dark = QPalette(panel.prompt.palette())
    dark.setColor(QPalette.ColorRole.Base, QColor(30, 30, 34))
    dark.setColor(QPalette.ColorRole.Text, QColor(230, 230, 230))
    panel.prompt.setPalette(dark)  # what a switch of the system theme delivers
    on_dark = _weight_colour(panel.prompt)
    assert light != on_dark
    assert QColor(on_dark).lightnessF() > 0.55 > QColor(light).lightnessF()  # readable on each base


def test_weight_edit_functions() -> None:
    text, s, e = adjust_weight("a red star", 2, 10, 0.1)
    assert (text, text[s:e]) == ("a (red star:1.1)", "red star")
    text, s, e = adjust_weight(text, s, e, -0.3)
    assert text == "a (red star:0.8)"
    text, s, e = adjust_weight("cat, dog", 6, 6, -0.1)
    assert text == "cat, (dog:0.9)"
    assert adjust_weight("(dog:1.1)", 1, 4, -0.1)[0] == "dog"
    kinds = [s.kind for s in syntax_spans("(a:1.2) (b) [c] <lora:x:0.5>")]
    assert kinds == ["weight", "number", "emphasis", "deemphasis", "lora"]


def test_controlnet_panel_units(qtbot, model: JobModel) -> None:
    panel = ControlNetPanel(model)
    qtbot.addWidget(panel)
    panel.set_layer_choices([("c1", "Scribble 1"), ("c2", "Edges")])
    requested = []
    panel.add_requested.connect(requested.append)
    panel.add_button.click()
    assert requested == ["scribble"]
    panel.add_unit("scribble", "layer:c1")
    panel.add_unit("canny", "layer:c2")
    assert [u.image for u in model.job.controls] == ["layer:c1", "layer:c2"]
    panel.weight.setValue(0.6)
    panel.start.setValue(0.2)
    assert model.job.controls[1] == ControlUnit("canny", "layer:c2", weight=0.6, start=0.2)
    panel.end.setValue(0.1)  # before start: rejected, the unit keeps its end
    assert model.job.controls[1].end == 1.0 and panel.end.value() == 1.0
    panel.units.setCurrentRow(0)
    removed = []
    panel.remove_requested.connect(removed.append)
    panel.remove_button.click()
    assert removed == ["layer:c1"] and [u.type for u in model.job.controls] == ["canny"]
