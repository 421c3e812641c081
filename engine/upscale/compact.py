"""The built-in super-resolution model: a compact PixelShuffle network in the layout of
Real-ESRGAN's SRVGGNetCompact (Wang et al. 2021), so tools that read that format (spandrel,
chaiNNer, A1111) load it too: conv + PReLU pairs at the input resolution, a last conv to
3 * scale^2 channels, PixelShuffle (Shi et al. 2016, ESPCN), plus the nearest-upsampled input.
State-dict keys: body.0 (conv), body.1 (PReLU), ..., body.{2n+2} (last conv)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn


class CompactSR(nn.Module):
    """RGB in [0, 1] (B, 3, H, W) -> (B, 3, scale H, scale W)."""

    def __init__(self, features: int = 48, convs: int = 12, scale: int = 4) -> None:
        super().__init__()
        self.features, self.convs, self.scale = features, convs, scale
        layers: list[nn.Module] = [nn.Conv2d(3, features, 3, 1, 1), nn.PReLU(features)]
        for _ in range(convs):
            layers += [nn.Conv2d(features, features, 3, 1, 1), nn.PReLU(features)]
        layers.append(nn.Conv2d(features, 3 * scale * scale, 3, 1, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.pixel_shuffle(self.body(x), self.scale)
        return out + F.interpolate(x, scale_factor=self.scale, mode="nearest")

    @torch.no_grad()
    def upscale(self, image: np.ndarray) -> np.ndarray:
        """One (H, W, 3) uint8 RGB image -> (scale H, scale W, 3) uint8."""
        device = next(self.parameters()).device
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div(255)[None].to(device)
        y = self(x).clamp(0, 1)[0].permute(1, 2, 0).mul(255).round().to(torch.uint8)
        return y.cpu().numpy()

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps({
            "_class_name": "CompactSR", "architecture": "SRVGGNetCompact", "features": self.features,
            "convs": self.convs, "scale": self.scale}, indent=2) + "\n")
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(folder / "model.safetensors"))


def load_compact_sr(folder: Path, device: torch.device | str = "cpu") -> CompactSR:
    """The model saved in `folder` (config.json + model.safetensors), in eval mode."""
    config = json.loads((folder / "config.json").read_text())
    model = CompactSR(int(config["features"]), int(config["convs"]), int(config["scale"]))
    model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=True)
    return model.to(device).eval()
