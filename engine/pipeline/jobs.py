"""The job loop: batch_count passes of batch_size images through encode, sample, decode and paste-back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.decoding.preview import LatentPreview
from engine.models import Family, LoadedModel
from engine.pipeline.control import active_controls, check_unit
from engine.pipeline.decode import decode_batch
from engine.pipeline.errors import GenerationError
from engine.pipeline.generate import sample_latents
from engine.pipeline.img2img import encode_init, fit_image
from engine.pipeline.inpaint import (
    CropRegion,
    blurred_mask,
    composite,
    crop_region,
    latent_mask,
    paste_back,
    resize,
    resize_mask,
)
from engine.pipeline.inputs import ImageInputs
from engine.pipeline.progress import GeneratedImage, Progress
from engine.pipeline.seeds import image_seeds, variation_seeds
from engine.pipeline.text import encode_job_text
from engine.sampling import CancelToken, StepInfo
from engine.settings import Job

ProgressFn = Callable[[Progress], None]
# Called with the finished images of each pass (and the pass index); returns them with any
# post-processing done (the detail passes).
FinishFn = Callable[[list[GeneratedImage], int], list[GeneratedImage]]
# Called, before `finish`, with each pass's decoded images, their latents (B, C, h, w) and the pass
# index; returns the images made larger (the hires pass, which may start from the latents).
HiresFn = Callable[[list[GeneratedImage], torch.Tensor, int], list[GeneratedImage]]


@dataclass(frozen=True)
class JobPixels:
    """A job's pixel inputs at the output size: init image, blurred mask, "only masked" crop, control maps."""

    init: np.ndarray | None = None  # (H, W, 3) uint8
    mask: np.ndarray | None = None  # (H, W) float32 in [0, 1], blurred
    region: CropRegion | None = None
    control_maps: tuple[np.ndarray, ...] = ()

    def work_init(self, width: int, height: int) -> np.ndarray | None:
        """The image the sampler starts from: the init image, or its masked crop at the output size."""
        if self.init is None or self.region is None:
            return self.init
        return resize(self.region.crop(self.init), width, height)

    def work_mask(self, width: int, height: int) -> np.ndarray | None:
        """The mask over the work image."""
        if self.mask is None or self.region is None:
            return self.mask
        return resize_mask(self.region.crop(self.mask), width, height)

    def finish(self, image: np.ndarray) -> np.ndarray:
        """A decoded image made final: pasted back into the crop, or composited over the init by the mask."""
        if self.init is None or self.mask is None:
            return image
        if self.region is not None:
            return paste_back(self.init, image, self.region, self.mask)
        return composite(self.init, image, self.mask)


def read_pixels(job: Job, inputs: ImageInputs, base_dir: Path | None = None) -> JobPixels:
    """Read and fit every image the job refers to (InputImageError names any that cannot be read)."""
    for unit in job.controls:
        check_unit(unit)
    maps = tuple(inputs.image(unit.image, base_dir) for unit in job.controls)
    if job.init_image is None:
        return JobPixels(control_maps=maps)
    init = fit_image(inputs.image(job.init_image, base_dir), job.width, job.height)
    if job.inpaint is None:
        return JobPixels(init=init, control_maps=maps)
    mask = blurred_mask(inputs.mask(job.inpaint.mask, base_dir), job.width, job.height, job.inpaint.blur)
    region = crop_region(mask, job.inpaint.padding, job.width, job.height) if job.inpaint.only_masked else None
    return JobPixels(init, mask, region, maps)


def image_job(job: Job, index: int) -> Job:
    """The settings that re-render image `index` of the job alone: its own seeds, batch of one."""
    var = None if job.variation_seed is None else job.variation_seed + index
    return job.replace(seed=job.seed + index, variation_seed=var, batch_size=1, batch_count=1)


def job_phases(job: Job) -> int:
    """How many phases each pass of a job runs: the generation, the hires pass (if any), each detail pass."""
    return 1 + (job.upscale is not None) + len(job.detail)


def detail_phase(job: Job, index: int) -> int:
    """The phase in which the job's detail pass `index` runs (after the hires pass)."""
    return 1 + (job.upscale is not None) + index


def _vae_factor(model: LoadedModel) -> int:
    """How many pixels one latent pixel covers along each side."""
    return 2 ** (len(model.vae.config.block_out_channels) - 1)


def size_multiple(model: LoadedModel) -> int:
    """What an image's width and height must be multiples of for this model: the VAE's downsampling,
    times the patch size for SD3 (latent_shape's rule)."""
    patch = int(getattr(model.denoiser.config, "patch_size", 1) or 1) if model.family is Family.SD3 else 1
    return _vae_factor(model) * patch


def latent_shape(model: LoadedModel, width: int, height: int) -> tuple[int, int, int]:
    """(C, h, w) of the latents for an image, checked against what the denoiser takes."""
    f = _vae_factor(model)
    channels = int(model.vae.config.latent_channels)
    in_ch = int(model.denoiser.config.in_channels)
    if in_ch != channels:
        raise GenerationError(f"this model's denoiser takes {in_ch} input channels (an inpainting or "
                              "instruct-pix2pix model?), which the pipeline does not support yet")
    if width % f or height % f:
        raise GenerationError(f"width and height must be multiples of {f} for this model, got {width}x{height}")
    h, w = height // f, width // f
    patch = int(getattr(model.denoiser.config, "patch_size", 1) or 1)
    if model.family is Family.SD3 and (h % patch or w % patch):
        raise GenerationError(f"SD3 needs width and height that are multiples of {f * patch}, got {width}x{height}")
    return channels, h, w


@dataclass(frozen=True)
class JobRun:
    """Everything one job's passes share."""

    model: LoadedModel
    job: Job
    pixels: JobPixels
    device: torch.device
    dtype: torch.dtype
    controlnets: tuple[torch.nn.Module, ...] = ()
    preview: LatentPreview | None = None


def _step_callback(run: JobRun, index: int, progress: ProgressFn | None,
                   cancel: CancelToken | None) -> Callable[[StepInfo], None]:
    def on_step(info: StepInfo) -> None:
        if cancel is not None:
            cancel.raise_if_cancelled()
        if progress is not None:
            preview = run.preview(info.denoised[:1]) if run.preview is not None else None
            progress(Progress(info.i + 1, info.total, index, run.job.batch_count, preview,
                              phases=job_phases(run.job)))
    return on_step


@torch.no_grad()
def run_job(run: JobRun, *, progress: ProgressFn | None = None, cancel: CancelToken | None = None,
            finish: FinishFn | None = None, hires: HiresFn | None = None,
            init_latents: torch.Tensor | None = None) -> list[GeneratedImage]:
    """All images of the job in order; image k has seed + k and settings that reproduce it alone.
    `hires` then `finish` post-process each pass's images as soon as they are decoded. `init_latents`
    (1, C, h, w) replace the encoded init image (the latent hires pass starts from them)."""
    job, model = run.job, run.model
    shape = latent_shape(model, job.width, job.height)
    text = encode_job_text(model, job.prompt, job.negative_prompt, clip_skip=job.clip_skip, width=job.width,
                           height=job.height, device=run.device, guided=job.autoguidance > 0)
    controls = active_controls(job.controls, run.controlnets, run.pixels.control_maps, latent_hw=shape[1:],
                               output=(job.width, job.height), device=run.device, dtype=next(model.denoiser.parameters()).dtype,
                               region=run.pixels.region)
    work_init = run.pixels.work_init(job.width, job.height)
    init = init_latents  # (1, C, h, w)
    if init is None and work_init is not None:
        init = encode_init(model.vae, work_init, 1).to(run.device)
    if init is not None and tuple(init.shape[1:]) != shape:
        raise ValueError(f"init latents {tuple(init.shape)} do not fit the latent shape {shape}")
    work_mask = run.pixels.work_mask(job.width, job.height)
    mask = None if work_mask is None else latent_mask(work_mask, shape[1:], run.device)  # (1, 1, h, w)
    results: list[GeneratedImage] = []
    for p in range(job.batch_count):
        first, n = p * job.batch_size, job.batch_size
        latents = sample_latents(
            model, job, text, image_seeds(job, first, n), latent_shape=shape, device=run.device,
            var_seeds=variation_seeds(job, first, n), controls=controls,
            init=None if init is None else init.expand(n, -1, -1, -1), mask=mask, cancel=cancel,
            callback=_step_callback(run, p, progress, cancel))
        done = [GeneratedImage(run.pixels.finish(image), image_job(job, first + k))
                for k, image in enumerate(decode_batch(model.vae, latents))]
        if hires is not None:
            done = hires(done, latents, p)
        results.extend(done if finish is None else finish(done, p))
    return results
