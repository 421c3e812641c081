"""The raw network calls the sampling wrappers wrap: a UNet (with ControlNet residuals) or an SD3
transformer, given scaled input, timestep and the family's conditioning."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class ActiveControl:
    """One ControlNet unit ready to run: its model, map (1, 3, H, W) in [0, 1], weight and window."""

    model: torch.nn.Module
    image: torch.Tensor
    weight: float
    start: float
    end: float

    def active(self, fraction: float) -> bool:
        """Whether the unit acts at this fraction of the steps."""
        return self.weight > 0 and self.start <= fraction <= self.end


def control_tensor(rgb: np.ndarray, width: int, height: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """An (H, W, 3) uint8 control map fitted to the output size -> (1, 3, height, width) in [0, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0  # (1, 3, h, w)
    if t.shape[-2:] != (height, width):
        t = F.interpolate(t, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return t.to(device=device, dtype=dtype)


class UNetCall:
    """UNet(x, t, cond) -> raw prediction, adding the active ControlNets' residuals.

    `timesteps` lists the schedule's timesteps so a model call can tell how far through the
    steps it is (ControlNet start/end are fractions of the steps).
    """

    def __init__(self, unet: torch.nn.Module, controls: Sequence[ActiveControl] = (),
                 timesteps: Sequence[float] = ()) -> None:
        self.unet = unet
        self.controls = tuple(controls)
        self.timesteps = torch.tensor(list(timesteps), dtype=torch.float64)

    def set_timesteps(self, timesteps: Sequence[float] | torch.Tensor) -> None:
        """The model timesteps of the steps this run takes (for the ControlNet windows)."""
        self.timesteps = torch.as_tensor(timesteps, dtype=torch.float64).flatten().cpu()

    def fraction(self, t: torch.Tensor) -> float:
        """Position of timestep `t` in the schedule as a fraction in [0, 1]."""
        if len(self.timesteps) < 2:
            return 0.0
        index = int(torch.argmin((self.timesteps - float(t.reshape(-1)[0])).abs()))
        return index / (len(self.timesteps) - 1)

    def __call__(self, x: torch.Tensor, t: torch.Tensor, *, encoder_hidden_states: torch.Tensor,
                 added_cond_kwargs: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        dtype = next(self.unet.parameters()).dtype
        x_in = x.to(dtype)
        ehs = encoder_hidden_states.to(dtype)
        extra: dict[str, Any] = {}
        fraction = self.fraction(t)
        for unit in self.controls:
            if not unit.active(fraction):
                continue
            image = unit.image.expand(x.shape[0], -1, -1, -1)
            down, mid = unit.model(x_in, t, encoder_hidden_states=ehs, controlnet_cond=image,
                                   conditioning_scale=unit.weight, added_cond_kwargs=added_cond_kwargs,
                                   return_dict=False)
            if extra:
                extra["down_block_additional_residuals"] = [a + b for a, b in zip(extra["down_block_additional_residuals"], down)]
                extra["mid_block_additional_residual"] = extra["mid_block_additional_residual"] + mid
            else:
                extra = {"down_block_additional_residuals": list(down), "mid_block_additional_residual": mid}
        out = self.unet(x_in, t, encoder_hidden_states=ehs, added_cond_kwargs=added_cond_kwargs, return_dict=False, **extra)[0]
        return out.float()


class TransformerCall:
    """SD3 transformer(x, t, cond) -> raw velocity prediction."""

    def __init__(self, transformer: torch.nn.Module) -> None:
        self.transformer = transformer

    def __call__(self, x: torch.Tensor, t: torch.Tensor, *, encoder_hidden_states: torch.Tensor,
                 pooled_projections: torch.Tensor) -> torch.Tensor:
        dtype = next(self.transformer.parameters()).dtype
        out = self.transformer(hidden_states=x.to(dtype), timestep=t.expand(x.shape[0]),
                               encoder_hidden_states=encoder_hidden_states.to(dtype),
                               pooled_projections=pooled_projections.to(dtype), return_dict=False)[0]
        return out.float()
