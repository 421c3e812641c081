"""The sampler contract: denoiser and noise protocols, progress/cancel types, validation, coordinates.

A denoiser is `model(x, sigma, **cond) -> denoised` (Karras et al. 2022, "Elucidating the Design
Space of Diffusion-Based Generative Models"). Every sampler integrates the probability-flow ODE

    dx/dsigma = (x - D(x, sigma)) / sigma,

which has this same form in two state spaces, so one solver serves both:

- `Space.EDM`: x = x0 + sigma * noise (EDM, and VP models through their wrapper);
- `Space.FLOW`: x = (1 - sigma) * x0 + sigma * noise (rectified flow; sigma is the flow time t).

Deterministic ODE solvers (Euler, Heun, DPM2, LMS) run in the model's own space, so on a flow
model they are exactly the flow-matching Euler/Heun solvers. Samplers that inject noise or use
exponential integrators are written for EDM and run on flow models through `edm_coordinates`,
which maps x -> x / (1 - t), t -> t / (1 - t) and back.
"""

from __future__ import annotations

import enum
import functools
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor


class Space(enum.Enum):
    """How a model's state mixes signal and noise at noise level sigma."""

    EDM = "edm"  # x = x0 + sigma * noise
    FLOW = "flow"  # x = (1 - sigma) * x0 + sigma * noise, sigma in [0, 1]

    def signal_scale(self, sigma: float) -> float:
        """The factor alpha(sigma) in front of x0."""
        return 1.0 if self is Space.EDM else 1.0 - sigma

    def noised(self, x0: Tensor, noise: Tensor, sigma: float) -> Tensor:
        """x0 brought to noise level sigma with the given unit noise."""
        return x0 * self.signal_scale(sigma) + noise * sigma  # (B, ...)


# Flow time 1 (pure noise) has no EDM equivalent (sigma = t / (1 - t) = inf); in EDM coordinates it
# is read as this t, where the state differs from pure noise by 1e-4 of the signal.
FLOW_EDM_MAX_T = 1.0 - 1e-4


@dataclass(frozen=True)
class StepInfo:
    """Progress of one sampler step, sent to the callback before the state is updated."""

    i: int  # step index, 0-based
    total: int  # number of steps (len(sigmas) - 1)
    sigma: float  # noise level of x, in the model's space
    x: Tensor  # (B, ...) current state, in the model's space
    denoised: Tensor  # (B, ...) the model's estimate of x0 at this step


Callback = Callable[[StepInfo], None]


class Cancelled(Exception):
    """Raised inside a sampler when its cancel token was set."""


class CancelToken:
    """A thread-safe flag: the GUI sets it, the sampling thread checks it at every model call."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the sampler to stop at its next model call."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        """Raise `Cancelled` if `cancel()` was called."""
        if self._event.is_set():
            raise Cancelled("sampling was cancelled")


@runtime_checkable
class Denoiser(Protocol):
    """`model(x, sigma, **cond) -> denoised`; x (B, ...), sigma (B,). May also carry `space`."""

    def __call__(self, x: Tensor, sigma: Tensor, **cond: Any) -> Tensor: ...


class NoiseSource(Protocol):
    """Unit Gaussian noise shaped like the state, for the interval sigma -> sigma_next."""

    def __call__(self, sigma: float, sigma_next: float) -> Tensor: ...


class SamplerFn(Protocol):
    """The sampler contract (k-diffusion's): integrate x from sigmas[0] down to sigmas[-1]."""

    def __call__(
        self,
        model: Denoiser,
        x: Tensor,
        sigmas: Tensor,
        *,
        extra_args: Mapping[str, Any] | None = None,
        callback: Callback | None = None,
        generator: NoiseSource | None = None,
        **options: Any,
    ) -> Tensor: ...


def space_of(model: Callable[..., Tensor]) -> Space:
    """The state space a denoiser works in; plain functions are EDM denoisers."""
    space = getattr(model, "space", Space.EDM)
    if not isinstance(space, Space):
        raise ValueError(f"model.space must be a Space, got {space!r}")
    return space


class GeneratorNoise:
    """Per-image noise: image k of the batch draws from its own CPU generator (seed + k), then moves
    to the device, so a seed gives the same image on CPU and CUDA and in any batch position."""

    def __init__(
        self,
        generators: Sequence[torch.Generator],
        shape: Sequence[int],
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if not generators:
            raise ValueError("GeneratorNoise needs at least one generator (one per image)")
        if any(g.device.type != "cpu" for g in generators):
            raise ValueError("noise generators must be CPU generators so results match across devices")
        self.generators = tuple(generators)
        self.shape = tuple(int(s) for s in shape)  # (C, H, W) of one image
        self.device = torch.device(device)
        self.dtype = dtype

    @classmethod
    def from_seeds(
        cls,
        seeds: Sequence[int],
        shape: Sequence[int],
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> GeneratorNoise:
        """One CPU generator per image, seeded with the given seeds (usually seed, seed + 1, ...)."""
        return cls([torch.Generator("cpu").manual_seed(int(s)) for s in seeds], shape, device=device, dtype=dtype)

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return (len(self.generators), *self.shape)

    def sample(self) -> Tensor:
        """The next unit Gaussian draw for every image: (B, *shape) on the target device."""
        if len(self.generators) == 1:  # the common case: no stacking copy
            draw = torch.randn((1, *self.shape), generator=self.generators[0], dtype=torch.float32)
        else:
            draw = torch.stack([torch.randn(self.shape, generator=g, dtype=torch.float32) for g in self.generators])
        return draw.to(self.device, self.dtype)  # (B, *shape)

    def __call__(self, sigma: float = 0.0, sigma_next: float = 0.0) -> Tensor:
        return self.sample()


# ---- validation ---------------------------------------------------------------------------------


def check_steps(steps: int) -> int:
    """`steps` as an int >= 1, or a ValueError."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    return steps


def check_sigmas(sigmas: Tensor) -> list[float]:
    """The sigmas as Python floats after checking: 1-D, >= 2 entries, finite, >= 0, strictly decreasing."""
    if not isinstance(sigmas, Tensor):
        raise ValueError(f"sigmas must be a torch.Tensor, got {type(sigmas).__name__}")
    if sigmas.ndim != 1 or sigmas.numel() < 2:
        raise ValueError(f"sigmas must be a 1-D tensor with at least 2 entries, got shape {tuple(sigmas.shape)}")
    values = sigmas.detach().double().cpu()
    if not torch.isfinite(values).all():
        raise ValueError(f"sigmas must be finite, got {values.tolist()}")
    if (values < 0).any():
        raise ValueError(f"sigmas must be >= 0, got {values.tolist()}")
    if not (values[1:] < values[:-1]).all():
        raise ValueError(f"sigmas must be strictly decreasing, got {values.tolist()}")
    return values.tolist()


def check_state(x: Tensor) -> None:
    """x must be a floating tensor with a batch dimension."""
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.ndim < 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x must be a floating tensor shaped (B, ...), got {shape}")


def draw_noise(generator: NoiseSource | None, x: Tensor, sigma: float, sigma_next: float, sampler: str) -> Tensor:
    """Unit noise from the sampler's noise source, checked against the state's shape."""
    if generator is None:
        raise ValueError(f"{sampler} injects noise: pass generator=GeneratorNoise.from_seeds(...) or a NoiseSource")
    noise = generator(sigma, sigma_next)
    if noise.shape != x.shape:
        raise ValueError(f"noise source gave shape {tuple(noise.shape)}, the state is {tuple(x.shape)}")
    return noise.to(x.device, x.dtype)


# ---- shared sampler pieces ----------------------------------------------------------------------


def call_model(model: Denoiser, x: Tensor, sigma: float, extra_args: Mapping[str, Any] | None) -> Tensor:
    """Evaluate the denoiser at one noise level for the whole batch."""
    sigma_b = x.new_full((x.shape[0],), sigma)  # (B,)
    return model(x, sigma_b, **(extra_args or {}))


def report(callback: Callback | None, i: int, total: int, sigma: float, x: Tensor, denoised: Tensor) -> None:
    if callback is not None:
        callback(StepInfo(i, total, sigma, x, denoised))


def ancestral_step(sigma: float, sigma_next: float, eta: float = 1.0) -> tuple[float, float]:
    """(sigma_down, sigma_up) of an ancestral step (Ho et al. 2020 posterior; eta scales the noise)."""
    if sigma_next == 0.0 or eta == 0.0:
        return sigma_next, 0.0
    ratio = sigma_next / sigma
    sigma_up = min(sigma_next, eta * sigma_next * math.sqrt(max(1.0 - ratio * ratio, 0.0)))
    sigma_down = math.sqrt(max(sigma_next * sigma_next - sigma_up * sigma_up, 0.0))
    return sigma_down, sigma_up


class _FlowAsEDM:
    """A flow denoiser seen in EDM coordinates: X = x / (1 - t), s = t / (1 - t)."""

    space = Space.EDM

    def __init__(self, model: Denoiser) -> None:
        self.model = model

    def __call__(self, x: Tensor, sigma: Tensor, **cond: Any) -> Tensor:
        t = sigma / (1.0 + sigma)  # (B,)
        scale = (1.0 - t).reshape(-1, *([1] * (x.ndim - 1)))  # (B, 1, ...)
        return self.model(x * scale, t, **cond)


def _flow_t_to_edm(t: float) -> float:
    t = min(t, FLOW_EDM_MAX_T)
    return t / (1.0 - t)


def edm_coordinates(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """Run an EDM-form sampler on a model of any space by changing coordinates around it."""

    @functools.wraps(fn)
    def wrapped(
        model: Denoiser,
        x: Tensor,
        sigmas: Tensor,
        *,
        extra_args: Mapping[str, Any] | None = None,
        callback: Callback | None = None,
        generator: NoiseSource | None = None,
        **options: Any,
    ) -> Tensor:
        if space_of(model) is Space.EDM:
            return fn(model, x, sigmas, extra_args=extra_args, callback=callback, generator=generator, **options)
        ts = check_sigmas(sigmas)
        if ts[0] > 1.0:
            raise ValueError(f"flow sigmas must lie in [0, 1], got {ts[0]}")
        edm_sigmas = torch.tensor([_flow_t_to_edm(t) for t in ts], dtype=torch.float64)
        edm_x = x / (1.0 - min(ts[0], FLOW_EDM_MAX_T))

        def flow_callback(info: StepInfo) -> None:
            t = info.sigma / (1.0 + info.sigma)
            callback(replace(info, sigma=t, x=info.x * (1.0 - t)))  # type: ignore[misc]

        out = fn(_FlowAsEDM(model), edm_x, edm_sigmas, extra_args=extra_args,
                 callback=flow_callback if callback else None, generator=generator, **options)
        return out * (1.0 - ts[-1])

    return wrapped
