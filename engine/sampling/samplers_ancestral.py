"""Ancestral and one-step samplers: each step denoises to a lower sigma, then adds fresh noise.

All are written in EDM coordinates (x = x0 + sigma * noise) and reach flow models through
`edm_coordinates`. Noise comes from the `generator` NoiseSource, so results are reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from engine.sampling.core import (
    Callback,
    Denoiser,
    NoiseSource,
    ancestral_step,
    call_model,
    check_sigmas,
    check_state,
    draw_noise,
    edm_coordinates,
    report,
)


def _check_eta(eta: float, s_noise: float) -> None:
    if not (math.isfinite(eta) and eta >= 0.0):
        raise ValueError(f"eta must be a finite number >= 0, got {eta!r}")
    if not (math.isfinite(s_noise) and s_noise >= 0.0):
        raise ValueError(f"s_noise must be a finite number >= 0, got {s_noise!r}")


def _ancestral_euler(
    model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: Mapping[str, Any] | None,
    callback: Callback | None, generator: NoiseSource | None, eta: float, s_noise: float, name: str,
) -> Tensor:
    """DDIM's generalized step (Song et al. 2021, eq. 12) in EDM form: Euler to sigma_down, renoise by sigma_up."""
    check_state(x)
    _check_eta(eta, s_noise)
    sig = check_sigmas(sigmas)
    for i in range(len(sig) - 1):
        sigma, sigma_next = sig[i], sig[i + 1]
        denoised = call_model(model, x, sigma, extra_args)
        report(callback, i, len(sig) - 1, sigma, x, denoised)
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next, eta)
        x = torch.lerp(denoised, x, sigma_down / sigma)  # (B, ...) Euler step to sigma_down
        if sigma_up > 0.0:
            x = x + draw_noise(generator, x, sigma, sigma_next, name) * (s_noise * sigma_up)
    return x


@torch.no_grad()
@edm_coordinates
def sample_euler_ancestral(
    model: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: Mapping[str, Any] | None = None,
    callback: Callback | None = None,
    generator: NoiseSource | None = None,
    eta: float = 1.0,
    s_noise: float = 1.0,
) -> Tensor:
    """Ancestral Euler (k-diffusion's sample_euler_ancestral; Ho et al. 2020 noise level at eta = 1)."""
    return _ancestral_euler(model, x, sigmas, extra_args, callback, generator, eta, s_noise, "euler_ancestral")


@torch.no_grad()
@edm_coordinates
def sample_ddim(
    model: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: Mapping[str, Any] | None = None,
    callback: Callback | None = None,
    generator: NoiseSource | None = None,
    eta: float = 0.0,
    s_noise: float = 1.0,
) -> Tensor:
    """DDIM (Song et al. 2021) with stochasticity eta: 0 is the deterministic ODE step, 1 is DDPM's."""
    return _ancestral_euler(model, x, sigmas, extra_args, callback, generator, eta, s_noise, "ddim")


@torch.no_grad()
@edm_coordinates
def sample_ddpm(
    model: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: Mapping[str, Any] | None = None,
    callback: Callback | None = None,
    generator: NoiseSource | None = None,
) -> Tensor:
    """Ancestral sampling from the DDPM posterior q(x_prev | x_t, x0) (Ho et al. 2020, eqs. 6-7)."""
    check_state(x)
    sig = check_sigmas(sigmas)
    for i in range(len(sig) - 1):
        sigma, sigma_next = sig[i], sig[i + 1]
        denoised = call_model(model, x, sigma, extra_args)
        report(callback, i, len(sig) - 1, sigma, x, denoised)
        abar, abar_prev = 1.0 / (1.0 + sigma**2), 1.0 / (1.0 + sigma_next**2)  # VP cumulative alphas
        alpha = abar / abar_prev
        beta = 1.0 - alpha
        x_vp = x * math.sqrt(abar)  # (B, ...) the VP state
        mean = denoised * (math.sqrt(abar_prev) * beta / (1.0 - abar)) + x_vp * (
            math.sqrt(alpha) * (1.0 - abar_prev) / (1.0 - abar)
        )
        if sigma_next > 0.0:
            variance = (1.0 - abar_prev) / (1.0 - abar) * beta
            mean = mean + draw_noise(generator, x, sigma, sigma_next, "ddpm") * math.sqrt(variance)
        x = mean / math.sqrt(abar_prev)
    return x


@torch.no_grad()
@edm_coordinates
def sample_lcm(
    model: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: Mapping[str, Any] | None = None,
    callback: Callback | None = None,
    generator: NoiseSource | None = None,
) -> Tensor:
    """Latent consistency multistep sampling (Luo et al. 2023, Algorithm 1): jump to x0, renoise to the next sigma."""
    check_state(x)
    sig = check_sigmas(sigmas)
    for i in range(len(sig) - 1):
        denoised = call_model(model, x, sig[i], extra_args)
        report(callback, i, len(sig) - 1, sig[i], x, denoised)
        x = denoised
        if sig[i + 1] > 0.0:
            x = x + draw_noise(generator, x, sig[i], sig[i + 1], "lcm") * sig[i + 1]
    return x


@torch.no_grad()
@edm_coordinates
def sample_dpm_2_ancestral(
    model: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: Mapping[str, Any] | None = None,
    callback: Callback | None = None,
    generator: NoiseSource | None = None,
    eta: float = 1.0,
    s_noise: float = 1.0,
) -> Tensor:
    """Ancestral DPM-Solver-2 (k-diffusion's sample_dpm_2_ancestral): DPM2 to sigma_down, then renoise."""
    check_state(x)
    _check_eta(eta, s_noise)
    sig = check_sigmas(sigmas)
    for i in range(len(sig) - 1):
        sigma, sigma_next = sig[i], sig[i + 1]
        denoised = call_model(model, x, sigma, extra_args)
        report(callback, i, len(sig) - 1, sigma, x, denoised)
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next, eta)
        d = (x - denoised) / sigma
        if sigma_down == 0.0:
            x = x + d * (sigma_down - sigma)
            continue
        sigma_mid = math.sqrt(sigma * sigma_down)
        x_2 = x + d * (sigma_mid - sigma)
        denoised_2 = call_model(model, x_2, sigma_mid, extra_args)
        x = x + (x_2 - denoised_2) * ((sigma_down - sigma) / sigma_mid)
        if sigma_up > 0.0:
            x = x + draw_noise(generator, x, sigma, sigma_next, "dpm_2_ancestral") * (s_noise * sigma_up)
    return x


@torch.no_grad()
@edm_coordinates
def sample_dpmpp_2s_ancestral(
    model: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: Mapping[str, Any] | None = None,
    callback: Callback | None = None,
    generator: NoiseSource | None = None,
    eta: float = 1.0,
    s_noise: float = 1.0,
) -> Tensor:
    """Ancestral single-step DPM-Solver++(2S) (Lu et al. 2022b; k-diffusion's sample_dpmpp_2s_ancestral)."""
    check_state(x)
    _check_eta(eta, s_noise)
    sig = check_sigmas(sigmas)
    for i in range(len(sig) - 1):
        sigma, sigma_next = sig[i], sig[i + 1]
        denoised = call_model(model, x, sigma, extra_args)
        report(callback, i, len(sig) - 1, sigma, x, denoised)
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next, eta)
        if sigma_down == 0.0:
            x = denoised
        else:
            sigma_mid = math.sqrt(sigma * sigma_down)  # r = 1/2 in lambda = -log sigma
            x_2 = torch.lerp(denoised, x, sigma_mid / sigma)
            denoised_2 = call_model(model, x_2, sigma_mid, extra_args)
            x = torch.lerp(denoised_2, x, sigma_down / sigma)
        if sigma_up > 0.0:
            x = x + draw_noise(generator, x, sigma, sigma_next, "dpmpp_2s_ancestral") * (s_noise * sigma_up)
    return x
