"""img2img: the init image fitted to the output size and encoded to latents."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

from engine.decoding.vae import encode, from_uint8


def fit_image(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """An (H, W, 3) uint8 image resized (Lanczos) to (height, width, 3); unchanged if it already fits."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}")
    if rgb.shape[:2] == (height, width):
        return rgb
    return np.array(Image.fromarray(rgb).resize((width, height), Image.Resampling.LANCZOS))


@torch.no_grad()
def encode_init(vae: Any, rgb: np.ndarray, batch: int) -> torch.Tensor:
    """An (H, W, 3) uint8 image -> its latents (batch, C, H/f, W/f), float32 (the posterior's mode:
    deterministic, so re-rendering gives the same pixels)."""
    latents = encode(vae, from_uint8(np.ascontiguousarray(rgb), vae.device))  # (1, C, h, w)
    return latents.expand(batch, -1, -1, -1).contiguous()
