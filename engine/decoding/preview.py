"""Live previews: predicted x0 latents -> a small RGB image through a linear map per VAE.

For the SD 4-channel VAEs the published latent-to-RGB factors are used; for any other
autoencoder (SD3's 16 channels, the built-in VQGAN) the map is fitted once by least squares
from the autoencoder itself, so a preview never needs a full decode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from engine.decoding.vae import LatentScaling, encode

# Community-measured factors for the SD1/SD2 VAE and the SDXL VAE (model latents -> RGB in [-1, 1]).
SD_FACTORS = ((0.3512, 0.2297, 0.3227), (0.3250, 0.4974, 0.2350), (-0.2829, 0.1762, 0.2721), (-0.2120, -0.2616, -0.7177))
SDXL_FACTORS = ((0.3651, 0.4232, 0.4341), (-0.2533, -0.0042, 0.1068), (0.1076, 0.1111, -0.0362), (-0.3165, -0.2492, -0.2188))
SDXL_BIAS = (0.1084, -0.0175, -0.0011)


@dataclass(frozen=True)
class LatentPreview:
    """A linear map from C latent channels to RGB: rgb = latents^T @ factors + bias."""

    factors: torch.Tensor  # (C, 3)
    bias: torch.Tensor  # (3,)

    @staticmethod
    def sd() -> LatentPreview:
        """The SD1.x/SD2.x VAE's map."""
        return LatentPreview(torch.tensor(SD_FACTORS), torch.zeros(3))

    @staticmethod
    def sdxl() -> LatentPreview:
        """The SDXL VAE's map."""
        return LatentPreview(torch.tensor(SDXL_FACTORS), torch.tensor(SDXL_BIAS))

    def __call__(self, latents: torch.Tensor) -> np.ndarray:
        """Latents (C, h, w) or (1, C, h, w) -> (h, w, 3) uint8 preview."""
        z = latents[0] if latents.dim() == 4 else latents  # (C, h, w)
        if z.shape[0] != self.factors.shape[0]:
            raise ValueError(f"preview map expects {self.factors.shape[0]} channels, got {z.shape[0]}")
        rgb = torch.einsum("chw,cr->hwr", z.float().cpu(), self.factors) + self.bias  # (h, w, 3)
        return ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


@torch.no_grad()
def fit_preview(vae: object, size: int = 128, samples: int = 8, seed: int = 0) -> LatentPreview:
    """Fit the linear latent->RGB map of any autoencoder from smooth random colour images."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(samples, 3, 4, 4, generator=g) * 2 - 1  # (N, 3, 4, 4) colour fields
    images = F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1)
    z = encode(vae, images)  # (N, C, h, w), model scaling
    target = F.interpolate(images, size=z.shape[-2:], mode="area")  # (N, 3, h, w)
    x = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]).double()  # (N*h*w, C)
    y = target.permute(0, 2, 3, 1).reshape(-1, 3).double()  # (N*h*w, 3)
    x1 = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
    solution = torch.linalg.lstsq(x1, y).solution  # (C+1, 3)
    return LatentPreview(solution[:-1].float(), solution[-1].float())


def preview_for(vae: object, family: str | None) -> LatentPreview:
    """The preview map for a VAE: published factors for SD/SDXL VAEs, otherwise fitted."""
    channels = getattr(vae.config, "latent_channels", None)  # type: ignore[attr-defined]
    scale = LatentScaling.of(vae).scale
    if channels == 4 and family in ("sd1", "sd2") and abs(scale - 0.18215) < 1e-4:
        return LatentPreview.sd()
    if channels == 4 and family == "sdxl" and abs(scale - 0.13025) < 1e-4:
        return LatentPreview.sdxl()
    return fit_preview(vae)
