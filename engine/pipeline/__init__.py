"""The generation pipeline: jobs (txt2img, img2img, inpaint, ControlNet, LoRA) from settings to images.

Exports load on first use, so the light modules (errors, inputs, progress) can be imported by the
command line without loading torch and diffusers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.lazy import lazy_getattr

_EXPORTS: dict[str, str] = {
    "Engine": "engine.pipeline.engine",
    "GenerationError": "engine.pipeline.errors",
    "NoModelError": "engine.pipeline.errors",
    "ImageInputs": "engine.pipeline.inputs",
    "InputImageError": "engine.pipeline.inputs",
    "GeneratedImage": "engine.pipeline.progress",
    "Progress": "engine.pipeline.progress",
    "builtin_model": "engine.pipeline.resolve",
    "CancelToken": "engine.sampling",
    "Cancelled": "engine.sampling",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from engine.pipeline.engine import Engine
    from engine.pipeline.errors import GenerationError, NoModelError
    from engine.pipeline.inputs import ImageInputs, InputImageError
    from engine.pipeline.progress import GeneratedImage, Progress
    from engine.pipeline.resolve import builtin_model
    from engine.sampling import Cancelled, CancelToken


__getattr__ = lazy_getattr(__name__, _EXPORTS)
