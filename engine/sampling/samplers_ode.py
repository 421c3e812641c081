"""Deterministic solvers of the probability-flow ODE dx/dsigma = (x - D) / sigma in sigma.

These run in the model's own space (EDM or flow), where the ODE has the same form; on a flow model
Euler and Heun are exactly the flow-matching Euler and Heun solvers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from engine.sampling.core import Callback, Denoiser, NoiseSource, call_model, check_sigmas, check_state, report


@torch.no_grad()
def sample_euler(
    model: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: Mapping[str, Any] | None = None,
    callback: Callback | None = None,
    generator: NoiseSource | None = None,
) -> Tensor:
    """Euler's method (Karras et al. 2022, Algorithm 2 without churn); equals DDIM with eta = 0."""
    check_state(x)
    sig = check_sigmas(sigmas)
    for i in range(len(sig) - 1):
        denoised = call_model(model, x, sig[i], extra_args)
        report(callback, i, len(sig) - 1, sig[i], x, denoised)
        x = torch.lerp(denoised, x, sig[i + 1] / sig[i])  # exact when D is constant
    return x


@torch.no_grad()
def sample_heun(
    model: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: Mapping[str, Any] | None = None,
    callback: Callback | None = None,
    generator: NoiseSource | None = None,
) -> Tensor:
    """Heun's second-order method (Karras et al. 2022, Algorithm 1); the step to sigma = 0 is Euler."""
    check_state(x)
    sig = check_sigmas(sigmas)
    for i in range(len(sig) - 1):
        sigma, sigma_next = sig[i], sig[i + 1]
        denoised = call_model(model, x, sigma, extra_args)
        report(callback, i, len(sig) - 1, sigma, x, denoised)
        d = (x - denoised) / sigma  # (B, ...) dx/dsigma
        x_next = x + d * (sigma_next - sigma)
        if sigma_next == 0.0:
            x = x_next
            continue
        denoised_2 = call_model(model, x_next, sigma_next, extra_args)
        d_2 = (x_next - denoised_2) / sigma_next
        x = x + (d + d_2) * (0.5 * (sigma_next - sigma))
    return x


@torch.no_grad()
def sample_dpm_2(
    model: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: Mapping[str, Any] | None = None,
    callback: Callback | None = None,
    generator: NoiseSource | None = None,
) -> Tensor:
    """DPM-Solver-2 in sigma with a log-midpoint stage (Lu et al. 2022, as in k-diffusion's sample_dpm_2)."""
    check_state(x)
    sig = check_sigmas(sigmas)
    for i in range(len(sig) - 1):
        sigma, sigma_next = sig[i], sig[i + 1]
        denoised = call_model(model, x, sigma, extra_args)
        report(callback, i, len(sig) - 1, sigma, x, denoised)
        d = (x - denoised) / sigma
        if sigma_next == 0.0:
            x = x + d * (sigma_next - sigma)
            continue
        sigma_mid = (sigma * sigma_next) ** 0.5  # geometric mean: midpoint in log sigma
        x_2 = x + d * (sigma_mid - sigma)
        denoised_2 = call_model(model, x_2, sigma_mid, extra_args)
        x = x + (x_2 - denoised_2) * ((sigma_next - sigma) / sigma_mid)
    return x


def lms_coefficient(sigmas: list[float], i: int, order: int, j: int) -> float:
    """Integral over [sigmas[i], sigmas[i+1]] of the Lagrange basis polynomial j through sigmas[i-order+1..i]."""
    nodes = [sigmas[i - k] for k in range(order)]  # node k is the derivative from k steps back
    coeffs = [1.0]  # the basis polynomial, lowest power first
    for k, node in enumerate(nodes):
        if k != j:
            scale = 1.0 / (nodes[j] - node)
            shifted = [0.0, *coeffs]  # times sigma
            coeffs = [(shifted[p] - node * (coeffs[p] if p < len(coeffs) else 0.0)) * scale
                      for p in range(len(shifted))]

    def antiderivative(s: float) -> float:
        return sum(c * s ** (p + 1) / (p + 1) for p, c in enumerate(coeffs))

    return antiderivative(sigmas[i + 1]) - antiderivative(sigmas[i])


@torch.no_grad()
def sample_lms(
    model: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: Mapping[str, Any] | None = None,
    callback: Callback | None = None,
    generator: NoiseSource | None = None,
    order: int = 4,
) -> Tensor:
    """Linear multistep (Adams-Bashforth on non-uniform sigmas), as in k-diffusion's sample_lms."""
    check_state(x)
    sig = check_sigmas(sigmas)
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ValueError(f"lms order must be an integer >= 1, got {order!r}")
    derivatives: list[Tensor] = []  # newest last
    for i in range(len(sig) - 1):
        denoised = call_model(model, x, sig[i], extra_args)
        report(callback, i, len(sig) - 1, sig[i], x, denoised)
        derivatives.append((x - denoised) / sig[i])
        if len(derivatives) > order:
            derivatives.pop(0)
        cur_order = len(derivatives)
        for j in range(cur_order):
            x = torch.add(x, derivatives[-1 - j], alpha=lms_coefficient(sig, i, cur_order, j))
    return x
