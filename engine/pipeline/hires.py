"""The hires fix (A1111's "Hires. fix"): each generated image is upscaled, in pixels by an upscaler or
in latent space by interpolation, then repainted by img2img at the new size with the image's own seed
at the hires denoise strength. It runs before the detail passes, as in A1111 with ADetailer.

The img2img pass is the job loop's own (`run_job`) on the model already loaded, LoRAs and ControlNets
included (A1111 keeps ControlNets in the hires pass; their maps are refitted to the new size). A target
larger than the model takes in one pass is repainted tile by tile (engine.pipeline.tiled_img2img).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from engine.models import FAMILY_SPECS, Family
from engine.pipeline.errors import GenerationError
from engine.pipeline.img2img import fit_image
from engine.pipeline.inpaint import resize
from engine.pipeline.jobs import JobPixels, JobRun, ProgressFn, job_phases, run_job, size_multiple
from engine.pipeline.progress import GeneratedImage, Progress
from engine.pipeline.tiled_img2img import tile_plan, tiled_img2img, tiled_runs
from engine.sampling import CancelToken
from engine.settings import Job, Upscale
from engine.settings.job import SIZE_MULTIPLE
from engine.upscale import upscale_image

# A1111's latent upscalers: name (lower case) -> (torch interpolation mode, antialias).
LATENT_UPSCALERS: Mapping[str, tuple[str, bool]] = MappingProxyType({
    "latent": ("bilinear", False),
    "latent (antialiased)": ("bilinear", True),
    "latent (bicubic)": ("bicubic", False),
    "latent (bicubic antialiased)": ("bicubic", True),
    "latent (nearest)": ("nearest", False),
    "latent (nearest-exact)": ("nearest-exact", False),
})
MAX_PASS_AREA = 2.0  # a target above this many native areas is repainted in tiles


def check_upscale(job: Job) -> None:
    """Refuse upscale settings the pipeline cannot run as asked (GenerationError says what to change),
    before any model loads."""
    up = job.upscale
    if up is None:
        return
    latent = up.upscaler.lower() in LATENT_UPSCALERS
    if up.mode == "latent":
        if not latent:
            raise GenerationError(f"latent mode needs a latent upscaler ({', '.join(LATENT_UPSCALERS)}), "
                                  f"got {up.upscaler!r}")
        if up.denoise <= 0.0:
            raise GenerationError("a latent upscale needs a hires denoise strength > 0: upscaled latents are no "
                                  "image until the img2img pass repaints them (use pixel mode to only upscale)")
    elif latent:
        raise GenerationError(f"{up.upscaler!r} upscales latents: set the upscale mode to 'latent'")
    if up.denoise > 0.0 and job.inpaint is not None:
        raise GenerationError("the hires fix repaints the whole image, not an inpaint mask: remove the upscale "
                              "(or its denoise) from an inpainting job")


def native_size(recommended: Mapping[str, Any], family: Family) -> tuple[int, int]:
    """(width, height) a model renders best in one pass: its card's recommended size, else its family's."""
    width, height = recommended.get("width"), recommended.get("height")
    if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
        return width, height
    side = FAMILY_SPECS[family].default_size
    return side, side


def hires_size(width: int, height: int, scale: float, multiple: int) -> tuple[int, int]:
    """(width, height) of the img2img pass: the scaled size rounded to the model's size multiple."""
    w, h = (max(round(side * scale / multiple), 1) * multiple for side in (width, height))
    return w, h


def tile_side(width: int, height: int, up: Upscale, native: tuple[int, int]) -> int | None:
    """The tile side for a (width, height) hires pass, or None when it runs in one pass: the explicit
    tile size if the target exceeds it, else the native side once the target exceeds MAX_PASS_AREA
    native areas."""
    if up.tile_size is not None:
        return up.tile_size if max(width, height) > up.tile_size else None
    area = native[0] * native[1]
    return math.isqrt(area) if width * height > MAX_PASS_AREA * area else None


def upscale_latents(latents: torch.Tensor, height: int, width: int, upscaler: str) -> torch.Tensor:
    """Latents (B, C, h, w) interpolated to (B, C, height, width) by a latent upscaler (A1111's modes)."""
    found = LATENT_UPSCALERS.get(upscaler.lower())
    if found is None:
        raise ValueError(f"unknown latent upscaler {upscaler!r}; choose one of: {', '.join(LATENT_UPSCALERS)}")
    mode, antialias = found
    corners = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    return F.interpolate(latents.float(), size=(height, width), mode=mode, antialias=antialias, **corners)


def hires_job(job: Job, width: int, height: int) -> Job:
    """The img2img job of the hires pass for one image's settings: its seed, prompts and ControlNets at
    the new size, the hires denoise and steps (0 = the job's); no further upscale or detail passes."""
    up = job.upscale
    if up is None:
        raise ValueError("hires_job needs a job with an upscale")
    return job.replace(width=width, height=height, denoise=up.denoise, steps=up.steps or job.steps, batch_size=1,
                       batch_count=1, init_image=None, inpaint=None, upscale=None, detail=())


class HiresRunner:
    """Upscales and repaints each pass's images (run_job's `hires`)."""

    def __init__(self, run: JobRun, native: tuple[int, int], *, progress: ProgressFn | None = None,
                 cancel: CancelToken | None = None, upscaler: str | Path | None = None) -> None:
        if run.job.upscale is None:
            raise ValueError("HiresRunner needs a job with an upscale")
        self.run, self.native, self.progress, self.cancel = run, native, progress, cancel
        self.upscaler = upscaler if upscaler is not None else run.job.upscale.upscaler  # a model file: its path
        self.multiple = math.lcm(size_multiple(run.model), SIZE_MULTIPLE)
        self.factor = 2 ** (len(run.model.vae.config.block_out_channels) - 1)

    def __call__(self, images: list[GeneratedImage], latents: torch.Tensor, batch: int) -> list[GeneratedImage]:
        """The images upscaled and (with denoise > 0) repainted; latents (B, C, h, w) are theirs."""
        return [dataclasses.replace(item, image=self._one(item, latents[k:k + 1], k, len(images), batch))
                for k, item in enumerate(images)]

    def _stage(self, k: int, count: int, batch: int, part: int, parts: int, what: str = "") -> Progress:
        label = f"hires {k + 1}/{count}" + (f" ({what})" if what else "")
        return Progress(0, 1, batch, self.run.job.batch_count, phase=1, phases=job_phases(self.run.job),
                        part=k * parts + part, parts=count * parts, label=label)

    def _one(self, item: GeneratedImage, latents: torch.Tensor, k: int, count: int, batch: int) -> np.ndarray:
        """Image `k` of the `count` a pass made, upscaled and repainted. Its share of the hires phase is
        one part for the pixel upscale and one per img2img run (one, or each tile and seam band)."""
        up = item.job.upscale
        assert up is not None
        if self.cancel is not None:
            self.cancel.raise_if_cancelled()
        height, width = item.image.shape[:2]
        w, h = hires_size(width, height, up.scale, self.multiple)
        tile = tile_side(w, h, up, self.native) if up.denoise > 0.0 else None
        plan = None if tile is None else tile_plan(tile, self.multiple, up.denoise)
        runs = 0 if up.denoise <= 0.0 else 1 if plan is None else tiled_runs(w, h, plan, self.multiple)
        first = int(up.mode == "pixel")  # the part the img2img runs start at
        parts = first + runs

        def stage(r: int, what: str = "") -> Progress:
            return self._stage(k, count, batch, first + r, parts, what)
        init_latents = None
        if up.mode == "latent":
            init_latents = upscale_latents(latents, h // self.factor, w // self.factor, up.upscaler)
            image = resize(item.image, w, h)  # what a tiled pass's seam bands and previews start from
        else:
            # tile_size is the img2img pass's tile when there is a pass, else the upscaler's (memory) tile
            image = upscale_image(item.image, self.upscaler, up.scale, tile=None if runs else up.tile_size,
                                  device=str(self.run.device),
                                  on_tile=self._on_tile(stage(-1, f"upscale {Path(up.upscaler).name}")),
                                  cancel=self.cancel)
            if runs == 0:
                return image  # a plain upscale: no pass, so not even the VAE's round trip changes it
            image = fit_image(image, w, h)
        job = hires_job(item.job, w, h)
        if plan is not None:
            return tiled_img2img(self.run, job, image, plan, self.multiple, progress=self.progress,
                                 cancel=self.cancel, init_latents=init_latents, factor=self.factor,
                                 stage=lambda r, _, what: stage(r, what))
        pixels = JobPixels(init=None if init_latents is not None else image, control_maps=self.run.pixels.control_maps)
        sub = dataclasses.replace(self.run, job=job, pixels=pixels)
        relay = None if self.progress is None else _relay(self.progress, stage(0))
        return run_job(sub, progress=relay, cancel=self.cancel, init_latents=init_latents)[0].image

    def _on_tile(self, stage: Progress) -> Callable[[int, int], None] | None:
        """The upscaler's tile callback, reported as steps of its stage (no preview)."""
        if self.progress is None:
            return None
        progress = self.progress
        return lambda done, total: progress(dataclasses.replace(stage, step=done, total=total))


def _relay(progress: ProgressFn, stage: Progress) -> ProgressFn:
    """Report the pass's sampling steps as steps of the hires stage, with its preview."""
    def report(p: Progress) -> None:
        progress(dataclasses.replace(stage, step=p.step, total=p.total, preview=p.preview))
    return report
