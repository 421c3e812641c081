"""Diffusion and flow samplers on one denoiser contract (k-diffusion's), with schedules, model
wrappers, guidance and the `sample` entry point.

Exports load on first use, so `engine.sampling.names` (used by settings and metadata) stays free
of torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "SAMPLERS": "registry",
    "STOCHASTIC_SAMPLERS": "registry",
    "EVALS_PER_STEP": "registry",
    "get_sampler": "registry",
    "get_schedule": "registry",
    "make_sigmas": "registry",
    "sampler_options": "registry",
    "SCHEDULES": "schedules",
    "resolution_shift": "schedules",
    "shift_time": "schedules",
    "StepInfo": "core",
    "Cancelled": "core",
    "CancelToken": "core",
    "Denoiser": "core",
    "GeneratorNoise": "core",
    "NoiseSource": "core",
    "SamplerFn": "core",
    "Space": "core",
    "NoiseLevels": "wrappers",
    "EpsDenoiser": "wrappers",
    "VDenoiser": "wrappers",
    "FlowDenoiser": "wrappers",
    "LCMBoundary": "wrappers",
    "make_betas": "wrappers",
    "denoiser_from_config": "wrappers",
    "CFGDenoiser": "guidance",
    "Guidance": "guidance",
    "sample": "api",
    "sample_from": "api",
    "img2img_sigmas": "api",
    "InpaintDenoiser": "api",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from engine.sampling.api import InpaintDenoiser, img2img_sigmas, sample, sample_from
    from engine.sampling.core import (
        Cancelled,
        CancelToken,
        Denoiser,
        GeneratorNoise,
        NoiseSource,
        SamplerFn,
        Space,
        StepInfo,
    )
    from engine.sampling.guidance import CFGDenoiser, Guidance
    from engine.sampling.registry import (
        EVALS_PER_STEP,
        SAMPLERS,
        STOCHASTIC_SAMPLERS,
        get_sampler,
        get_schedule,
        make_sigmas,
        sampler_options,
    )
    from engine.sampling.schedules import SCHEDULES, resolution_shift, shift_time
    from engine.sampling.wrappers import (
        EpsDenoiser,
        FlowDenoiser,
        LCMBoundary,
        NoiseLevels,
        VDenoiser,
        denoiser_from_config,
        make_betas,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engine.sampling' has no attribute {name!r}")
    return getattr(importlib.import_module(f"engine.sampling.{module}"), name)
