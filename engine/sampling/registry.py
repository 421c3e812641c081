"""The explicit sampler and schedule registries, keyed by the ids in engine.sampling.names."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from engine.sampling.core import SamplerFn
from engine.sampling.names import SAMPLER_DISPLAY_NAMES, SCHEDULE_DISPLAY_NAMES
from engine.sampling.samplers_ancestral import (
    sample_ddim,
    sample_ddpm,
    sample_dpm_2_ancestral,
    sample_dpmpp_2s_ancestral,
    sample_euler_ancestral,
    sample_lcm,
)
from engine.sampling.samplers_dpmpp import sample_dpmpp_2m, sample_dpmpp_2m_sde, sample_dpmpp_3m_sde, sample_dpmpp_sde
from engine.sampling.samplers_ode import sample_dpm_2, sample_euler, sample_heun, sample_lms
from engine.sampling.samplers_unipc import sample_unipc
from engine.sampling.schedules import SCHEDULES, ScheduleFn
from engine.sampling.wrappers import NoiseLevels

SAMPLERS: dict[str, SamplerFn] = {
    "euler": sample_euler,
    "euler_ancestral": sample_euler_ancestral,
    "heun": sample_heun,
    "dpm_2": sample_dpm_2,
    "dpm_2_ancestral": sample_dpm_2_ancestral,
    "lms": sample_lms,
    "dpmpp_2s_ancestral": sample_dpmpp_2s_ancestral,
    "dpmpp_sde": sample_dpmpp_sde,
    "dpmpp_2m": sample_dpmpp_2m,
    "dpmpp_2m_sde": sample_dpmpp_2m_sde,
    "dpmpp_3m_sde": sample_dpmpp_3m_sde,
    "ddim": sample_ddim,
    "ddpm": sample_ddpm,
    "unipc": sample_unipc,
    "lcm": sample_lcm,
}

# Samplers that draw noise at every step (with their default options).
STOCHASTIC_SAMPLERS = frozenset(
    {"euler_ancestral", "dpm_2_ancestral", "dpmpp_2s_ancestral", "dpmpp_sde", "dpmpp_2m_sde", "dpmpp_3m_sde",
     "ddpm", "lcm"}
)

# Model evaluations per step (the last step into sigma = 0 may take fewer).
EVALS_PER_STEP: dict[str, int] = {name: 1 for name in SAMPLERS} | {
    "heun": 2, "dpm_2": 2, "dpm_2_ancestral": 2, "dpmpp_2s_ancestral": 2, "dpmpp_sde": 2,
}

_CONTRACT = frozenset({"model", "x", "sigmas", "extra_args", "callback", "generator"})

if SAMPLERS.keys() != SAMPLER_DISPLAY_NAMES.keys() or SCHEDULES.keys() != SCHEDULE_DISPLAY_NAMES.keys():
    raise RuntimeError("the sampling registries and engine.sampling.names disagree")


def get_sampler(name: str) -> SamplerFn:
    """The sampler registered under an id; ValueError listing the valid ids otherwise."""
    try:
        return SAMPLERS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown sampler {name!r}; valid: {', '.join(SAMPLERS)}") from None


def get_schedule(name: str) -> ScheduleFn:
    """The schedule registered under an id; ValueError listing the valid ids otherwise."""
    try:
        return SCHEDULES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown schedule {name!r}; valid: {', '.join(SCHEDULES)}") from None


def sampler_options(name: str) -> dict[str, Any]:
    """The tunable options of a sampler with their defaults (eta, s_noise, order, ...)."""
    params = inspect.signature(get_sampler(name)).parameters
    return {k: p.default for k, p in params.items() if k not in _CONTRACT}


def check_options(name: str, options: Mapping[str, Any]) -> None:
    """ValueError naming any option the sampler does not take."""
    valid = sampler_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"sampler {name!r} takes no option(s) {unknown}; valid: {sorted(valid) or 'none'}")


def make_sigmas(levels: NoiseLevels, schedule: str, steps: int, **options: Any) -> Tensor:
    """The sigmas of a named schedule for a model's noise levels."""
    return get_schedule(schedule)(levels, steps, **options)
