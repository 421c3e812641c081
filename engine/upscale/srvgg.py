"""SRVGGNetCompact, Real-ESRGAN's compact model (Wang et al. 2021, "Real-ESRGAN: Training Real-World
Blind Super-Resolution with Pure Synthetic Data"; realesr-general-x4v3, realesr-animevideov3): a plain
stack of 3x3 convs with PReLU at the input resolution, a PixelShuffle, and the nearest-upsampled input
added. Keys: `body.0` (first conv), `body.1` (its PReLU), then conv/PReLU pairs, `body.<2n+2>` last.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn


class SRVGGNetCompact(nn.Module):
    """Image in [0, 1] (B, C, H, W) -> (B, C, scale H, scale W)."""

    def __init__(self, channels: int = 3, features: int = 64, convs: int = 16, scale: int = 4) -> None:
        super().__init__()
        if min(channels, features, scale) < 1 or convs < 0:
            raise ValueError(f"bad SRVGGNetCompact shape: features={features}, convs={convs}, scale={scale}")
        self.channels, self.features, self.scale = channels, features, scale
        layers: list[nn.Module] = [nn.Conv2d(channels, features, 3, 1, 1), nn.PReLU(features)]
        for _ in range(convs):
            layers += [nn.Conv2d(features, features, 3, 1, 1), nn.PReLU(features)]
        layers.append(nn.Conv2d(features, channels * scale * scale, 3, 1, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.pixel_shuffle(self.body(x), self.scale)  # (B, C, sH, sW)
        return out + F.interpolate(x, scale_factor=self.scale, mode="nearest")

    def bytes_per_pixel(self) -> int:
        """Estimated peak float32 bytes per input pixel: two live feature maps and about four
        C x scale^2 maps (last conv, shuffle, nearest base, sum)."""
        return int(4 * 1.25 * (2 * self.features + 4 * 3 * self.scale**2))


def is_srvgg(keys: Mapping[str, torch.Tensor]) -> bool:
    """Whether a state dict is an SRVGGNetCompact: only body.N keys, with a PReLU (1-D weight) at body.1."""
    return ("body.0.weight" in keys and "body.1.weight" in keys and keys["body.1.weight"].ndim == 1
            and all(k.startswith("body.") for k in keys))


def srvgg_from_state_dict(state: Mapping[str, torch.Tensor]) -> SRVGGNetCompact:
    """An SRVGGNetCompact shaped by and loaded with `state`; ValueError if it does not fit."""
    indices = sorted({int(k.split(".")[1]) for k in state})
    last = indices[-1]
    if last % 2 or last < 2:
        raise ValueError(f"an SRVGGNetCompact whose last layer is body.{last}, not an even conv index >= 2")
    channels, features = state["body.0.weight"].shape[1], state["body.0.weight"].shape[0]
    squared = state[f"body.{last}.weight"].shape[0] / channels
    scale = math.isqrt(int(squared))
    if scale < 1 or scale * scale != squared:
        raise ValueError(f"an SRVGGNetCompact whose last conv gives {state[f'body.{last}.weight'].shape[0]} "
                         f"channels: not {channels} x scale^2")
    model = SRVGGNetCompact(channels, features, last // 2 - 1, scale)
    model.load_state_dict(dict(state), strict=True)
    return model
