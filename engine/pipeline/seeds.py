"""Seeds of a job's images and their starting noise, with A1111's variation seeds."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from engine.sampling import GeneratorNoise
from engine.settings import Job

_LINEAR_DOT = 0.9995


def image_seeds(job: Job, first: int, count: int) -> list[int]:
    """Seeds of images first .. first + count - 1 of the job: seed + k."""
    return [job.seed + k for k in range(first, first + count)]


def variation_seeds(job: Job, first: int, count: int) -> list[int] | None:
    """Variation seeds of those images (variation_seed + k), or None when the job has no variation."""
    if job.variation_seed is None or job.variation_strength <= 0.0:
        return None
    return [job.variation_seed + k for k in range(first, first + count)]


def slerp(t: float, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of two noises, as A1111's variation seeds do it.

    low, high: (B, C, H, W); like A1111 (which works on one (C, H, W) image and normalises over its
    dim 1), vectors run along the height axis, so one (C, W) column pair gets one angle.
    """
    low_n = low / torch.linalg.vector_norm(low, dim=-2, keepdim=True)  # (B, C, H, W)
    high_n = high / torch.linalg.vector_norm(high, dim=-2, keepdim=True)
    dot = (low_n * high_n).sum(-2)  # (B, C, W)
    if dot.mean() > _LINEAR_DOT:
        return low * (1.0 - t) + high * t
    omega = torch.acos(dot.clamp(-1.0, 1.0))  # (B, C, W)
    so = torch.sin(omega)
    a = (torch.sin((1.0 - t) * omega) / so).unsqueeze(-2)  # (B, C, 1, W)
    b = (torch.sin(t * omega) / so).unsqueeze(-2)
    return a * low + b * high


def start_noise(seeds: Sequence[int], shape: Sequence[int], *, var_seeds: Sequence[int] | None = None,
                var_strength: float = 0.0, device: torch.device | str = "cpu",
                dtype: torch.dtype = torch.float32) -> tuple[GeneratorNoise, torch.Tensor]:
    """(per-step noise source, starting noise (B, *shape)): the seeds' first draws, slerped towards the
    variation seeds' draws by var_strength; later draws (ancestral samplers) come from the source."""
    source = GeneratorNoise.from_seeds(seeds, shape, device=device, dtype=dtype)
    noise = source.sample()  # (B, *shape)
    if var_seeds is not None and var_strength > 0.0:
        if len(var_seeds) != len(seeds):
            raise ValueError(f"{len(var_seeds)} variation seeds for {len(seeds)} images")
        other = GeneratorNoise.from_seeds(var_seeds, shape, device=device, dtype=torch.float32).sample()
        noise = slerp(var_strength, noise.float(), other).to(dtype)
    return source, noise
