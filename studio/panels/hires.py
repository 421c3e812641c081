"""The Hires fix group of the Sampler dock (A1111's "Hires. fix"): turns `Job.upscale` on and off and
edits its upscaler (pixel upscalers and the latent ones), scale, hires denoise and steps. The mode
follows the upscaler: a latent upscaler runs in latent mode, every other one in pixel mode."""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QSpinBox, QWidget

from engine.pipeline.hires import LATENT_UPSCALERS
from engine.settings import Upscale
from engine.upscale import UPSCALERS
from studio.models.job_model import JobModel

DEFAULT_HIRES = Upscale(denoise=0.5)  # what checking the group starts from: upscale x2, then repaint half


FILE_ROLE = Qt.ItemDataRole.UserRole + 1  # marks the entries that are upscaler files from a models scan


def upscale_mode(upscaler: str) -> str:
    """The Upscale mode an upscaler runs in: "latent" for a latent upscaler, else "pixel"."""
    return "latent" if upscaler.lower() in LATENT_UPSCALERS else "pixel"


class HiresGroup(QGroupBox):
    """A checkable group bound to `Job.upscale`: checked means the job upscales each image."""

    def __init__(self, model: JobModel, parent: QWidget | None = None) -> None:
        super().__init__("Hires fix", parent)
        self._model = model
        self.setCheckable(True)
        self.setToolTip("After each image is made, upscale it and repaint it at the new size by img2img "
                        "with its own seed (A1111's Hires. fix); denoise 0 only upscales.")
        self.upscaler = QComboBox(toolTip="How to enlarge: in pixels by an upscaler, or the latents by "
                                  "interpolation (latent upscalers need a denoise above 0).")
        for name, spec in UPSCALERS.items():
            self.upscaler.addItem(name, name)
            self.upscaler.setItemData(self.upscaler.count() - 1, spec.summary, Qt.ItemDataRole.ToolTipRole)
        for name in LATENT_UPSCALERS:
            self.upscaler.addItem(name, name)
        self.scale = QDoubleSpinBox(minimum=1.0, maximum=8.0, singleStep=0.25, decimals=2, suffix="×",
                                    toolTip="How many times larger the final image is.")
        self.denoise = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.05, decimals=2,
                                      toolTip="Hires denoise: how much of the upscaled image to repaint.")
        self.steps = QSpinBox(minimum=0, maximum=1000, specialValueText="job's steps",
                              toolTip="Sampling steps of the hires pass (0 = the job's own step count).")
        form = QFormLayout(self)
        form.addRow("Upscaler", self.upscaler)
        form.addRow("Scale", self.scale)
        form.addRow("Denoise", self.denoise)
        form.addRow("Steps", self.steps)
        self._show(model.job.upscale)
        if model.job.upscale is None:
            self._show_settings(DEFAULT_HIRES)
        model.upscale_changed.connect(self._show)
        self.toggled.connect(self._commit)
        self.upscaler.currentIndexChanged.connect(self._commit)
        self.scale.valueChanged.connect(self._commit)
        self.denoise.valueChanged.connect(self._commit)
        self.steps.valueChanged.connect(self._commit)

    def set_upscaler_files(self, names: tuple[tuple[str, str], ...]) -> None:
        """List the upscaler model files a models scan found, (store name, tooltip), after the built-in
        pixel upscalers; the engine finds a file by its store name. The current choice is kept."""
        current = self.upscaler.currentData()
        with QSignalBlocker(self.upscaler):
            for index in reversed(range(self.upscaler.count())):
                if self.upscaler.itemData(index, FILE_ROLE):
                    self.upscaler.removeItem(index)
            for offset, (name, tip) in enumerate(names):
                at = len(UPSCALERS) + offset
                self.upscaler.insertItem(at, name, name)
                self.upscaler.setItemData(at, tip, Qt.ItemDataRole.ToolTipRole)
                self.upscaler.setItemData(at, True, FILE_ROLE)
            if self.upscaler.findData(current) < 0:
                self.upscaler.addItem(current, current)  # a file no longer there: still what the job says
            self.upscaler.setCurrentIndex(self.upscaler.findData(current))

    def _show(self, upscale: Upscale | None) -> None:
        """Show the job's upscale: checked when there is one, its settings in the widgets."""
        with QSignalBlocker(self):
            self.setChecked(upscale is not None)
        if upscale is not None:
            self._show_settings(upscale)

    def _show_settings(self, settings: Upscale) -> None:
        with QSignalBlocker(self.upscaler), QSignalBlocker(self.scale), QSignalBlocker(self.denoise), \
                QSignalBlocker(self.steps):
            if self.upscaler.findData(settings.upscaler) < 0:  # e.g. a name from imported settings
                self.upscaler.addItem(settings.upscaler, settings.upscaler)
            self.upscaler.setCurrentIndex(self.upscaler.findData(settings.upscaler))
            self.scale.setValue(settings.scale)
            self.denoise.setValue(settings.denoise)
            self.steps.setValue(settings.steps)

    def _commit(self, *_: object) -> None:
        """Write the widgets into the job's upscale (its tile size is kept)."""
        job = self._model.job
        upscale: Upscale | None = None
        if self.isChecked():
            name = self.upscaler.currentData()
            upscale = dataclasses.replace(job.upscale or DEFAULT_HIRES, upscaler=name, mode=upscale_mode(name),
                                          scale=self.scale.value(), denoise=self.denoise.value(),
                                          steps=self.steps.value())
        if upscale != job.upscale and not self._model.set(upscale=upscale):
            self._show(self._model.job.upscale)  # rejected: show what the job kept
