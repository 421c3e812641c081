"""The typed, frozen description of one generation job: what the GUI edits, the CLI runs,
the metadata records and the exporter writes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from engine.sampling.names import SAMPLER_DISPLAY_NAMES, SCHEDULE_DISPLAY_NAMES
from engine.settings.codec import SettingsError, bounded, check_ranges, from_dict, to_dict

JOB_VERSION = 1
MAX_SEED = 2**63 - 1
MAX_SIDE = 8192
SIZE_MULTIPLE = 8
DETAIL_SIZES = (64, 4096)  # the working sizes a detail pass allows


@dataclass(frozen=True)
class ModelRef:
    """Which checkpoint generates: a display name and, where known, the file or folder."""

    name: str = ""
    path: str | None = None
    vae: str | None = None

    def __post_init__(self) -> None:
        if not self.name and not self.path:
            object.__setattr__(self, "name", "builtin")


@dataclass(frozen=True)
class LoraRef:
    """A LoRA file applied with a strength."""

    path: str
    weight: float = bounded(1.0, ge=-10.0, le=10.0)

    def __post_init__(self) -> None:
        if not self.path:
            raise SettingsError("path", "must not be empty")
        check_ranges(self)


@dataclass(frozen=True)
class ControlUnit:
    """One ControlNet unit: its type, the image (file path or canvas layer) that feeds it, and
    its weight over a start/end fraction of the steps."""

    type: str
    image: str
    model: str | None = None
    preprocessor: str | None = None
    weight: float = bounded(1.0, ge=0.0, le=2.0)
    start: float = bounded(0.0, ge=0.0, le=1.0)
    end: float = bounded(1.0, ge=0.0, le=1.0)

    def __post_init__(self) -> None:
        if not self.type:
            raise SettingsError("type", "must not be empty")
        check_ranges(self)
        if self.start >= self.end:
            raise SettingsError("end", f"must be greater than start ({self.start}), got {self.end}")


@dataclass(frozen=True)
class Inpaint:
    """Inpainting: the mask image (white = repaint), its blur, and the "only masked" crop mode."""

    mask: str
    blur: int = bounded(4, ge=0, le=256)
    only_masked: bool = False
    padding: int = bounded(32, ge=0, le=1024)

    def __post_init__(self) -> None:
        if not self.mask:
            raise SettingsError("mask", "must not be empty")
        check_ranges(self)


@dataclass(frozen=True)
class Upscale:
    """Upscaling after generation; with denoise > 0 it is a hires fix (img2img at the new size)."""

    upscaler: str = "lanczos"
    scale: float = bounded(2.0, ge=1.0, le=8.0)
    mode: Literal["pixel", "latent"] = "pixel"
    # px per tile side: of the img2img pass when denoise > 0 (None: the model's native size once the
    # target exceeds twice its area), else of a model upscaler's run (None: from free memory)
    tile_size: int | None = None
    denoise: float = bounded(0.0, ge=0.0, le=1.0)
    steps: int = bounded(0, ge=0, le=1000, doc="0 = the job's own step count")

    def __post_init__(self) -> None:
        if not self.upscaler:
            raise SettingsError("upscaler", "must not be empty")
        check_ranges(self)
        if self.tile_size is not None and not 64 <= self.tile_size <= 4096:
            raise SettingsError("tile_size", f"must be between 64 and 4096, got {self.tile_size}")


@dataclass(frozen=True)
class DetailPass:
    """A detail pass (ADetailer-style): inpaint each detection of a kind at a working size.

    `detector` is a name in engine.detect's DETECTORS or a YOLOv8 .onnx file; `dilation` grows the
    detection's mask by that many pixels and `mask_blur` feathers it; `working_size` is the longer
    side the padded crop is repainted at. With `align_faces`, a face is instead repainted upright on a
    square working-size crop aligned by its five landmarks and pasted back through the crop's soft
    edge (engine.pipeline.detail_align); `dilation`, `mask_blur` and `padding` then apply only to
    faces whose landmarks are not found. A1111's text has no such field: it is kept in Atelier's
    own settings chunk."""

    detector: str = "mediapipe-face"  # engine.detect.registry.DEFAULT_DETECTOR (a test keeps them equal)
    prompt: str = ""
    negative_prompt: str = ""
    denoise: float = bounded(0.4, ge=0.0, le=1.0)
    min_score: float = bounded(0.3, ge=0.0, le=1.0)
    padding: int = bounded(32, ge=0, le=1024)
    dilation: int = bounded(4, ge=0, le=256)
    mask_blur: int = bounded(4, ge=0, le=256)
    working_size: int = bounded(512, ge=DETAIL_SIZES[0], le=DETAIL_SIZES[1])
    # Defaults to off, so settings written before the field existed load as they ran.
    align_faces: bool = False

    def __post_init__(self) -> None:
        if not self.detector:
            raise SettingsError("detector", "must not be empty")
        check_ranges(self)


def image_detail_size(width: int, height: int) -> int:
    """ADetailer's default working size for an image: its longer side (brought into DETAIL_SIZES, since
    a pass repaints a crop of the image and an image outside them still deserves a default)."""
    return min(max(width, height, DETAIL_SIZES[0]), DETAIL_SIZES[1])


@dataclass(frozen=True)
class Job:
    """Everything one generation needs; immutable, so it can cross threads and be recorded."""

    model: ModelRef = ModelRef()
    prompt: str = ""
    negative_prompt: str = ""
    seed: int = bounded(0, ge=0, le=MAX_SEED)
    variation_seed: int | None = None
    variation_strength: float = bounded(0.0, ge=0.0, le=1.0)
    steps: int = bounded(20, ge=1, le=1000)
    sampler: str = "dpmpp_2m"
    schedule: str = "karras"
    cfg_scale: float = bounded(7.0, ge=0.0, le=100.0)
    guidance_rescale: float = bounded(0.0, ge=0.0, le=1.0)
    # autoguidance weight w (Karras et al. 2024): cond + w (cond - guide's cond), with the guide model a
    # folder may carry in guide/ (the built-in one does); 0 = off, and models without a guide ignore it
    autoguidance: float = bounded(0.0, ge=0.0, le=10.0)
    clip_skip: int = bounded(1, ge=1, le=12)
    width: int = bounded(512, ge=SIZE_MULTIPLE, le=MAX_SIDE)
    height: int = bounded(512, ge=SIZE_MULTIPLE, le=MAX_SIDE)
    batch_size: int = bounded(1, ge=1, le=64)
    batch_count: int = bounded(1, ge=1, le=1000)
    denoise: float = bounded(1.0, ge=0.0, le=1.0, doc="img2img strength; used only with an init_image")
    init_image: str | None = None
    inpaint: Inpaint | None = None
    controls: tuple[ControlUnit, ...] = ()
    loras: tuple[LoraRef, ...] = ()
    upscale: Upscale | None = None
    detail: tuple[DetailPass, ...] = ()

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.sampler not in SAMPLER_DISPLAY_NAMES:
            raise SettingsError(
                "sampler", f"unknown sampler {self.sampler!r}; valid: {', '.join(SAMPLER_DISPLAY_NAMES)}"
            )
        if self.schedule not in SCHEDULE_DISPLAY_NAMES:
            raise SettingsError(
                "schedule",
                f"unknown schedule {self.schedule!r}; valid: {', '.join(SCHEDULE_DISPLAY_NAMES)}",
            )
        for name in ("width", "height"):
            if getattr(self, name) % SIZE_MULTIPLE:
                raise SettingsError(name, f"must be a multiple of {SIZE_MULTIPLE}, got {getattr(self, name)}")
        if self.variation_seed is not None and not 0 <= self.variation_seed <= MAX_SEED:
            raise SettingsError("variation_seed", f"must be between 0 and {MAX_SEED}")
        if self.inpaint is not None and self.init_image is None:
            raise SettingsError("inpaint", "inpainting needs an init_image")

    def replace(self, **changes: Any) -> Job:
        """A copy with some fields changed (validated like a new job)."""
        return dataclasses.replace(self, **changes)


def job_to_dict(job: Job) -> dict[str, Any]:
    """The job as JSON-ready data, tagged with the format version."""
    return {"version": JOB_VERSION, **to_dict(job)}


def job_from_dict(data: Any) -> Job:
    """Rebuild a job from `job_to_dict` output; raises SettingsError naming the bad field."""
    if not isinstance(data, dict):
        raise SettingsError("", "settings must be a JSON object")
    body = dict(data)
    version = body.pop("version", None)
    if version is None:
        raise SettingsError("version", "missing; this does not look like Atelier settings")
    if isinstance(version, bool) or not isinstance(version, int):
        raise SettingsError("version", f"expected an integer, got {version!r}")
    if version > JOB_VERSION:
        raise SettingsError(
            "version", f"written by a newer Atelier (format {version}, this one reads up to {JOB_VERSION})"
        )
    if version < 1:
        raise SettingsError("version", f"must be >= 1, got {version}")
    return from_dict(Job, body)
