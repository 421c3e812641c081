"""Inpainting masks: blur, the latent mask, and A1111's "only masked" crop and feathered paste-back."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter

from engine.pipeline.inputs import InputImageError


@dataclass(frozen=True)
class CropRegion:
    """A box of the full image, in pixels: [left, right) x [top, bottom)."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def crop(self, image: np.ndarray) -> np.ndarray:
        """The part of an (H, W, ...) array inside the box."""
        return image[self.top:self.bottom, self.left:self.right]


def blurred_mask(mask: np.ndarray, width: int, height: int, blur: int) -> np.ndarray:
    """An (H, W) uint8 mask (255 = repaint) fitted to (height, width), Gaussian-blurred by `blur`
    pixels -> float32 in [0, 1]; InputImageError if it marks nothing."""
    if mask.ndim != 2:
        raise InputImageError(f"an inpaint mask must be one channel (H, W), got shape {mask.shape}")
    im = Image.fromarray(np.ascontiguousarray(mask.astype(np.uint8)))
    if im.size != (width, height):
        im = im.resize((width, height), Image.Resampling.BILINEAR)
    if blur > 0:
        im = im.filter(ImageFilter.GaussianBlur(blur))
    out = np.asarray(im, dtype=np.float32) / 255.0  # (height, width)
    if out.max() <= 0.0:
        raise InputImageError("the inpaint mask is empty: it marks nothing to repaint (white = repaint)")
    return out


def latent_mask(mask: np.ndarray, latent_hw: tuple[int, int], device: torch.device) -> torch.Tensor:
    """A pixel mask (H, W) in [0, 1] -> the latent mask (1, 1, h, w) in {0, 1}: repaint a latent
    pixel when at least half of it is masked (A1111 rounds its latent mask the same way)."""
    t = torch.from_numpy(mask)[None, None]  # (1, 1, H, W)
    small = F.interpolate(t, size=latent_hw, mode="area")  # (1, 1, h, w)
    return (small >= 0.5).float().to(device)


def _expand(lo: int, hi: int, want: int, size: int) -> tuple[int, int]:
    """Grow [lo, hi) to length `want` around its centre, shifted to stay within [0, size)."""
    want = min(want, size)
    grow = want - (hi - lo)
    lo -= grow // 2
    hi += grow - grow // 2
    if lo < 0:
        hi, lo = hi - lo, 0
    if hi > size:
        lo, hi = lo - (hi - size), size
    return max(lo, 0), hi


def crop_region(mask: np.ndarray, padding: int, width: int, height: int) -> CropRegion:
    """The masked box plus `padding`, grown to the output's aspect ratio (width:height) within the image."""
    ys, xs = np.nonzero(mask > 0)
    if len(xs) == 0:
        raise InputImageError("the inpaint mask is empty: it marks nothing to repaint (white = repaint)")
    full_h, full_w = mask.shape
    left, right = max(int(xs.min()) - padding, 0), min(int(xs.max()) + 1 + padding, full_w)
    top, bottom = max(int(ys.min()) - padding, 0), min(int(ys.max()) + 1 + padding, full_h)
    box_w, box_h = right - left, bottom - top
    if box_w * height > box_h * width:  # too wide for the output's ratio: grow the height
        top, bottom = _expand(top, bottom, round(box_w * height / width), full_h)
    else:
        left, right = _expand(left, right, round(box_h * width / height), full_w)
    return CropRegion(left, top, right, bottom)


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """An (H, W, 3) uint8 image resized with Lanczos (unchanged if it already has that size)."""
    if image.shape[:2] == (height, width):
        return image
    return np.array(Image.fromarray(np.ascontiguousarray(image)).resize((width, height), Image.Resampling.LANCZOS))


def resize_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """A float (H, W) mask resized bilinearly."""
    if mask.shape == (height, width):
        return mask
    return np.array(Image.fromarray(mask.astype(np.float32)).resize((width, height), Image.Resampling.BILINEAR))


def composite(original: np.ndarray, generated: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """original * (1 - mask) + generated * mask for (H, W, 3) uint8 images and an (H, W) mask in [0, 1]."""
    m = mask[..., None].astype(np.float32)  # (H, W, 1)
    out = original.astype(np.float32) * (1.0 - m) + generated.astype(np.float32) * m
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def paste_back(original: np.ndarray, generated: np.ndarray, region: CropRegion, mask: np.ndarray) -> np.ndarray:
    """Put a crop generated at another size back into the full image, feathered by the (blurred) mask."""
    patch = resize(generated, region.width, region.height)
    full = original.copy()
    full[region.top:region.bottom, region.left:region.right] = patch
    return composite(original, full, mask)
