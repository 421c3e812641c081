"""UniPC (Zhao et al. 2023, "UniPC: A Unified Predictor-Corrector Framework"), data-prediction form.

Written in EDM coordinates (alpha = 1, sigma = sigma, lambda = -log sigma); flow models reach it
through `edm_coordinates`. Matches diffusers' UniPCMultistepScheduler with predict_x0=True,
lower_order_final=True and no disabled correctors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from engine.sampling.core import Callback, Denoiser, NoiseSource, call_model, check_sigmas, check_state, edm_coordinates, report

VARIANTS = ("bh1", "bh2")


Matrix = list[list[float]]


def solve(rows: Matrix, b: list[float]) -> list[float]:
    """x with rows @ x = b, by Gaussian elimination with partial pivoting (the systems here are at most
    3 x 3: plain Python is several times faster than numpy's call overhead)."""
    n = len(b)
    a = [[*row, rhs] for row, rhs in zip(rows, b)]  # augmented copy
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        if a[pivot][col] == 0.0:
            raise ValueError("singular UniPC system: two noise levels coincide")
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(col + 1, n):
            f = a[r][col] / a[col][col]
            a[r] = [v - f * w for v, w in zip(a[r], a[col])]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (a[r][n] - sum(a[r][c] * x[c] for c in range(r + 1, n))) / a[r][r]
    return x


def _coefficients(rks: list[float], hh: float, order: int, variant: str) -> tuple[Matrix, list[float], float]:
    """(R, b, B(h)) of the UniPC linear system for nodes rks (the last one is 1)."""
    h_phi_1 = math.expm1(hh)
    h_phi_k = h_phi_1 / hh - 1.0
    b_h = hh if variant == "bh1" else math.expm1(hh)
    factorial = 1
    rows, b = [], []
    for k in range(1, order + 1):
        rows.append([rk ** (k - 1) for rk in rks])
        b.append(h_phi_k * factorial / b_h)
        factorial *= k + 1
        h_phi_k = h_phi_k / hh - 1.0 / factorial
    return rows, b, b_h


@dataclass(frozen=True)
class _Stage:
    """What a UniP step from s0 to t computed that the UniC correction at t reuses."""

    x_t: Tensor  # (B, ...) the first-order (DDIM) part of the step
    m0: Tensor  # (B, ...) the model output at s0
    d1s: list[Tensor]  # scaled differences to the older outputs
    rows: Matrix
    b: list[float]
    b_h: float
    order: int


def _predict(x: Tensor, sig_s0: float, sig_t: float, outputs: list[tuple[float, Tensor]], order: int,
             variant: str) -> tuple[Tensor, _Stage]:
    """One UniP step from sig_s0 to sig_t; outputs holds (sigma, denoised), newest (at sig_s0) first."""
    m0 = outputs[0][1]
    h = math.log(sig_s0 / sig_t)  # lambda_t - lambda_s0
    hh = -h
    rks = [math.log(sig_s0 / outputs[k][0]) / h for k in range(1, order)]  # (lambda_sk - lambda_s0) / h
    d1s = [(outputs[k][1] - m0) / rk for k, rk in zip(range(1, order), rks)]  # (B, ...) each
    rows, b, b_h = _coefficients([*rks, 1.0], hh, order, variant)
    x_t = torch.add(x * (sig_t / sig_s0), m0, alpha=-math.expm1(hh))
    stage = _Stage(x_t, m0, d1s, rows, b, b_h, order)
    if not d1s:
        return x_t, stage
    rhos = [0.5] if order == 2 else solve([r[:-1] for r in rows[:-1]], b[:-1])
    pred = x_t
    for d, rho in zip(d1s, rhos):
        pred = torch.add(pred, d, alpha=-b_h * rho)
    return pred, stage


def _correct(stage: _Stage, model_t: Tensor) -> Tensor:
    """The UniC correction of a step, given the model output at its end."""
    rhos_c = [0.5] if stage.order == 1 else solve(stage.rows, stage.b)
    out = torch.add(stage.x_t, model_t - stage.m0, alpha=-stage.b_h * rhos_c[-1])
    for d, rho in zip(stage.d1s, rhos_c[:-1]):
        out = torch.add(out, d, alpha=-stage.b_h * rho)
    return out


@torch.no_grad()
@edm_coordinates
def sample_unipc(
    model: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: Mapping[str, Any] | None = None,
    callback: Callback | None = None,
    generator: NoiseSource | None = None,
    order: int = 2,
    variant: str = "bh2",
) -> Tensor:
    """UniPC multistep predictor with the UniC corrector after every model call but the first."""
    check_state(x)
    if order not in (1, 2, 3):
        raise ValueError(f"unipc order must be 1, 2 or 3, got {order!r}")
    if variant not in VARIANTS:
        raise ValueError(f"unknown unipc variant {variant!r}; valid: {', '.join(VARIANTS)}")
    sig = check_sigmas(sigmas)
    n = len(sig) - 1
    outputs: list[tuple[float, Tensor]] = []  # (sigma, denoised), newest first
    stage: _Stage | None = None  # the last predictor step, which the corrector completes
    for i in range(n):
        denoised = call_model(model, x, sig[i], extra_args)
        if stage is not None:
            x = _correct(stage, denoised)
        report(callback, i, n, sig[i], x, denoised)
        outputs = [(sig[i], denoised), *outputs[: order - 1]]
        this_order = min(order, n - i, i + 1)  # warm-up, and lower order towards the end
        if sig[i + 1] == 0.0:
            x, stage = denoised, None  # the first-order step's limit at sigma = 0
        else:
            x, stage = _predict(x, sig[i], sig[i + 1], outputs, this_order, variant)
    return x
