"""User upscaler model files: ESRGAN-family weights (.safetensors, or weights-only .pth/.pt/.ckpt/.bin)
with the architecture and its shape detected from the tensors.

Atelier reads RRDBNet (ESRGAN in its three key layouts; Real-ESRGAN x4, x2 and x1), SRVGGNetCompact
(Real-ESRGAN compact), SwinIR (all four heads) and HAT itself. Other architectures (DAT, OmniSR,
SPAN...) go through spandrel when it can be imported; spandrel imports torchvision on import, which
Atelier does not depend on (it has no CPU build), so without it such a file gets an error that says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from engine.models.checkpoint import WEIGHT_SUFFIXES, read_state_dict
from engine.models.errors import ModelLoadError
from engine.upscale.esrgan import is_rrdbnet, rrdbnet_from_state_dict
from engine.upscale.hat import HAT, hat_from_state_dict, is_hat
from engine.upscale.srvgg import is_srvgg, srvgg_from_state_dict
from engine.upscale.swinir import SwinIR, is_swinir, swinir_from_state_dict

NATIVE = "RRDBNet (ESRGAN, Real-ESRGAN x1/x2/x4), SRVGGNetCompact (Real-ESRGAN compact), SwinIR and HAT"
SPANDREL_HINT = ("other architectures (DAT, OmniSR, SPAN, ...) load through spandrel, which needs torchvision: "
                 "`pip install spandrel torchvision` with the torchvision that matches your torch")
DEFAULT_BYTES_PER_PIXEL = 64 * 1024  # a transformer upscaler whose needs spandrel does not state: small tiles


@dataclass(frozen=True)
class Architecture:
    """One architecture Atelier builds itself: how to recognise its state dict and how to build it."""

    name: str
    matches: Callable[[Mapping[str, torch.Tensor]], bool]
    build: Callable[[Mapping[str, torch.Tensor]], nn.Module]


ARCHITECTURES: tuple[Architecture, ...] = (
    Architecture("RRDBNet", is_rrdbnet, rrdbnet_from_state_dict),
    Architecture("SRVGGNetCompact", is_srvgg, srvgg_from_state_dict),
    Architecture("HAT", is_hat, hat_from_state_dict),
    Architecture("SwinIR", is_swinir, swinir_from_state_dict),
)


@dataclass(frozen=True)
class UpscalerModel:
    """A loaded upscaler: the module on its device and dtype, its integer scale and its memory need."""

    module: nn.Module
    architecture: str
    scale: int
    bytes_per_pixel: int  # float32 bytes per input pixel of a forward pass (halved in fp16)
    dtype: torch.dtype
    align: int = 1  # tiles start on multiples of this (see _grid)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(1, C, h, w) float in [0, 1] -> (1, C, scale h, scale w) float32."""
        return self.module(x.to(self.dtype)).float()


def _strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for prefix in ("module.", "model.module.", "netG."):  # DataParallel and BasicSR wrappers
        if state and all(k.startswith(prefix) for k in state):
            return {k[len(prefix):]: v for k, v in state.items()}
    return state


def _spandrel(path: Path, state: dict[str, torch.Tensor]) -> tuple[nn.Module, str, int, int]:
    try:
        import spandrel  # optional: needs torchvision
    except ImportError:
        raise ModelLoadError(path, f"not an upscaler architecture Atelier reads itself ({NATIVE}); "
                                   f"{SPANDREL_HINT}") from None
    try:
        descriptor = spandrel.ModelLoader().load_from_state_dict(state)
    except Exception as exc:  # spandrel's UnsupportedModelError and shape errors alike
        raise ModelLoadError(path, f"not a recognised upscaler ({NATIVE}, or what spandrel reads): {exc}") from None
    if not isinstance(descriptor, spandrel.ImageModelDescriptor) or descriptor.scale < 1:
        raise ModelLoadError(path, f"spandrel reads this as {descriptor.architecture.name}, not an upscaler")
    return descriptor.model, f"{descriptor.architecture.name} (spandrel)", int(descriptor.scale), DEFAULT_BYTES_PER_PIXEL


def load_upscaler_file(path: Path, device: torch.device | str = "cpu", half: bool | None = None) -> UpscalerModel:
    """The upscaler in a model file, in eval mode on `device` (fp16 on CUDA unless `half` is False).

    ModelLoadError names the file and says why it cannot be used: missing, corrupt, pickled code,
    or an architecture that is not an upscaler Atelier (or spandrel, when installed) knows."""
    path = Path(path)
    if path.suffix.lower() not in WEIGHT_SUFFIXES:
        raise ModelLoadError(path, f"not an upscaler model file: expected one of {', '.join(WEIGHT_SUFFIXES)}")
    state = _strip_prefix(read_state_dict(path))
    found = next((arch for arch in ARCHITECTURES if arch.matches(state)), None)
    if found is None:
        module, name, scale, per_pixel = _spandrel(path, state)
    else:
        try:
            module = found.build(state)
        except (ValueError, KeyError, IndexError, RuntimeError) as exc:  # RuntimeError: load_state_dict's size/key mismatches
            detail = (f"no tensor {exc}" if isinstance(exc, KeyError)
                      else str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
            raise ModelLoadError(path, f"looks like a {found.name} but its tensors do not fit one: {detail}") from None
        name, scale, per_pixel = found.name, int(module.scale), int(module.bytes_per_pixel())
        if module.channels != 3:
            raise ModelLoadError(path, f"a {name} for {module.channels}-channel images; Atelier upscales RGB images")
    device = torch.device(device)
    half = device.type == "cuda" if half is None else half
    dtype = torch.float16 if half else torch.float32
    module = module.to(device=device, dtype=dtype).eval().requires_grad_(False)
    return UpscalerModel(module, name, scale, per_pixel // 2 if half else per_pixel, dtype, align=_grid(module))


def _grid(module: nn.Module) -> int:
    """The grid tiles must start on so they see what the whole image would: an RRDBNet's pixel-unshuffle
    factor, a SwinIR's or HAT's attention window (their windows are laid from the image's corner)."""
    if isinstance(module, (SwinIR, HAT)):
        return module.shape.window
    return int(getattr(module, "unshuffle", 1))
