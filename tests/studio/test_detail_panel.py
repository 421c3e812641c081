"""The Detail pass group of the Sampler dock edits `Job.detail` and follows it."""

from __future__ import annotations

from engine.detect import DETECTORS
from engine.settings import DetailPass, Job
from studio.models.job_model import JobModel
from studio.panels.sampler import SamplerPanel


def test_toggling_the_group_puts_a_detail_pass_in_and_takes_it_out(qtbot) -> None:  # type: ignore[no-untyped-def]
    model = JobModel(Job(width=768, height=512))
    panel = SamplerPanel(model)
    qtbot.addWidget(panel)
    group = panel.detail
    assert not group.isChecked() and model.job.detail == ()
    assert [group.detector.itemData(i) for i in range(group.detector.count())] == list(DETECTORS)
    group.setChecked(True)
    assert model.job.detail == (DetailPass(working_size=768),)  # ADetailer's default: the image's size
    group.detector.setCurrentIndex(group.detector.findData("shapes"))
    group.denoise.setValue(0.25)
    group.prompt.setText("a sharp star")
    group.prompt.editingFinished.emit()
    assert model.job.detail == (DetailPass("shapes", "a sharp star", denoise=0.25, working_size=768),)
    group.setChecked(False)
    assert model.job.detail == ()
    group.setChecked(True)  # the widgets kept their values
    assert model.job.detail == (DetailPass("shapes", "a sharp star", denoise=0.25, working_size=768),)


def test_the_group_follows_imported_settings_and_keeps_further_passes(qtbot) -> None:  # type: ignore[no-untyped-def]
    model = JobModel()
    panel = SamplerPanel(model)
    qtbot.addWidget(panel)
    second = DetailPass("mediapipe-hands", denoise=0.3)
    model.set_job(Job(detail=(DetailPass("/models/faces.onnx", "a face", denoise=0.5), second)))
    group = panel.detail
    assert group.isChecked() and group.detector.currentData() == "/models/faces.onnx"
    assert (group.denoise.value(), group.prompt.text()) == (0.5, "a face")
    group.denoise.setValue(0.45)
    assert model.job.detail == (DetailPass("/models/faces.onnx", "a face", denoise=0.45), second)
    model.set_job(Job())
    assert not group.isChecked()


def test_the_align_faces_box_edits_the_first_pass_and_follows_it(qtbot) -> None:  # type: ignore[no-untyped-def]
    model = JobModel(Job(width=512, height=512))
    panel = SamplerPanel(model)
    qtbot.addWidget(panel)
    group = panel.detail
    group.setChecked(True)
    assert not group.align.isChecked() and not model.job.detail[0].align_faces
    group.align.setChecked(True)
    assert model.job.detail == (DetailPass(working_size=512, align_faces=True),)
    model.set_job(Job(detail=(DetailPass("haar-face"),)))
    assert not group.align.isChecked()
    model.set_job(Job(detail=(DetailPass("haar-face", align_faces=True),)))
    assert group.align.isChecked() and group.detector.currentData() == "haar-face"


def test_the_hires_group_edits_the_jobs_upscale_and_follows_it(qtbot) -> None:  # type: ignore[no-untyped-def]
    from engine.pipeline.hires import LATENT_UPSCALERS
    from engine.settings import Upscale
    from engine.upscale import UPSCALERS

    model = JobModel()
    panel = SamplerPanel(model)
    qtbot.addWidget(panel)
    group = panel.hires
    assert not group.isChecked() and model.job.upscale is None
    assert [group.upscaler.itemData(i) for i in range(group.upscaler.count())] == [*UPSCALERS, *LATENT_UPSCALERS]
    group.setChecked(True)
    assert model.job.upscale == Upscale("lanczos", 2.0, denoise=0.5)
    group.upscaler.setCurrentIndex(group.upscaler.findData("latent (bicubic)"))
    group.scale.setValue(1.5)
    group.denoise.setValue(0.6)
    group.steps.setValue(12)
    assert model.job.upscale == Upscale("latent (bicubic)", 1.5, "latent", denoise=0.6, steps=12)
    group.setChecked(False)
    assert model.job.upscale is None
    model.set_job(Job(upscale=Upscale("atelier-x4", 4.0, tile_size=256, denoise=0.3, steps=8)))
    assert group.isChecked() and group.upscaler.currentData() == "atelier-x4"
    assert (group.scale.value(), group.denoise.value(), group.steps.value()) == (4.0, 0.3, 8)
    group.denoise.setValue(0.35)  # the tile size from the loaded job is kept
    assert model.job.upscale == Upscale("atelier-x4", 4.0, "pixel", 256, denoise=0.35, steps=8)
    model.set_job(Job())
    assert not group.isChecked()
