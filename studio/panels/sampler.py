"""The Sampler dock: sampler, schedule, steps, CFG, size, denoise strength, the hires fix and the detail pass."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QSpinBox, QWidget

from engine.sampling.names import SAMPLER_DISPLAY_NAMES, SCHEDULE_DISPLAY_NAMES
from engine.settings.job import MAX_SIDE, SIZE_MULTIPLE
from studio.models.job_model import JobModel
from studio.panels.binding import bind_choice, bind_float, bind_int
from studio.panels.detail import DetailGroup
from studio.panels.hires import HiresGroup

SAMPLER_TIPS = {
    "euler": "First-order ODE solver; a fast, predictable baseline.",
    "euler_ancestral": "Euler with fresh noise each step; varied, never fully converges.",
    "heun": "Second-order ODE solver; two model calls per step.",
    "dpm_2": "DPM-Solver-2 (Karras et al.); two model calls per step.",
    "dpm_2_ancestral": "DPM2 with fresh noise each step.",
    "lms": "Linear multistep; reuses earlier model outputs.",
    "dpmpp_2s_ancestral": "DPM-Solver++(2S) with fresh noise each step.",
    "dpmpp_sde": "DPM-Solver++ SDE; stochastic, two calls per step.",
    "dpmpp_2m": "DPM-Solver++(2M); sharp results in 20-30 steps. A good default.",
    "dpmpp_2m_sde": "DPM-Solver++(2M) SDE; stochastic variant of 2M.",
    "dpmpp_3m_sde": "Third-order multistep SDE; wants more steps.",
    "ddim": "DDIM (Song et al.); eta 0 is deterministic.",
    "ddpm": "The original ancestral DDPM sampler; wants many steps.",
    "unipc": "UniPC predictor-corrector; good in few steps.",
    "lcm": "For latent-consistency models: 2-8 steps, low CFG.",
}


def _combo(names: dict[str, str], tips: dict[str, str] | None = None) -> QComboBox:
    combo = QComboBox()
    for ident, display in names.items():
        combo.addItem(display, ident)
        if tips and ident in tips:
            combo.setItemData(combo.count() - 1, tips[ident], 3)  # Qt.ToolTipRole
    return combo


class SamplerPanel(QWidget):
    """Sampling settings bound to the job model; each control explains itself in a tooltip."""

    def __init__(self, model: JobModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.sampler = _combo(SAMPLER_DISPLAY_NAMES, SAMPLER_TIPS)
        self.sampler.setToolTip("The solver that turns noise into an image.")
        self.schedule = _combo(SCHEDULE_DISPLAY_NAMES)
        self.schedule.setToolTip("How the noise levels are spaced across the steps.")
        self.steps = QSpinBox(minimum=1, maximum=1000, toolTip="Number of sampling steps.")
        self.cfg = QDoubleSpinBox(minimum=0.0, maximum=100.0, singleStep=0.5, decimals=1,
                                  toolTip="Classifier-free guidance: how strongly to follow the prompt.")
        self.autoguidance = QDoubleSpinBox(
            minimum=0.0, maximum=10.0, singleStep=0.25, decimals=2,
            toolTip="Autoguidance: push the image away from what the model's weaker guide model would draw,\n"
                    "which sharpens shapes (0 = off). Only models that carry a guide use it; the built-in one does.")
        self.width_box = QSpinBox(minimum=SIZE_MULTIPLE, maximum=MAX_SIDE, singleStep=64,
                                  toolTip=f"Image width in pixels (a multiple of {SIZE_MULTIPLE}).")
        self.height_box = QSpinBox(minimum=SIZE_MULTIPLE, maximum=MAX_SIDE, singleStep=64,
                                   toolTip=f"Image height in pixels (a multiple of {SIZE_MULTIPLE}).")
        self.denoise = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.05, decimals=2,
                                      toolTip="img2img: how much of the image to repaint (1 = all of it).")
        bind_choice(model, "sampler", self.sampler)
        bind_choice(model, "schedule", self.schedule)
        bind_int(model, "steps", self.steps)
        bind_float(model, "cfg_scale", self.cfg)
        bind_float(model, "autoguidance", self.autoguidance)
        bind_int(model, "width", self.width_box)
        bind_int(model, "height", self.height_box)
        bind_float(model, "denoise", self.denoise)
        size = QHBoxLayout()
        size.addWidget(self.width_box)
        size.addWidget(self.height_box)
        form = QFormLayout(self)
        form.addRow("Sampler", self.sampler)
        form.addRow("Schedule", self.schedule)
        form.addRow("Steps", self.steps)
        form.addRow("CFG scale", self.cfg)
        form.addRow("Autoguidance", self.autoguidance)
        form.addRow("Size", size)
        form.addRow("Denoise", self.denoise)
        self.hires = HiresGroup(model)
        form.addRow(self.hires)
        self.detail = DetailGroup(model)
        form.addRow(self.detail)
