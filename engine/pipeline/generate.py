"""Sampling one pass of a job: the model as a guided denoiser, the schedule, seeded noise, the sampler."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from engine.models import Family, LoadedModel
from engine.pipeline.denoisers import ActiveControl, TransformerCall, UNetCall
from engine.pipeline.seeds import start_noise
from engine.pipeline.text import JobConditioning
from engine.sampling import (
    CancelToken,
    CFGDenoiser,
    Denoiser,
    Guidance,
    StepInfo,
    denoiser_from_config,
    img2img_sigmas,
    make_sigmas,
)
from engine.sampling.api import sample_from
from engine.settings import Job


def model_denoiser(model: LoadedModel, controls: Sequence[ActiveControl] = ()) -> tuple[Denoiser, UNetCall | None]:
    """The base model as an unguided denoiser (eps/v/flow wrapper around the raw network call)."""
    if model.family is Family.SD3:
        if controls:
            raise ValueError("ControlNets for SD3 models are not supported")
        return denoiser_from_config(TransformerCall(model.denoiser), model.scheduler_config, "flow"), None
    call = UNetCall(model.denoiser, controls)
    return denoiser_from_config(call, model.scheduler_config, model.prediction_type), call


def job_sigmas(denoiser: Denoiser, job: Job, img2img: bool) -> Tensor:
    """The job's schedule for the model's noise levels; img2img keeps the tail that `denoise` selects."""
    sigmas = make_sigmas(denoiser.levels, job.schedule, job.steps)  # type: ignore[attr-defined]
    return img2img_sigmas(sigmas, job.denoise) if img2img else sigmas


def sample_latents(model: LoadedModel, job: Job, conditioning: JobConditioning, seeds: Sequence[int], *,
                   latent_shape: Sequence[int], device: torch.device, var_seeds: Sequence[int] | None = None,
                   controls: Sequence[ActiveControl] = (), init: Tensor | None = None, mask: Tensor | None = None,
                   cancel: CancelToken | None = None,
                   callback: Callable[[StepInfo], None] | None = None) -> Tensor:
    """Latents (B, C, h, w) for the images with these seeds: guided denoiser, schedule, noise, sampler."""
    base, call = model_denoiser(model, controls)
    sigmas = job_sigmas(base, job, init is not None)
    if init is not None and len(sigmas) == 1:
        return init  # the denoise strength selects no step (as in sample_from): the image stays as it is
    if call is not None:
        call.set_timesteps(base.levels.timestep(sigmas[:-1].clamp_min(1e-8)))  # type: ignore[attr-defined]
    cond, uncond = conditioning.batched(len(seeds))
    guide = None
    if model.guide is not None and job.autoguidance > 0 and conditioning.guide is not None:
        guide = model_denoiser(model.guide)[0]  # without the ControlNets: they were trained on the model's own UNet
    guidance = Guidance(scale=job.cfg_scale, rescale=job.guidance_rescale, autoguidance=job.autoguidance)
    guided = CFGDenoiser(base, cond, uncond, guidance, sigmas, guide=guide,
                         guide_cond=conditioning.batched_guide(len(seeds)))
    source, noise = start_noise(seeds, latent_shape, var_seeds=var_seeds, var_strength=job.variation_strength,
                                device=device)
    return sample_from(guided, sigmas, sampler=job.sampler, first_noise=noise, source=source, init=init, mask=mask,
                       cancel=cancel, callback=callback)
