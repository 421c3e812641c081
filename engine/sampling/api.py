"""The one call the pipeline makes: seeded noise, img2img start, inpaint masking, cancel, progress."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from engine.sampling.core import (
    Callback,
    CancelToken,
    Denoiser,
    GeneratorNoise,
    NoiseSource,
    Space,
    check_sigmas,
    space_of,
)
from engine.sampling.registry import check_options, get_sampler


def img2img_sigmas(sigmas: Tensor, denoise: float) -> Tensor:
    """The tail of a schedule that img2img runs: the last int(steps * denoise) steps (diffusers' rule)."""
    if not 0.0 <= denoise <= 1.0:
        raise ValueError(f"denoise strength must lie in [0, 1], got {denoise}")
    steps = len(check_sigmas(sigmas)) - 1
    run = min(int(steps * denoise), steps)
    return sigmas[steps - run:]


class _Cancellable:
    """Checks a cancel token before every model call."""

    def __init__(self, model: Denoiser, token: CancelToken) -> None:
        self.model, self.token = model, token
        self.space = space_of(model)

    def __call__(self, x: Tensor, sigma: Tensor, **cond: Any) -> Tensor:
        self.token.raise_if_cancelled()
        return self.model(x, sigma, **cond)


class InpaintDenoiser:
    """Re-imposes the known region at each call's noise level (k-diffusion/ComfyUI style inpainting):
    outside the mask the state is the init latent noised with the run's initial noise."""

    def __init__(self, model: Denoiser, init: Tensor, mask: Tensor, noise: Tensor) -> None:
        self.model, self.init, self.mask, self.noise = model, init, mask, noise  # mask: 1 = repaint
        self.space = space_of(model)

    def __call__(self, x: Tensor, sigma: Tensor, **cond: Any) -> Tensor:
        s = sigma.to(x.dtype).reshape(-1, *([1] * (x.ndim - 1)))  # (B, 1, ...)
        alpha = torch.ones_like(s) if self.space is Space.EDM else 1.0 - s
        known = self.init * alpha + self.noise * s
        x = x * self.mask + known * (1.0 - self.mask)
        denoised = self.model(x, sigma, **cond)
        return denoised * self.mask + self.init * (1.0 - self.mask)


def check_mask(mask: Tensor, x_shape: torch.Size) -> Tensor:
    """A mask broadcastable to the latent batch, values in [0, 1]; (H, W), (B|1, 1|C, H, W)."""
    if mask.ndim == 2:
        mask = mask[None, None]
    if mask.ndim != 4 or mask.shape[-2:] != x_shape[-2:] or mask.shape[0] not in (1, x_shape[0]) \
            or mask.shape[1] not in (1, x_shape[1]):
        raise ValueError(f"mask shape {tuple(mask.shape)} does not fit latents {tuple(x_shape)}")
    if not torch.isfinite(mask).all() or mask.min() < 0 or mask.max() > 1:
        raise ValueError("mask values must lie in [0, 1]")
    return mask


def sample_from(
    model: Denoiser,
    sigmas: Tensor,
    *,
    sampler: str,
    first_noise: Tensor,
    source: NoiseSource,
    options: Mapping[str, Any] | None = None,
    extra_args: Mapping[str, Any] | None = None,
    init: Tensor | None = None,
    mask: Tensor | None = None,
    cancel: CancelToken | None = None,
    callback: Callback | None = None,
) -> Tensor:
    """Run a named sampler from a given unit starting noise (B, ...) and return the latents.

    sigmas is the schedule the run takes (for img2img already cut by `img2img_sigmas`); init (B, ...)
    is noised to sigmas[0] with first_noise; mask (1 = repaint) needs init; source gives the per-step
    noise of stochastic samplers. Callers with seeds use `sample`.
    """
    fn = get_sampler(sampler)
    check_options(sampler, options or {})
    if init is not None and init.shape != first_noise.shape:
        raise ValueError(f"init latents have shape {tuple(init.shape)}, expected {tuple(first_noise.shape)}")
    if mask is not None and init is None:
        raise ValueError("inpainting (mask) needs init latents")
    if init is not None and isinstance(sigmas, Tensor) and sigmas.ndim == 1 and len(sigmas) == 1:
        return init  # the denoise strength selects no step: the image stays as it is
    check_sigmas(sigmas)
    space = space_of(model)
    sigma_0 = float(sigmas[0])
    x = space.noised(init, first_noise, sigma_0) if init is not None else first_noise * sigma_0  # (B, ...)
    if mask is not None:
        mask = check_mask(mask.to(x.device, x.dtype), x.shape)
        model = InpaintDenoiser(model, init, mask, first_noise)  # type: ignore[arg-type]
    if cancel is not None:
        model = _Cancellable(model, cancel)
    out = fn(model, x, sigmas, extra_args=extra_args, callback=callback, generator=source, **(options or {}))
    if mask is not None:
        out = out * mask + init * (1.0 - mask)  # type: ignore[operator]
    return out


def sample(
    model: Denoiser,
    sigmas: Tensor,
    *,
    sampler: str,
    seeds: Sequence[int],
    shape: Sequence[int],
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    options: Mapping[str, Any] | None = None,
    extra_args: Mapping[str, Any] | None = None,
    init: Tensor | None = None,
    denoise: float = 1.0,
    mask: Tensor | None = None,
    cancel: CancelToken | None = None,
    callback: Callback | None = None,
    noise: NoiseSource | None = None,
) -> Tensor:
    """Run a named sampler from seeded noise and return the latents (B, *shape).

    seeds: one per image (usually seed, seed + 1, ...); each image's initial and per-step noise
    come from its own CPU generator. init: (B, *shape) latents for img2img/inpaint, started at the
    sigma that `denoise` selects. mask: 1 where to repaint (needs init). noise: overrides the
    per-step noise source (e.g. a Brownian tree); the initial noise still comes from the seeds.
    """
    check_sigmas(sigmas)
    source = GeneratorNoise.from_seeds(seeds, shape, device=device, dtype=dtype)
    if init is not None:
        if tuple(init.shape) != source.batch_shape:
            raise ValueError(f"init latents have shape {tuple(init.shape)}, expected {source.batch_shape}")
        sigmas = img2img_sigmas(sigmas, denoise)
        init = init.to(device, dtype)
    first_noise = source.sample()  # (B, *shape)
    return sample_from(model, sigmas, sampler=sampler, first_noise=first_noise, source=noise or source,
                       options=options, extra_args=extra_args, init=init, mask=mask, cancel=cancel,
                       callback=callback)
