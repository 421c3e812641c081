"""Tiled inference for an image-to-image model with an integer scale: overlapping tiles, blended
with linear ramps that sum to one, written out row band by row band as uint8.

Layout. Along each axis a side of `size` px gets n = 1 + ceil((size - tile) / (tile - overlap))
tiles spread evenly, so every pair of neighbours overlaps by at least `overlap` input px. Each
neighbour pair hands over inside a window `overlap / 2` wide centred in their overlap, so at least
`overlap / 4` px of every tile's inner edge is ignored: with the default 32 px that is 8 px, more
than the built-in model's 7 px receptive-field radius, and the blended output equals the whole-image
output up to float rounding. The hand-over weights of a tile are g_i(x) - g_(i-1)(x), where g_i
falls linearly from 1 to 0 across window i: they telescope to exactly one, so no weight buffer is
kept, and the 2-D weight is the product of the two axes' weights.

Memory. Tiles run one at a time, a row of tiles after another. Only the output (uint8) spans the
whole image; the float32 accumulator spans one row of tiles (tile x scale rows of the output
width), and the rows above the next tile row's start are final and written out as uint8 before the
next row begins. `tiled_peak_bound` states the resulting bound.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from engine.sampling.core import Cancelled, CancelToken

DEFAULT_OVERLAP = 32  # input px; see the module docstring for why 32
MIN_TILE = 64
MAX_TILE = 4096
AUTO_TILE_RANGE = (128, 1024)  # input px; the tile picked from free memory stays within it
MEMORY_SHARE = 0.25  # of free memory that one tile's model run may take

TileModel = Callable[[torch.Tensor], torch.Tensor]  # (1, 3, h, w) in [0, 1] -> (1, 3, s h, s w)


@dataclass(frozen=True)
class Span:
    """One tile along one axis: input [start, start + length), and its blend weights on the output."""

    start: int
    length: int
    weights: np.ndarray  # (length * scale,) float32


def check_tile(tile: int) -> int:
    """`tile` if it is a usable tile side (input px), else ValueError."""
    if isinstance(tile, bool) or not isinstance(tile, int) or not MIN_TILE <= tile <= MAX_TILE:
        raise ValueError(f"tile size must be an integer between {MIN_TILE} and {MAX_TILE} px, got {tile!r}")
    return tile


def tile_starts(size: int, tile: int, overlap: int, align: int = 1) -> list[int]:
    """Start offsets of the tiles along one axis of `size` px: evenly spread on multiples of `align`,
    neighbours overlapping by >= `overlap`; the last tile ends at the border (it is shorter than `tile`
    by less than `align` when the border is not on a multiple)."""
    if size <= tile:
        return [0]
    step = tile - overlap - (align if align > 1 else 0)  # rounding each start to `align` moves it < align
    if step < 1:
        raise ValueError(f"a tile of {tile} px cannot overlap its neighbours by {overlap} px on a {align} px grid")
    gaps = math.ceil((size - tile) / step)
    last = math.ceil((size - tile) / align) * align
    return [round(k * (size - tile) / gaps / align) * align for k in range(gaps)] + [last]


def _handover(x: np.ndarray, centre: float, width: float) -> np.ndarray:
    """g(x): 1 before the window [centre - width/2, centre + width/2], 0 after it, linear inside."""
    return np.clip((centre + width / 2 - x) / width, 0.0, 1.0)


def axis_spans(size: int, tile: int, overlap: int, scale: int, align: int = 1) -> list[Span]:
    """The tiles along one axis with their output blend weights (which sum to one at every output px)."""
    starts = tile_starts(size, tile, overlap, align)
    lengths = [min(tile, size - start) for start in starts]
    width = overlap / 2
    # hand-over window centres, in input px, between tile i and i + 1
    centres = [(starts[i + 1] + starts[i] + lengths[i]) / 2 for i in range(len(starts) - 1)]
    spans = []
    for i, (start, length) in enumerate(zip(starts, lengths)):
        x = (start * scale + np.arange(length * scale) + 0.5) / scale  # output px centres, in input px
        upper = _handover(x, centres[i], width) if i < len(centres) else np.ones_like(x)
        lower = _handover(x, centres[i - 1], width) if i > 0 else np.zeros_like(x)
        spans.append(Span(start, length, (upper - lower).astype(np.float32)))
    return spans


def tile_count(height: int, width: int, tile: int, overlap: int = DEFAULT_OVERLAP, align: int = 1) -> int:
    """How many tiles a tiled run over an input of this size makes."""
    tile, overlap = _layout(tile, overlap, align)
    return len(tile_starts(height, tile, overlap, align)) * len(tile_starts(width, tile, overlap, align))


def _layout(tile: int, overlap: int, align: int) -> tuple[int, int]:
    """(tile, overlap) as a run uses them: the tile rounded down to `align`, the overlap at most a quarter tile."""
    if not 1 <= align <= MIN_TILE // 2:
        raise ValueError(f"tile alignment must be between 1 and {MIN_TILE // 2} px, got {align}")
    tile = check_tile(tile) // align * align
    return tile, min(overlap, tile // 4)


def free_memory_bytes(device: torch.device) -> int:
    """Free memory on `device`: torch.cuda.mem_get_info on CUDA; MemAvailable (Linux) or free pages on the CPU."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if sys.platform.startswith("linux"):
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def auto_tile(bytes_per_pixel: int, device: torch.device) -> int:
    """Tile side (input px) whose model run takes at most MEMORY_SHARE of free memory:
    floor(sqrt(share * free / bytes_per_pixel)), rounded down to a multiple of 32, within AUTO_TILE_RANGE."""
    side = math.isqrt(int(MEMORY_SHARE * free_memory_bytes(device) / bytes_per_pixel))
    low, high = AUTO_TILE_RANGE
    return max(low, min(high, side // 32 * 32))


def tiled_peak_bound(height: int, width: int, scale: int, tile: int, bytes_per_pixel: int) -> int:
    """Bytes a tiled run over an (height, width) input may need beyond its input and the model's weights:
    the uint8 output, two float32 row bands (the current one and the one it takes over from), one
    tile's model run (bytes_per_pixel per input px) and its weighted float32 copy, plus 10 %."""
    out_h, out_w = height * scale, width * scale
    rows = min(tile, height) * scale
    output = 3 * out_h * out_w
    bands = 2 * 4 * 3 * rows * out_w
    one_tile = bytes_per_pixel * min(tile, height) * min(tile, width) + 2 * 4 * 3 * rows * min(tile, width) * scale
    return int(1.1 * (output + bands + one_tile))


def _run_tile(model: TileModel, image: np.ndarray, ys: Span, xs: Span, scale: int, device: torch.device) -> np.ndarray:
    """The model's output for one tile, in 0..255 float32, times the tile's blend weights."""
    crop = image[ys.start:ys.start + ys.length, xs.start:xs.start + xs.length]
    x = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).float().div(255)[None].to(device)  # (1, 3, h, w)
    with torch.no_grad():
        out = model(x).float()[0]  # (3, s h, s w)
        out.clamp_(0, 1).mul_(255)  # in place: a tile-sized temporary less per step
        y = out.cpu().permute(1, 2, 0).numpy()  # (s h, s w, 3), a view
    if y.shape[:2] != (ys.length * scale, xs.length * scale):
        raise ValueError(f"the model turned a {ys.length}x{xs.length} tile into {y.shape[0]}x{y.shape[1]}, "
                         f"not x{scale}")
    y *= ys.weights[:, None, None]
    y *= xs.weights[None, :, None]
    return y


def tiled_upscale(model: TileModel, image: np.ndarray, scale: int, tile: int, device: torch.device, *,
                  overlap: int = DEFAULT_OVERLAP, align: int = 1, on_tile: Callable[[int, int], None] | None = None,
                  cancel: CancelToken | None = None, done_before: int = 0, total: int | None = None) -> np.ndarray:
    """(H, W, 3) uint8 -> (scale H, scale W, 3) uint8 by `model`, one overlapping tile at a time.

    Tiles start on multiples of `align` (a model that pixel-unshuffles by u needs u, a window-attention
    model its window: their grids must line up with the whole image's). `on_tile(done, total)` follows each tile (`done_before`/`total` count tiles of earlier passes too);
    `cancel` is checked before each tile and raises Cancelled, returning nothing."""
    height, width = image.shape[:2]
    if overlap < 4:
        raise ValueError(f"tile overlap must be at least 4 px, got {overlap}")
    tile, overlap = _layout(tile, overlap, align)
    rows, cols = (axis_spans(n, tile, overlap, scale, align) for n in (height, width))
    total = total if total is not None else done_before + len(rows) * len(cols)
    out = np.empty((height * scale, width * scale, 3), np.uint8)
    carry = np.zeros((0, width * scale, 3), np.float32)  # the band above's unfinished rows: this band's first
    done = done_before
    for r, ys in enumerate(rows):
        top = ys.start * scale
        band = np.zeros((ys.length * scale, width * scale, 3), np.float32)  # (rows, W s, 3) in 0..255
        band[:len(carry)] += carry
        for xs in cols:
            if cancel is not None and cancel.cancelled:
                raise Cancelled("upscaling was cancelled")
            band[:, xs.start * scale:(xs.start + xs.length) * scale] += _run_tile(model, image, ys, xs, scale, device)
            done += 1
            if on_tile is not None:
                on_tile(done, total)
        final = rows[r + 1].start * scale - top if r + 1 < len(rows) else len(band)  # later rows add nothing above
        done_rows = band[:final]  # rounded and clipped in place: no band-sized temporaries
        np.rint(done_rows, out=done_rows)
        np.clip(done_rows, 0, 255, out=done_rows)
        out[top:top + final] = done_rows  # exact: whole numbers in 0..255
        carry = band[final:]
    return out
