"""ControlNet units of a job: their maps fitted to the output (and to an inpaint crop), ready to run."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from engine.pipeline.denoisers import ActiveControl, control_tensor
from engine.pipeline.inpaint import CropRegion, resize
from engine.settings import ControlUnit

NO_PREPROCESSOR = (None, "", "none")


def check_unit(unit: ControlUnit) -> None:
    """Reject what the pipeline cannot do instead of running it differently than asked."""
    if unit.preprocessor not in NO_PREPROCESSOR:
        raise ValueError(f"ControlNet {unit.type!r}: preprocessor {unit.preprocessor!r} is not run by the "
                         "render pipeline; give the preprocessed control map and no preprocessor")


def fit_control_map(rgb: np.ndarray, size: tuple[int, int], region: CropRegion | None = None,
                    output: tuple[int, int] | None = None) -> np.ndarray:
    """A control map resized to `size` (width, height); with an inpaint crop (in pixels of the `output`
    size), the crop's part of the map fitted to the output, at `size`."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"a control map must be an (H, W, 3) image, got shape {rgb.shape}")
    if region is None:
        return resize(rgb, *size)
    full = resize(rgb, *(output or size))
    return resize(region.crop(full), *size)


def map_size(model: torch.nn.Module, latent_hw: tuple[int, int]) -> tuple[int, int]:
    """(height, width) a ControlNet's map must have: the latent size times its hint encoder's downsampling
    (8 for released models, which equals the VAE's factor, so the map has the output size)."""
    factor = 2 ** (len(model.config.conditioning_embedding_out_channels) - 1)
    return latent_hw[0] * factor, latent_hw[1] * factor


def active_controls(units: Sequence[ControlUnit], models: Sequence[torch.nn.Module], maps: Sequence[np.ndarray],
                    *, latent_hw: tuple[int, int], output: tuple[int, int], device: torch.device,
                    dtype: torch.dtype, region: CropRegion | None = None) -> list[ActiveControl]:
    """One ActiveControl per unit (model and (H, W, 3) map in the same order); weight 0 units are dropped.
    output: the job's (width, height), in which an inpaint crop `region` is given."""
    if not len(units) == len(models) == len(maps):
        raise ValueError(f"{len(units)} control units, {len(models)} models and {len(maps)} maps")
    out = []
    for unit, model, rgb in zip(units, models, maps):
        if unit.weight == 0.0:
            continue
        height, width = map_size(model, latent_hw)
        fitted = fit_control_map(rgb, (width, height), region, output)
        out.append(ActiveControl(model, control_tensor(fitted, width, height, device, dtype), unit.weight,
                                 unit.start, unit.end))
    return out
