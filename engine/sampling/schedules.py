"""Noise schedules: `fn(levels, steps, **options) -> sigmas` (steps + 1 values, decreasing, ending in 0).

`levels` is the model's `NoiseLevels` table (engine.sampling.wrappers); schedules that only need a
range use its sigma_min/sigma_max. Values are float64 on the CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from engine.sampling.core import Space, check_steps
from engine.sampling.wrappers import NoiseLevels

ScheduleFn = Callable[..., Tensor]


def _append_zero(sigmas: Tensor) -> Tensor:
    return torch.cat([sigmas.to(torch.float64), sigmas.new_zeros(1, dtype=torch.float64)])


def _range(levels: NoiseLevels, sigma_min: float | None, sigma_max: float | None) -> tuple[float, float]:
    lo = levels.sigma_min if sigma_min is None else float(sigma_min)
    hi = levels.sigma_max if sigma_max is None else float(sigma_max)
    if not (0 < lo < hi and math.isfinite(hi)):
        raise ValueError(f"need 0 < sigma_min < sigma_max < inf, got sigma_min={lo}, sigma_max={hi}")
    return lo, hi


def karras(levels: NoiseLevels, steps: int, *, rho: float = 7.0, sigma_min: float | None = None,
           sigma_max: float | None = None) -> Tensor:
    """Karras et al. 2022, eq. 5: uniform in sigma^(1/rho)."""
    check_steps(steps)
    lo, hi = _range(levels, sigma_min, sigma_max)
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    sigmas = (hi ** (1 / rho) + ramp * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
    return _append_zero(sigmas)


def exponential(levels: NoiseLevels, steps: int, *, sigma_min: float | None = None,
                sigma_max: float | None = None) -> Tensor:
    """Uniform in log sigma (k-diffusion's get_sigmas_exponential)."""
    check_steps(steps)
    lo, hi = _range(levels, sigma_min, sigma_max)
    return _append_zero(torch.linspace(math.log(hi), math.log(lo), steps, dtype=torch.float64).exp())


def polyexponential(levels: NoiseLevels, steps: int, *, rho: float = 1.0, sigma_min: float | None = None,
                    sigma_max: float | None = None) -> Tensor:
    """Polynomial in log sigma (k-diffusion's get_sigmas_polyexponential); rho = 1 is exponential."""
    check_steps(steps)
    lo, hi = _range(levels, sigma_min, sigma_max)
    ramp = torch.linspace(1, 0, steps, dtype=torch.float64) ** rho
    return _append_zero((ramp * (math.log(hi) - math.log(lo)) + math.log(lo)).exp())


def simple(levels: NoiseLevels, steps: int) -> Tensor:
    """Every (T / steps)-th training sigma from the top (ComfyUI's "simple")."""
    check_steps(steps)
    n = levels.sigmas.numel()
    stride = n / steps
    return _append_zero(torch.stack([levels.sigmas[-(1 + int(i * stride))] for i in range(steps)]))


def _uniform_timesteps(levels: NoiseLevels, steps: int, sgm: bool) -> Tensor:
    start = float(levels.timestep(torch.tensor([levels.sigma_max]))[0])
    end = float(levels.timestep(torch.tensor([levels.sigma_min]))[0])
    if sgm:
        timesteps = torch.linspace(start, end, steps + 1, dtype=torch.float64)[:-1]
    else:
        timesteps = torch.linspace(start, end, steps, dtype=torch.float64)
    return _append_zero(levels.sigma_at(timesteps))


def normal(levels: NoiseLevels, steps: int) -> Tensor:
    """Uniform in timestep from the first to the last training step (A1111's "Automatic"/k-diffusion's default)."""
    check_steps(steps)
    return _uniform_timesteps(levels, steps, sgm=False)


def sgm_uniform(levels: NoiseLevels, steps: int) -> Tensor:
    """Uniform in timestep, leaving out the last training step (Stability's sgm samplers)."""
    check_steps(steps)
    return _uniform_timesteps(levels, steps, sgm=True)


def ddim_uniform(levels: NoiseLevels, steps: int, *, steps_offset: int = 1) -> Tensor:
    """DDIM's "leading" timesteps i * (T // steps) + offset (Song et al. 2021; diffusers' DDIMScheduler)."""
    check_steps(steps)
    n = levels.sigmas.numel()
    if steps > n:
        raise ValueError(f"ddim_uniform needs steps <= {n} (the training timesteps), got {steps}")
    stride = n // steps
    timesteps = [min(i * stride + steps_offset, n - 1) for i in range(steps)][::-1]
    return _append_zero(levels.sigmas[timesteps])


def beta_ppf(q: float, a: float, b: float) -> float:
    """Quantile of the Beta(a, b) distribution, by bisection on the regularized incomplete beta."""
    if q <= 0.0:
        return 0.0
    if q >= 1.0:
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _betainc(a, b, mid) < q else (lo, mid)
    return 0.5 * (lo + hi)


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b) by Lentz's continued fraction (Numerical Recipes 6.4)."""
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    if x > (a + 1) / (a + b + 2):
        return 1.0 - _betainc(b, a, 1.0 - x)
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    f = d
    for m in range(1, 300):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            f *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return math.exp(log_front) * f / a


def beta(levels: NoiseLevels, steps: int, *, alpha: float = 0.6, beta: float = 0.6) -> Tensor:
    """Timesteps at Beta(alpha, beta) quantiles (Lee et al. 2024, "Beta Sampling is All You Need";
    ComfyUI's beta scheduler, repeated timesteps dropped)."""
    check_steps(steps)
    if not (alpha > 0 and beta > 0):
        raise ValueError(f"beta schedule needs alpha > 0 and beta > 0, got {alpha}, {beta}")
    total = levels.sigmas.numel() - 1
    picked: list[int] = []
    for i in range(steps):
        t = round(beta_ppf(1.0 - i / steps, alpha, beta) * total)
        if not picked or t != picked[-1]:
            picked.append(t)
    return _append_zero(levels.sigmas[picked])


def shift_time(t: Tensor, shift: float) -> Tensor:
    """The resolution shift t' = a t / (1 + (a - 1) t) of flow models (Esser et al. 2024, eq. 23)."""
    return shift * t / (1 + (shift - 1) * t)


def resolution_shift(image_seq_len: int, *, base_seq_len: int = 256, max_seq_len: int = 4096,
                     base_shift: float = 0.5, max_shift: float = 1.15) -> float:
    """The shift a = exp(mu) for an image of image_seq_len latent tokens, mu linear in the length (Flux)."""
    slope = (max_shift - base_shift) / (max_seq_len - base_seq_len)
    return math.exp(base_shift + slope * (image_seq_len - base_seq_len))


def flow_shift(levels: NoiseLevels, steps: int, *, shift: float | None = None) -> Tensor:
    """Flow times linspace(1, 1/steps) under the resolution shift (diffusers' SD3/Flux pipelines)."""
    check_steps(steps)
    if levels.space is not Space.FLOW:
        raise ValueError("the flow_shift schedule needs a flow model (NoiseLevels.flow)")
    a = levels.shift if shift is None else float(shift)
    if a is None or not (math.isfinite(a) and a > 0):
        raise ValueError(f"flow shift must be a finite number > 0, got {a!r}")
    t = torch.linspace(1.0, 1.0 / steps, steps, dtype=torch.float64)
    return _append_zero(shift_time(t, a))


SCHEDULES: dict[str, ScheduleFn] = {
    "karras": karras,
    "exponential": exponential,
    "polyexponential": polyexponential,
    "simple": simple,
    "normal": normal,
    "sgm_uniform": sgm_uniform,
    "ddim_uniform": ddim_uniform,
    "beta": beta,
    "flow_shift": flow_shift,
}
