"""Adapters from real models to the denoiser contract, with their noise-level tables.

- `EpsDenoiser` / `VDenoiser`: discrete-time VP models predicting eps (SD1.x, SDXL) or v (SD2.x-v)
  (Ho et al. 2020; Salimans & Ho 2022), seen in EDM form: sigma = sqrt((1 - abar) / abar),
  x_edm = x_vp / sqrt(abar) (Karras et al. 2022, Table 1; k-diffusion's CompVisDenoiser).
- `FlowDenoiser`: rectified-flow models predicting v = noise - x0 with x_t = (1 - t) x0 + t noise
  (Liu et al. 2022; Esser et al. 2024), in flow space with sigma = t.
- `LCMBoundary`: the consistency-model output parameterization of LCM-distilled models.

A model function is `model_fn(x_in, timestep, **cond) -> prediction` with timestep (B,) float32;
for diffusers modules that is `lambda x, t, **c: unet(x, t, **c).sample`.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from engine.sampling.core import Space

ModelFn = Callable[..., Tensor]
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2", "cosine")
PREDICTION_TYPES = ("epsilon", "v_prediction", "flow")


def make_betas(kind: str, num_train_timesteps: int = 1000, beta_start: float = 0.00085,
               beta_end: float = 0.012) -> Tensor:
    """The training betas (T,) of a VP model: linear (Ho et al. 2020), scaled_linear (Stable Diffusion)
    or cosine (Nichol & Dhariwal 2021, alpha_bar capped at beta 0.999)."""
    if num_train_timesteps < 2:
        raise ValueError(f"num_train_timesteps must be >= 2, got {num_train_timesteps}")
    n = num_train_timesteps
    if kind == "linear":
        return torch.linspace(beta_start, beta_end, n, dtype=torch.float64)
    if kind == "scaled_linear":
        return torch.linspace(beta_start**0.5, beta_end**0.5, n, dtype=torch.float64) ** 2
    if kind in ("squaredcos_cap_v2", "cosine"):
        def abar(t: float) -> float:
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
        betas = [min(1 - abar((i + 1) / n) / abar(i / n), 0.999) for i in range(n)]
        return torch.tensor(betas, dtype=torch.float64)
    raise ValueError(f"unknown beta schedule {kind!r}; valid: {', '.join(BETA_SCHEDULES)}")


class NoiseLevels:
    """A model's table of training noise levels, sigmas[timestep] increasing, with log-sigma
    interpolation between entries (k-diffusion's DiscreteSchedule)."""

    def __init__(self, sigmas: Tensor, space: Space = Space.EDM, shift: float | None = None) -> None:
        sigmas = torch.as_tensor(sigmas, dtype=torch.float64).flatten()
        if sigmas.numel() < 2 or not torch.isfinite(sigmas).all() or (sigmas <= 0).any():
            raise ValueError("a noise-level table needs >= 2 finite positive sigmas")
        if not (sigmas[1:] > sigmas[:-1]).all():
            raise ValueError("a noise-level table must increase with the timestep")
        self.sigmas = sigmas  # (T,)
        self.log_sigmas = sigmas.log()
        self._log_list = self.log_sigmas.tolist()  # for the per-call scalar lookup
        self.space = space
        self.shift = shift  # the flow shift the table was built with, None for VP tables

    @classmethod
    def from_betas(cls, betas: Tensor) -> NoiseLevels:
        """The VP table sigma_t = sqrt((1 - abar_t) / abar_t)."""
        abar = torch.cumprod(1.0 - torch.as_tensor(betas, dtype=torch.float64), dim=0)
        return cls(((1.0 - abar) / abar).sqrt())

    @classmethod
    def flow(cls, shift: float = 1.0, num_train_timesteps: int = 1000) -> NoiseLevels:
        """The flow table t_j = shift((j + 1) / T), as diffusers' FlowMatchEulerDiscreteScheduler builds it."""
        if not (math.isfinite(shift) and shift > 0):
            raise ValueError(f"flow shift must be a finite number > 0, got {shift!r}")
        t = torch.arange(1, num_train_timesteps + 1, dtype=torch.float64) / num_train_timesteps
        return cls(shift * t / (1 + (shift - 1) * t), Space.FLOW, shift)

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])

    def timestep(self, sigma: Tensor) -> Tensor:
        """Continuous timestep of each sigma (diffusers' _sigma_to_t); sigma outside the table maps
        to its end, where the model is defined."""
        log_sigma = torch.as_tensor(sigma, dtype=torch.float64).log()  # (B,)
        low = (torch.searchsorted(self.log_sigmas, log_sigma, right=True) - 1).clamp(0, self.sigmas.numel() - 2)
        lo, hi = self.log_sigmas[low], self.log_sigmas[low + 1]
        w = ((lo - log_sigma) / (lo - hi)).clamp(0, 1)
        return low + w  # (B,) float64

    def timestep_of(self, sigma: float) -> float:
        """`timestep` for one sigma, in plain Python (a model call needs it every step; this is ~50x
        cheaper than the tensor version and gives the same float64 value)."""
        logs = self._log_list
        log_sigma = math.log(sigma) if sigma > 0 else -math.inf
        low = min(max(bisect.bisect_right(logs, log_sigma) - 1, 0), len(logs) - 2)
        lo, hi = logs[low], logs[low + 1]
        return low + min(max((lo - log_sigma) / (lo - hi), 0.0), 1.0)

    def sigma_at(self, timestep: Tensor) -> Tensor:
        """Sigma at a continuous timestep, interpolating log sigma."""
        t = torch.as_tensor(timestep, dtype=torch.float64).clamp(0, self.sigmas.numel() - 1)
        low = t.floor().long().clamp(max=self.sigmas.numel() - 2)
        w = t - low
        return ((1 - w) * self.log_sigmas[low] + w * self.log_sigmas[low + 1]).exp()


def _bcast(v: Tensor, x: Tensor) -> Tensor:
    return v.to(x.dtype).reshape(-1, *([1] * (x.ndim - 1)))  # (B, 1, ...)


def _scale(values: list[float], sigma: Tensor, x: Tensor) -> Tensor | float:
    """sigma as a factor for x: a Python float when the whole batch shares it (the usual case, and
    cheaper than a broadcast tensor), else (B, 1, ...)."""
    if all(v == values[0] for v in values):
        return values[0]
    return _bcast(sigma, x)


class _VPDenoiser:
    space = Space.EDM

    def __init__(self, model_fn: ModelFn, levels: NoiseLevels, *, quantize: bool = False) -> None:
        if levels.space is not Space.EDM:
            raise ValueError("a VP model needs a VP noise-level table (NoiseLevels.from_betas)")
        self.model_fn = model_fn
        self.levels = levels
        self.quantize = quantize  # round timesteps to the training grid (diffusers' DPM-Solver/UniPC do)

    def model_timestep(self, sigma: Tensor | list[float]) -> Tensor:
        """The model's timestep for each sigma (B,), float32 (on sigma's device for a tensor)."""
        values = sigma.detach().tolist() if isinstance(sigma, Tensor) else sigma
        steps = [self.levels.timestep_of(s) for s in values]
        if self.quantize:
            steps = [float(round(t)) for t in steps]
        device = sigma.device if isinstance(sigma, Tensor) else None
        return torch.tensor(steps, dtype=torch.float32, device=device)  # (B,)

    def _predict(self, x: Tensor, sigma: Tensor, cond: dict[str, Any]) -> tuple[Tensor | float, Tensor]:
        """(sigma broadcastable to x, the raw prediction at the VP input x / sqrt(sigma^2 + 1))."""
        values = sigma.detach().tolist()  # one device sync per call, for the scale and the timestep
        s = _scale(values, sigma, x)
        c_in = (s * s + 1) ** -0.5
        return s, self.model_fn(x * c_in, self.model_timestep(values).to(sigma.device), **cond)


class EpsDenoiser(_VPDenoiser):
    """A VP eps-prediction model as an EDM denoiser: D = x - sigma * eps."""

    def __call__(self, x: Tensor, sigma: Tensor, **cond: Any) -> Tensor:
        s, eps = self._predict(x, sigma, cond)
        return x - eps * s


class VDenoiser(_VPDenoiser):
    """A VP v-prediction model as an EDM denoiser: D = x / (sigma^2 + 1) - v * sigma / sqrt(sigma^2 + 1)."""

    def __call__(self, x: Tensor, sigma: Tensor, **cond: Any) -> Tensor:
        s, v = self._predict(x, sigma, cond)
        return x / (s * s + 1) - v * (s * (s * s + 1) ** -0.5)


class FlowDenoiser:
    """A rectified-flow velocity model (v = noise - x0) as a flow-space denoiser: D = x - t * v."""

    space = Space.FLOW

    def __init__(self, model_fn: ModelFn, levels: NoiseLevels, *, timestep_scale: float = 1000.0) -> None:
        if levels.space is not Space.FLOW:
            raise ValueError("a flow model needs a flow noise-level table (NoiseLevels.flow)")
        self.model_fn = model_fn
        self.levels = levels
        self.timestep_scale = timestep_scale  # SD3 takes t * 1000; Flux pipelines divide it back

    def __call__(self, x: Tensor, sigma: Tensor, **cond: Any) -> Tensor:
        v = self.model_fn(x, (sigma * self.timestep_scale).to(torch.float32), **cond)
        return x - v * _bcast(sigma, x)


class LCMBoundary:
    """The LCM output parameterization D' = c_out(t) D + c_skip(t) x_vp (Luo et al. 2023, eq. 4;
    diffusers' LCMScheduler with timestep_scaling and sigma_data = 0.5)."""

    space = Space.EDM

    def __init__(self, denoiser: _VPDenoiser, *, timestep_scaling: float = 10.0, sigma_data: float = 0.5) -> None:
        self.denoiser = denoiser
        self.levels = denoiser.levels
        self.timestep_scaling = timestep_scaling
        self.sigma_data = sigma_data

    def __call__(self, x: Tensor, sigma: Tensor, **cond: Any) -> Tensor:
        denoised = self.denoiser(x, sigma, **cond)
        t = self.levels.timestep(sigma.detach().cpu()).round() * self.timestep_scaling  # (B,)
        c_skip = self.sigma_data**2 / (t * t + self.sigma_data**2)
        c_out = t / (t * t + self.sigma_data**2).sqrt()
        s = _bcast(sigma, x)
        x_vp = x * (s * s + 1).rsqrt()
        return denoised * _bcast(c_out, x).to(x.device) + x_vp * _bcast(c_skip, x).to(x.device)


def denoiser_from_config(model_fn: ModelFn, config: Mapping[str, Any], prediction_type: str, *,
                         shift: float | None = None) -> EpsDenoiser | VDenoiser | FlowDenoiser:
    """The right wrapper for a model from its diffusers scheduler config (as engine.models loads it)."""
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"unknown prediction_type {prediction_type!r}; valid: {', '.join(PREDICTION_TYPES)}")
    n = int(config.get("num_train_timesteps", 1000))
    if prediction_type == "flow":
        return FlowDenoiser(model_fn, NoiseLevels.flow(shift if shift is not None else float(config.get("shift", 1.0)), n))
    if shift is not None:
        raise ValueError("shift applies to flow models only")
    betas = make_betas(str(config.get("beta_schedule", "scaled_linear")), n,
                       float(config.get("beta_start", 0.00085)), float(config.get("beta_end", 0.012)))
    cls = EpsDenoiser if prediction_type == "epsilon" else VDenoiser
    return cls(model_fn, NoiseLevels.from_betas(betas))
