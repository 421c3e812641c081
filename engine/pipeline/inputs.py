"""Pixel inputs of a job that do not live in its settings: the canvas, the mask, control maps.

The settings refer to them by name ("canvas", "layer:<id>", or a file path); the studio passes
the pixels in, the CLI reads files. Arrays are copies: they cross threads unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

CANVAS_REF = "canvas"
LAYER_PREFIX = "layer:"


class InputImageError(ValueError):
    """An input image named by the settings is missing or unreadable."""


@dataclass(frozen=True)
class ImageInputs:
    """Images by reference: (H, W, 3) uint8 for pictures and control maps, (H, W) uint8 masks."""

    images: dict[str, np.ndarray] = field(default_factory=dict)
    masks: dict[str, np.ndarray] = field(default_factory=dict)

    def image(self, ref: str, base: Path | None = None) -> np.ndarray:
        """The RGB image for `ref`: given pixels, else a file path (relative to `base`)."""
        if ref in self.images:
            return self.images[ref]
        return read_rgb(_resolve(ref, base))

    def mask(self, ref: str, base: Path | None = None) -> np.ndarray:
        """The mask for `ref` (255 = repaint): given pixels, else a file's luminance or alpha."""
        if ref in self.masks:
            return self.masks[ref]
        return read_mask(_resolve(ref, base))


def _resolve(ref: str, base: Path | None) -> Path:
    if ref == CANVAS_REF or ref.startswith(LAYER_PREFIX) or ref == "unknown":
        raise InputImageError(f"the settings refer to {ref!r}, which only exists in the studio; "
                              "give the image file instead")
    path = Path(ref)
    return path if path.is_absolute() or base is None else base / path


def _open(path: Path) -> Image.Image:
    try:
        im = Image.open(path)
        im.load()
        return im
    except FileNotFoundError:
        raise InputImageError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError) as exc:
        raise InputImageError(f"{path}: not a readable image ({exc})") from None


def read_rgb(path: Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 (alpha composited on black, 16-bit scaled down)."""
    im = _open(path)
    if im.mode in ("I;16", "I;16B", "I"):
        im = Image.fromarray((np.asarray(im, dtype=np.float64) / 257).clip(0, 255).astype(np.uint8))
    if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        im = Image.alpha_composite(black, rgba)
    return np.asarray(im.convert("RGB")).copy()


def read_mask(path: Path) -> np.ndarray:
    """A mask file as (H, W) uint8: its alpha if it has transparency, else its luminance."""
    im = _open(path)
    if im.mode in ("RGBA", "LA"):
        alpha = np.asarray(im.getchannel("A"))
        if alpha.min() < 255:
            return alpha.copy()
    return np.asarray(im.convert("L")).copy()
