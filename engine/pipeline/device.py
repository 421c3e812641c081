"""Where and in which precision a job runs: CUDA (fp16 where safe) when available, else CPU fp32."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.models import LoadedModel


@dataclass(frozen=True)
class DeviceSetup:
    """The device and the compute dtype of the denoiser and text encoders."""

    device: torch.device
    dtype: torch.dtype

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"


def choose_device(device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> DeviceSetup:
    """CUDA with fp16 if available, else CPU fp32; an explicit device or dtype wins."""
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(dev)!r} was asked for, but CUDA is not available; use device='cpu'")
    if dtype is None:
        dtype = torch.float16 if dev.type == "cuda" else torch.float32
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"dtype must be float32, float16 or bfloat16, got {dtype}")
    if dev.type == "cpu" and dtype is torch.float16:
        raise ValueError("float16 is not supported on the CPU (too slow and inexact); use float32 or bfloat16")
    return DeviceSetup(dev, dtype)


def prepare_model(model: LoadedModel, setup: DeviceSetup) -> None:
    """Make a freshly loaded model safe and fast on its device (idempotent).

    A VAE whose config asks for it (SDXL's `force_upcast`) decodes in fp32: in fp16 it overflows to
    NaN. On CUDA the UNet uses channels_last; attention is PyTorch SDPA (diffusers' default).
    """
    vae = model.vae
    if setup.dtype is torch.float16 and getattr(vae.config, "force_upcast", False) and vae.dtype != torch.float32:
        vae.to(torch.float32)
    if setup.is_cuda and model.family.value != "sd3":
        model.denoiser.to(memory_format=torch.channels_last)
