"""Tiled img2img for images larger than a model takes in one pass (Ultimate SD Upscale's scheme,
github.com/Coyote-A/ultimate-upscale-for-automatic1111): overlapping tiles of the model's native size
are each repainted by img2img with their own seed and blended with linear ramps over the overlaps; then
a seam-fix pass repaints a band centred on every seam at a lower strength and feathers it in ("band"
seam fix), so what differs between neighbouring tiles fades over half a tile instead of an overlap.

Every tile and band runs through the job loop (`run_job`) on the model already loaded: a tile is the
job's plain img2img of a crop, with the ControlNet maps (fitted to the whole image) cropped with it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from engine.pipeline.control import fit_control_map
from engine.pipeline.inpaint import CropRegion, resize
from engine.pipeline.jobs import JobPixels, JobRun, ProgressFn, run_job
from engine.pipeline.progress import Progress
from engine.sampling import CancelToken
from engine.settings import Job
from engine.settings.job import MAX_SEED

SEAM_DENOISE = 0.35  # Ultimate SD Upscale's default seam-fix strength; a lower job strength wins

# Called before each tile or band with its index, the run count and its name ("tile 2/4", "seam 1/4");
# returns how that run reports.
StageFn = Callable[[int, int, str], Progress]


@dataclass(frozen=True)
class TilePlan:
    """How a large image is cut: tile side, overlap between neighbours and seam band width, in pixels
    (multiples of the model's size multiple), and the seam-fix strength."""

    tile: int
    overlap: int
    band: int
    seam_denoise: float

    def __post_init__(self) -> None:
        if not 0 < self.overlap <= self.tile // 2:
            raise ValueError(f"a tile overlap must be in (0, tile / 2], got {self.overlap} for tile {self.tile}")
        if not 0 < self.band <= self.tile:
            raise ValueError(f"a seam band must be in (0, tile], got {self.band} for tile {self.tile}")


def tile_plan(tile: int, multiple: int, denoise: float) -> TilePlan:
    """The plan for tiles of side `tile` (rounded down to `multiple`): a quarter-tile overlap and a
    half-tile seam band (both rounded to `multiple`), seams fixed at min(denoise, SEAM_DENOISE)."""
    side = tile // multiple * multiple
    if side < 4 * multiple:
        raise ValueError(f"a tile of {tile} px is too small: it must hold at least 4 multiples of {multiple} px")
    overlap = max(round(side / 4 / multiple), 1) * multiple
    band = max(round(side / 2 / multiple), 1) * multiple
    return TilePlan(side, overlap, band, min(denoise, SEAM_DENOISE))


def tile_starts(length: int, tile: int, overlap: int, multiple: int) -> list[int]:
    """Where the tiles along one axis of `length` px start: as few as cover it with at least `overlap`
    px shared by neighbours, spread evenly, on multiples of `multiple`; one tile when it fits."""
    if length <= tile:
        return [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    last = length - tile
    starts = [round(last * i / (count - 1) / multiple) * multiple for i in range(count)]
    starts[-1] = last  # length and tile are multiples, so the last tile ends exactly at the border
    return starts


def tile_regions(width: int, height: int, plan: TilePlan, multiple: int) -> list[CropRegion]:
    """The tiles covering a (width, height) image, row by row."""
    xs = tile_starts(width, plan.tile, plan.overlap, multiple)
    ys = tile_starts(height, plan.tile, plan.overlap, multiple)
    tw, th = min(plan.tile, width), min(plan.tile, height)
    return [CropRegion(x, y, x + tw, y + th) for y in ys for x in xs]


def _ramp(length: int, lo: int, hi: int, starts: list[int], size: int) -> np.ndarray:
    """(length,) weights of the span [lo, hi) over the full axis: 1 inside, rising linearly over the
    overlap with the span before it and falling over the overlap with the one after, 0 outside.
    Neighbours' ramps over one overlap sum to 1 (and the product keeps it continuous where a short
    axis makes the two ramps of one span overlap)."""
    x = np.arange(length, dtype=np.float32) + 0.5
    w = ((x > lo) & (x < hi)).astype(np.float32)
    index = starts.index(lo)
    if index > 0:
        prev_end = starts[index - 1] + size
        w *= np.clip((x - lo) / (prev_end - lo), 0.0, 1.0)
    if index + 1 < len(starts):
        nxt = starts[index + 1]
        w *= np.clip((hi - x) / (hi - nxt), 0.0, 1.0)
    return w


def blend_weights(region: CropRegion, width: int, height: int, plan: TilePlan, multiple: int) -> np.ndarray:
    """(height, width) float32 weight of one tile in the blend: the product of its two axis ramps."""
    xs = tile_starts(width, plan.tile, plan.overlap, multiple)
    ys = tile_starts(height, plan.tile, plan.overlap, multiple)
    wx = _ramp(width, region.left, region.right, xs, region.width)
    wy = _ramp(height, region.top, region.bottom, ys, region.height)
    return wy[:, None] * wx[None, :]


def seam_bands(width: int, height: int, plan: TilePlan, multiple: int,
               vertical: bool) -> list[tuple[CropRegion, np.ndarray]]:
    """The seam-fix runs of one direction: for each seam (the centre of an overlap) and each row (or
    column) of tiles along it, a tile-sized crop centred on the seam and its (height, width) blend mask:
    a triangle across the seam, 1 on it and 0 at band / 2 away, times the tiles' ramp along the seam."""
    across, along = (width, height) if vertical else (height, width)
    starts = tile_starts(across, plan.tile, plan.overlap, multiple)
    segments = tile_starts(along, plan.tile, plan.overlap, multiple)
    size, seg_size = min(plan.tile, across), min(plan.tile, along)
    out = []
    for prev, start in zip(starts, starts[1:]):
        seam = (start + prev + size) / 2
        lo = min(max(round((seam - size / 2) / multiple) * multiple, 0), across - size)
        cross = np.clip(1.0 - np.abs(np.arange(across) + 0.5 - seam) / (plan.band / 2), 0.0, 1.0)
        cross[:lo] = cross[lo + size:] = 0.0  # the crop holds the whole triangle unless the band is clipped
        for seg in segments:
            ramp = _ramp(along, seg, seg + seg_size, segments, seg_size)
            if vertical:
                out.append((CropRegion(lo, seg, lo + size, seg + seg_size), ramp[:, None] * cross[None, :]))
            else:
                out.append((CropRegion(seg, lo, seg + seg_size, lo + size), cross[:, None] * ramp[None, :]))
    return out


def tiled_runs(width: int, height: int, plan: TilePlan, multiple: int) -> int:
    """How many img2img runs a tiled pass of a (width, height) image makes: tiles plus seam bands."""
    return len(tile_regions(width, height, plan, multiple)) + sum(
        len(seam_bands(width, height, plan, multiple, vertical)) for vertical in (True, False))


def tile_seed(seed: int, index: int) -> int:
    """The seed of tile (or band) `index` of an image with `seed`, wrapped to the seed range."""
    return (seed + index) % (MAX_SEED + 1)


def _run_crop(run: JobRun, job: Job, image: np.ndarray, region: CropRegion, stage: Progress,
              progress: ProgressFn | None, cancel: CancelToken | None,
              init_latents: torch.Tensor | None = None) -> np.ndarray:
    """img2img of one crop of `image` at the crop's size, the run's control maps (fitted to the image)
    cropped with it; (crop h, crop w, 3) uint8."""
    pixels = JobPixels(init=None if init_latents is not None else region.crop(image),
                       control_maps=tuple(region.crop(m) for m in run.pixels.control_maps))
    sub = dataclasses.replace(run, job=job.replace(width=region.width, height=region.height), pixels=pixels)
    relay = None if progress is None else _relay(progress, stage, image, region)
    return run_job(sub, progress=relay, cancel=cancel, init_latents=init_latents)[0].image


def tiled_img2img(run: JobRun, job: Job, image: np.ndarray, plan: TilePlan, multiple: int, *,
                  stage: StageFn, progress: ProgressFn | None = None, cancel: CancelToken | None = None,
                  init_latents: torch.Tensor | None = None, factor: int = 8) -> np.ndarray:
    """`job`'s img2img (at its seed and denoise) of an (H, W, 3) uint8 image, tile by tile, then the
    seam fix. With `init_latents` (1, C, H/factor, W/factor) the tiles start from their crop of those
    instead of the encoded image (the latent hires pass). -> (H, W, 3) uint8."""
    height, width = image.shape[:2]
    run = dataclasses.replace(run, pixels=JobPixels(
        control_maps=tuple(fit_control_map(m, (width, height)) for m in run.pixels.control_maps)))
    if width % multiple or height % multiple:
        raise ValueError(f"a tiled image must have sides that are multiples of {multiple}, got {width}x{height}")
    tiles = tile_regions(width, height, plan, multiple)
    bands = [*seam_bands(width, height, plan, multiple, True), *seam_bands(width, height, plan, multiple, False)]
    runs = len(tiles) + len(bands)
    total = np.zeros((height, width, 3), np.float32)
    weight = np.zeros((height, width, 1), np.float32)
    for i, region in enumerate(tiles):
        latents = None if init_latents is None else init_latents[
            :, :, region.top // factor:region.bottom // factor, region.left // factor:region.right // factor]
        tile = _run_crop(run, job.replace(seed=tile_seed(job.seed, i)), image, region,
                         stage(i, runs, f"tile {i + 1}/{len(tiles)}"), progress, cancel, latents)
        w = blend_weights(region, width, height, plan, multiple)[region.top:region.bottom, region.left:region.right]
        total[region.top:region.bottom, region.left:region.right] += tile.astype(np.float32) * w[..., None]
        weight[region.top:region.bottom, region.left:region.right] += w[..., None]
    out = np.clip(np.round(total / weight), 0, 255).astype(np.uint8)
    seam_job = job.replace(denoise=plan.seam_denoise)
    vertical = len(seam_bands(width, height, plan, multiple, True))
    # One direction at a time: the bands of a direction never overlap across seams, so their masks
    # sum to at most 1 and blend in one step; the other direction then repaints the crossings.
    for first, last in ((0, vertical), (vertical, len(bands))):
        out = _fix_seams(run, seam_job, out, bands[first:last], len(tiles) + first, len(tiles), stage, runs,
                         progress, cancel)
    return out


def _fix_seams(run: JobRun, job: Job, image: np.ndarray, bands: list[tuple[CropRegion, np.ndarray]], offset: int,
               tiles: int, stage: StageFn, runs: int, progress: ProgressFn | None,
               cancel: CancelToken | None) -> np.ndarray:
    """The bands of one direction repainted from `image` and feathered into it by their masks."""
    if not bands:
        return image
    total = np.zeros(image.shape, np.float32)
    cover = np.zeros(image.shape[:2] + (1,), np.float32)
    for k, (region, mask) in enumerate(bands):
        r = offset + k
        band = _run_crop(run, job.replace(seed=tile_seed(job.seed, r)), image, region,
                         stage(r, runs, f"seam {r - tiles + 1}/{runs - tiles}"), progress, cancel)
        m = mask[region.top:region.bottom, region.left:region.right, None]
        total[region.top:region.bottom, region.left:region.right] += band.astype(np.float32) * m
        cover[region.top:region.bottom, region.left:region.right] += m
    # Bands overlap only where tiles are squeezed on a short axis: normalise where they sum over 1.
    scale = np.maximum(cover, 1.0)
    out = image.astype(np.float32) * (1.0 - cover / scale) + total / scale
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _relay(progress: ProgressFn, stage: Progress, image: np.ndarray, region: CropRegion) -> ProgressFn:
    """Report a crop's sampling steps as steps of its stage, the preview pasted into the image."""
    def report(p: Progress) -> None:
        preview = None
        if p.preview is not None:
            preview = image.copy()
            preview[region.top:region.bottom, region.left:region.right] = resize(p.preview, region.width,
                                                                                region.height)
        progress(dataclasses.replace(stage, step=p.step, total=p.total, preview=preview))
    return report
