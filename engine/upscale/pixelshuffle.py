"""The built-in super-resolution model: an ESPCN-style network (Shi et al. 2016, "Real-Time Single
Image and Video Super-Resolution Using an Efficient Sub-Pixel Convolutional Neural Network") whose
convolutions run at the input resolution and end in a PixelShuffle, predicting the residual over
bicubic upsampling (as VDSR, Kim et al. 2016, does over its interpolated input).

The bicubic base matters: with a nearest-neighbour base (Real-ESRGAN's SRVGGNetCompact) and a deep
PReLU stack, training on the shapes world settled on a zero residual, i.e. nearest upsampling,
2.5 dB below bicubic. With the last convolution zero-initialised the network starts as exact
bicubic upsampling and only has to learn the edges.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

ARCHITECTURE = "atelier-pixelshuffle-bicubic-residual"


class PixelShuffleSR(nn.Module):
    """RGB in [0, 1] (B, 3, H, W) -> (B, 3, scale H, scale W)."""

    def __init__(self, features: int = 64, convs: int = 4, scale: int = 4) -> None:
        super().__init__()
        if features < 1 or convs < 0 or scale < 2:
            raise ValueError(f"bad PixelShuffleSR shape: features={features}, convs={convs}, scale={scale}")
        self.features, self.convs, self.scale = features, convs, scale
        layers: list[nn.Module] = [nn.Conv2d(3, features, 5, 1, 2), nn.ReLU(inplace=True)]
        for _ in range(convs):
            layers += [nn.Conv2d(features, features, 3, 1, 1), nn.ReLU(inplace=True)]
        tail = nn.Conv2d(features, 3 * scale * scale, 3, 1, 1)
        nn.init.zeros_(tail.weight)  # starts as exact bicubic upsampling
        nn.init.zeros_(tail.bias)
        layers.append(tail)
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = F.pixel_shuffle(self.body(x), self.scale)  # (B, 3, sH, sW)
        return residual + F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)

    def bytes_per_pixel(self) -> int:
        """Estimated peak float32 bytes per input pixel of a forward pass: the input, two live feature
        maps of the body, and about five 3 x scale^2 maps (tail, pixel shuffle, bicubic base, sum, clamp)."""
        return 4 * (3 + 2 * self.features + 5 * 3 * self.scale**2)

    @torch.no_grad()
    def upscale(self, image: np.ndarray) -> np.ndarray:
        """One (H, W, 3) uint8 RGB image -> (scale H, scale W, 3) uint8."""
        device = next(self.parameters()).device
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div(255)[None].to(device)
        y = self(x).clamp(0, 1)[0].permute(1, 2, 0).mul(255).round().to(torch.uint8)
        return y.cpu().numpy()

    def save(self, folder: Path) -> None:
        """Write config.json and model.safetensors into `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps({
            "_class_name": "PixelShuffleSR", "architecture": ARCHITECTURE, "features": self.features,
            "convs": self.convs, "scale": self.scale}, indent=2) + "\n")
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(folder / "model.safetensors"))


def load_pixelshuffle_sr(folder: Path, device: torch.device | str = "cpu") -> PixelShuffleSR:
    """The model saved in `folder` (config.json + model.safetensors), in eval mode."""
    config = json.loads((folder / "config.json").read_text())
    if config.get("architecture") != ARCHITECTURE:
        raise ValueError(f"{folder}: not an Atelier PixelShuffle upscaler (architecture "
                         f"{config.get('architecture')!r}, expected {ARCHITECTURE!r})")
    model = PixelShuffleSR(int(config["features"]), int(config["convs"]), int(config["scale"]))
    model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=True)
    return model.to(device).eval()
