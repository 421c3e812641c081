"""diffusers' own pipelines on our loaded components: the reference the pipeline tests and
benchmarks/pipeline.py compare against."""

from __future__ import annotations

from diffusers import (
    DiffusionPipeline,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    StableDiffusion3Pipeline,
    StableDiffusionImg2ImgPipeline,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
)

from engine.models import LoadedModel
from engine.models.families import Family


def diffusers_pipeline(model: LoadedModel, img2img: bool = False) -> DiffusionPipeline:
    """diffusers' pipeline for the family, on our loaded components, with the matching Euler scheduler."""
    config = dict(model.scheduler_config)
    if model.family is Family.SD3:
        return StableDiffusion3Pipeline(**model.components(), text_encoder_3=None, tokenizer_3=None,
                                        scheduler=FlowMatchEulerDiscreteScheduler.from_config(config))
    # "linspace" spacing makes init_noise_sigma = sigmas[0], so latents=noise starts at noise * sigma_max.
    scheduler = EulerDiscreteScheduler.from_config(config, timestep_spacing="linspace")
    if model.family is Family.SDXL:
        return StableDiffusionXLPipeline(**model.components(), scheduler=scheduler)
    cls = StableDiffusionImg2ImgPipeline if img2img else StableDiffusionPipeline
    return cls(**model.components(), scheduler=scheduler, safety_checker=None, feature_extractor=None,
               requires_safety_checker=False)
