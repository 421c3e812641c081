"""DPM-Solver++ samplers (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling").

Exponential integrators in lambda = -log sigma, written in EDM coordinates as in k-diffusion;
flow models reach them through `edm_coordinates`, where lambda is the flow's half log-SNR.
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
from engine.sampling.samplers_ancestral import _check_eta

SOLVER_TYPES = ("midpoint", "heun")


@torch.no_grad()
@edm_coordinates
def sample_dpmpp_2m(
    model: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: Mapping[str, Any] | None = None,
    callback: Callback | None = None,
    generator: NoiseSource | None = None,
) -> Tensor:
    """DPM-Solver++(2M), the second-order multistep data-prediction solver (Lu et al. 2022, Algorithm 2)."""
    check_state(x)
    sig = check_sigmas(sigmas)
    old_denoised: Tensor | None = None
    for i in range(len(sig) - 1):
        sigma, sigma_next = sig[i], sig[i + 1]
        denoised = call_model(model, x, sigma, extra_args)
        report(callback, i, len(sig) - 1, sigma, x, denoised)
        if old_denoised is None or sigma_next == 0.0:
            target = denoised  # first order: DDIM
        else:
            r = math.log(sig[i - 1] / sigma) / math.log(sigma / sigma_next)  # h_last / h
            target = denoised * (1.0 + 1.0 / (2.0 * r)) - old_denoised * (1.0 / (2.0 * r))
        x = torch.lerp(target, x, sigma_next / sigma)  # exact exponential integrator for constant target
        old_denoised = denoised
    return x


@torch.no_grad()
@edm_coordinates
def sample_dpmpp_2m_sde(
    model: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: Mapping[str, Any] | None = None,
    callback: Callback | None = None,
    generator: NoiseSource | None = None,
    eta: float = 1.0,
    s_noise: float = 1.0,
    solver_type: str = "midpoint",
) -> Tensor:
    """Second-order multistep SDE-DPM-Solver++(2M) (Lu et al. 2022, Appendix; k-diffusion's dpmpp_2m_sde)."""
    check_state(x)
    _check_eta(eta, s_noise)
    if solver_type not in SOLVER_TYPES:
        raise ValueError(f"unknown solver_type {solver_type!r}; valid: {', '.join(SOLVER_TYPES)}")
    sig = check_sigmas(sigmas)
    old_denoised: Tensor | None = None
    h_last = 0.0
    for i in range(len(sig) - 1):
        sigma, sigma_next = sig[i], sig[i + 1]
        denoised = call_model(model, x, sigma, extra_args)
        report(callback, i, len(sig) - 1, sigma, x, denoised)
        if sigma_next == 0.0:
            x = denoised
            continue
        h = math.log(sigma / sigma_next)
        eta_h = eta * h
        phi = -math.expm1(-h - eta_h)
        x = x * (sigma_next / sigma * math.exp(-eta_h)) + denoised * phi
        if old_denoised is not None:
            diff = (denoised - old_denoised) * (h / h_last)  # (D_0 - D_1) / r
            coeff = 0.5 * phi if solver_type == "midpoint" else phi / (-h - eta_h) + 1.0
            x = x + diff * coeff
        if eta > 0.0 and s_noise > 0.0:
            noise = draw_noise(generator, x, sigma, sigma_next, "dpmpp_2m_sde")
            x = x + noise * (sigma_next * math.sqrt(-math.expm1(-2.0 * eta_h)) * s_noise)
        old_denoised, h_last = denoised, h
    return x


@torch.no_grad()
@edm_coordinates
def sample_dpmpp_3m_sde(
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
    """Third-order multistep SDE-DPM-Solver++(3M) (k-diffusion's sample_dpmpp_3m_sde)."""
    check_state(x)
    _check_eta(eta, s_noise)
    sig = check_sigmas(sigmas)
    history: list[tuple[Tensor, float]] = []  # (denoised, h) of the last two steps, newest first
    for i in range(len(sig) - 1):
        sigma, sigma_next = sig[i], sig[i + 1]
        denoised = call_model(model, x, sigma, extra_args)
        report(callback, i, len(sig) - 1, sigma, x, denoised)
        if sigma_next == 0.0:
            x = denoised
            continue
        h = math.log(sigma / sigma_next)
        h_eta = h * (eta + 1.0)
        x = x * math.exp(-h_eta) + denoised * (-math.expm1(-h_eta))
        phi_2 = math.expm1(-h_eta) / h_eta + 1.0
        if len(history) == 2:
            (d_1, h_1), (d_2, h_2) = history
            r0, r1 = h_1 / h, h_2 / h
            d1_0 = (denoised - d_1) / r0
            d1_1 = (d_1 - d_2) / r1
            d1 = d1_0 + (d1_0 - d1_1) * (r0 / (r0 + r1))
            d2 = (d1_0 - d1_1) / (r0 + r1)
            phi_3 = phi_2 / h_eta - 0.5
            x = x + d1 * phi_2 - d2 * phi_3
        elif len(history) == 1:
            d_1, h_1 = history[0]
            x = x + (denoised - d_1) * (h / h_1 * phi_2)
        if eta > 0.0 and s_noise > 0.0:
            noise = draw_noise(generator, x, sigma, sigma_next, "dpmpp_3m_sde")
            x = x + noise * (sigma_next * math.sqrt(-math.expm1(-2.0 * h * eta)) * s_noise)
        history = [(denoised, h), *history[:1]]
    return x


@torch.no_grad()
@edm_coordinates
def sample_dpmpp_sde(
    model: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: Mapping[str, Any] | None = None,
    callback: Callback | None = None,
    generator: NoiseSource | None = None,
    eta: float = 1.0,
    s_noise: float = 1.0,
    r: float = 0.5,
) -> Tensor:
    """Single-step stochastic DPM-Solver++ with an intermediate stage at ratio r (k-diffusion's dpmpp_sde)."""
    check_state(x)
    _check_eta(eta, s_noise)
    if not 0.0 < r < 1.0:
        raise ValueError(f"r must lie strictly between 0 and 1, got {r!r}")
    sig = check_sigmas(sigmas)
    for i in range(len(sig) - 1):
        sigma, sigma_next = sig[i], sig[i + 1]
        denoised = call_model(model, x, sigma, extra_args)
        report(callback, i, len(sig) - 1, sigma, x, denoised)
        if sigma_next == 0.0:
            x = denoised
            continue
        sigma_s = sigma * (sigma_next / sigma) ** r  # exp(-(t + r h)), t = -log sigma
        sd, su = ancestral_step(sigma, sigma_s, eta)
        x_2 = torch.lerp(denoised, x, sd / sigma)
        if su > 0.0:
            x_2 = x_2 + draw_noise(generator, x, sigma, sigma_s, "dpmpp_sde") * (s_noise * su)
        denoised_2 = call_model(model, x_2, sigma_s, extra_args)
        fac = 1.0 / (2.0 * r)
        target = denoised * (1.0 - fac) + denoised_2 * fac
        sd, su = ancestral_step(sigma, sigma_next, eta)
        x = torch.lerp(target, x, sd / sigma)
        if su > 0.0:
            x = x + draw_noise(generator, x, sigma, sigma_next, "dpmpp_sde") * (s_noise * su)
    return x
