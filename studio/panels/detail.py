"""The Detail pass group of the Sampler dock (ADetailer-style): turns the job's first detail pass
(`Job.detail`) on and off and edits its detector, denoise strength, prompt and face alignment. Further passes (from
imported settings) are kept as they are; turning the group off removes every pass."""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QLineEdit, QWidget

from engine.detect.registry import DETECTORS
from engine.settings import DetailPass
from engine.settings.job import image_detail_size
from studio.models.job_model import JobModel


class DetailGroup(QGroupBox):
    """A checkable group bound to `Job.detail`: checked means one pass or more."""

    def __init__(self, model: JobModel, parent: QWidget | None = None) -> None:
        super().__init__("Detail pass", parent)
        self._model = model
        self.setCheckable(True)
        self.setToolTip("After each image is made, find every detection and repaint it closer up "
                        "(A1111's ADetailer): crop, img2img at the working size, paste back feathered.")
        self.detector = QComboBox(toolTip="What to find and repaint.")
        for name, spec in DETECTORS.items():
            self.detector.addItem(name, name)
            self.detector.setItemData(self.detector.count() - 1, spec.summary, Qt.ItemDataRole.ToolTipRole)
        self.denoise = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.05, decimals=2,
                                      toolTip="How much of each detection to repaint (0 = none of it).")
        self.prompt = QLineEdit(placeholderText="the job's prompt",
                                toolTip="The prompt for the detections; empty uses the job's prompt.")
        self.align = QCheckBox("Align faces", toolTip="Repaint each face upright on a crop aligned by its "
                               "eyes, nose and mouth (five landmarks), then paste it back with a soft edge.")
        form = QFormLayout(self)
        form.addRow("Detector", self.detector)
        form.addRow("Denoise", self.denoise)
        form.addRow("Prompt", self.prompt)
        form.addRow("", self.align)
        self._show(model.job.detail)
        if not model.job.detail:
            self._show_pass(DetailPass())  # what checking the group starts from
        model.detail_changed.connect(self._show)
        self.toggled.connect(self._commit)
        self.detector.currentIndexChanged.connect(self._commit)
        self.denoise.valueChanged.connect(self._commit)
        self.prompt.editingFinished.connect(self._commit)
        self.align.toggled.connect(self._commit)

    def _show(self, detail: tuple[DetailPass, ...]) -> None:
        """Show the job's passes: checked when there are any, the first one's settings in the widgets."""
        with QSignalBlocker(self):
            self.setChecked(bool(detail))
        if detail:
            self._show_pass(detail[0])

    def _show_pass(self, settings: DetailPass) -> None:
        with QSignalBlocker(self.detector), QSignalBlocker(self.denoise), QSignalBlocker(self.prompt), \
                QSignalBlocker(self.align):
            if self.detector.findData(settings.detector) < 0:  # a .onnx file from imported settings
                self.detector.addItem(settings.detector, settings.detector)
            self.detector.setCurrentIndex(self.detector.findData(settings.detector))
            self.denoise.setValue(settings.denoise)
            self.align.setChecked(settings.align_faces)
            if self.prompt.text() != settings.prompt:
                self.prompt.setText(settings.prompt)

    def _commit(self, *_: object) -> None:
        """Write the widgets into the job's first pass (a new pass repaints at the image's size)."""
        job = self._model.job
        if not self.isChecked():
            passes: tuple[DetailPass, ...] = ()
        else:
            first = job.detail[0] if job.detail else DetailPass(working_size=image_detail_size(job.width, job.height))
            first = dataclasses.replace(first, detector=self.detector.currentData(), denoise=self.denoise.value(),
                                        prompt=self.prompt.text(), align_faces=self.align.isChecked())
            passes = (first, *job.detail[1:])
        if passes != job.detail and not self._model.set(detail=passes):
            self._show(self._model.job.detail)  # rejected: show what the job kept
