"""Latents -> uint8 images: whole-image VAE decode, tiled for large images and when memory runs out."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from engine.decoding.vae import TileSpec, decode, to_uint8

# Above this many output pixels an image is decoded in tiles (the whole-image decoder's activations
# grow with the area; tiles bound them by one tile's).
TILED_ABOVE_PIXELS = 1536 * 1536
DEFAULT_TILES = TileSpec(tile=64, overlap=16)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether an exception is an allocation failure (CUDA OOM, or the CPU allocator giving up)."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        isinstance(exc, MemoryError) or "out of memory" in text or "can't allocate memory" in text)


def _free_cached(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def decode_image(vae: Any, latents: torch.Tensor, *, tiles: TileSpec = DEFAULT_TILES,
                 tiled: bool | None = None) -> np.ndarray:
    """One image's latents (1, C, h, w) -> (H, W, 3) uint8.

    tiled None decides by size; an out-of-memory error in a whole-image decode retries tiled.
    """
    scale = 2 ** (len(vae.config.block_out_channels) - 1)
    pixels = latents.shape[-2] * latents.shape[-1] * scale * scale
    if tiled is None:
        tiled = pixels > TILED_ABOVE_PIXELS
    if not tiled:
        try:
            return to_uint8(decode(vae, latents))[0]
        except (RuntimeError, MemoryError) as exc:
            if not is_out_of_memory(exc):
                raise
            _free_cached(latents.device)
    return to_uint8(decode(vae, latents, tiles=tiles))[0]


def decode_batch(vae: Any, latents: torch.Tensor, *, tiled: bool | None = None) -> list[np.ndarray]:
    """Latents (B, C, h, w) -> B images (H, W, 3) uint8, decoded one at a time to bound memory."""
    return [decode_image(vae, latents[i:i + 1], tiled=tiled) for i in range(latents.shape[0])]
