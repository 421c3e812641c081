"""Samplers against exact answers: the probability-flow ODE solution of a Gaussian mixture (order
of convergence) and the mixture's mean and covariance (stochastic samplers)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.sampling import SAMPLERS, GeneratorNoise, Space
from engine.sampling.schedules import karras
from engine.sampling.wrappers import NoiseLevels
from tests.engine.sampling.analytic import GaussianMixture, MixtureDenoiser, geometric_sigmas, two_moons_2d

SIGMA_MAX, SIGMA_END = 10.0, 0.05
STEPS = (8, 16, 32, 64)

# sampler -> (lowest, highest) accepted slope of log error vs log steps. LMS and UniPC start with
# lower-order steps, which caps their global order near 3 on this range.
ORDERS = {
    "euler": (0.85, 1.3),
    "ddim": (0.85, 1.3),
    "heun": (1.8, 2.3),
    "dpm_2": (1.8, 2.3),
    "dpmpp_2m": (1.8, 2.3),
    "lms": (2.6, 4.5),
    "unipc": (2.6, 3.6),
}


@pytest.fixture(scope="module")
def ode_problem() -> tuple[GaussianMixture, torch.Tensor, torch.Tensor]:
    mix = two_moons_2d()
    g = torch.Generator().manual_seed(0)
    x = mix.sample(16, g) + SIGMA_MAX * torch.randn(16, 2, generator=g, dtype=torch.float64)  # exact p_sigma_max
    return mix, x, mix.ode_solution(x, SIGMA_MAX, SIGMA_END)


def _slope(errors: list[float]) -> float:
    return -float(np.polyfit(np.log(STEPS), np.log(errors), 1)[0])


@pytest.mark.parametrize("space", [Space.EDM, Space.FLOW], ids=["edm", "flow"])
@pytest.mark.parametrize("name", list(ORDERS))
def test_deterministic_sampler_converges_with_its_order(name: str, space: Space, ode_problem) -> None:
    mix, x, exact = ode_problem
    errors = []
    for steps in STEPS:
        sigmas = geometric_sigmas(SIGMA_MAX, SIGMA_END, steps)
        if space is Space.EDM:
            out = SAMPLERS[name](MixtureDenoiser(mix), x.clone(), sigmas)
        else:  # the same ODE in flow coordinates: t = s / (1 + s), x_t = x / (1 + s)
            ts = sigmas / (1 + sigmas)
            out = SAMPLERS[name](MixtureDenoiser(mix, Space.FLOW), x / (1 + SIGMA_MAX), ts) / (1 - ts[-1])
        errors.append((out - exact).abs().max().item())
    low, high = ORDERS[name]
    assert errors[-1] < errors[0] / 8, errors
    assert low <= _slope(errors) <= high, (errors, _slope(errors))


@pytest.mark.parametrize("name", ["euler", "heun", "dpm_2", "lms", "dpmpp_2m", "unipc", "ddim"])
def test_deterministic_sampler_reaches_the_exact_sample_at_sigma_zero(name: str, ode_problem) -> None:
    """With a Karras schedule ending in 0, 50 steps land near the exact ODE endpoint (within 2e-2 for
    second and higher order, 0.12 for the first-order Euler/DDIM step)."""
    mix, x, _ = ode_problem
    exact = mix.ode_solution(x, SIGMA_MAX, 0.0)
    sigmas = karras(NoiseLevels(torch.tensor([0.002, SIGMA_MAX])), 50)
    out = SAMPLERS[name](MixtureDenoiser(mix), x.clone(), sigmas)
    assert (out - exact).abs().max().item() < (0.12 if name in ("euler", "ddim") else 2e-2)


def test_dpmpp_2m_is_the_same_solver_in_edm_and_flow_coordinates(ode_problem) -> None:
    """DPM-Solver++ depends only on log-SNR, so running it on a flow model reproduces the EDM run."""
    mix, x, _ = ode_problem
    sigmas = geometric_sigmas(SIGMA_MAX, SIGMA_END, 12)
    edm = SAMPLERS["dpmpp_2m"](MixtureDenoiser(mix), x.clone(), sigmas)
    ts = sigmas / (1 + sigmas)
    flow = SAMPLERS["dpmpp_2m"](MixtureDenoiser(mix, Space.FLOW), x / (1 + SIGMA_MAX), ts) / (1 - ts[-1])
    torch.testing.assert_close(flow, edm, rtol=1e-9, atol=1e-9)


# ---- distributions -----------------------------------------------------------------------------

N_SAMPLES = 8000
DIST_STEPS = 100
STOCHASTIC = ["euler_ancestral", "dpm_2_ancestral", "dpmpp_2s_ancestral", "dpmpp_sde", "dpmpp_2m_sde",
              "dpmpp_3m_sde", "ddpm", "ddim"]


def _run_distribution(name: str, space: Space, **options: float) -> tuple[torch.Tensor, GaussianMixture]:
    mix = two_moons_2d()
    g = torch.Generator().manual_seed(1)
    sigma_max = 20.0
    x = mix.sample(N_SAMPLES, g) + sigma_max * torch.randn(N_SAMPLES, 2, generator=g, dtype=torch.float64)
    sigmas = karras(NoiseLevels(torch.tensor([0.01, sigma_max])), DIST_STEPS)
    if space is Space.FLOW:
        x, sigmas = x / (1 + sigma_max), sigmas / (1 + sigmas)
    noise = GeneratorNoise([torch.Generator().manual_seed(2)], (N_SAMPLES, 2), dtype=torch.float64)
    out = SAMPLERS[name](MixtureDenoiser(mix, space), x, sigmas, generator=lambda a, b: noise.sample()[0], **options)
    return out, mix


def _moment_errors(out: torch.Tensor, mix: GaussianMixture) -> tuple[float, float]:
    return (out.mean(0) - mix.mean()).abs().max().item(), (torch.cov(out.T) - mix.covariance()).abs().max().item()


# Standard errors at n = 8000 are about 0.013 (mean) and 0.02 (covariance); the bounds allow ~4 of
# them plus the first-order samplers' discretization bias at 100 steps.
MEAN_TOL, COV_TOL = 0.06, 0.09


@pytest.mark.parametrize("space", [Space.EDM, Space.FLOW], ids=["edm", "flow"])
@pytest.mark.parametrize("name", STOCHASTIC)
def test_stochastic_sampler_reproduces_mean_and_covariance(name: str, space: Space) -> None:
    out, mix = _run_distribution(name, space, **({"eta": 1.0} if name == "ddim" else {}))
    mean_err, cov_err = _moment_errors(out, mix)
    assert mean_err < MEAN_TOL and cov_err < COV_TOL, (mean_err, cov_err)


def test_moment_check_detects_wrong_noise_levels() -> None:
    """The tolerance has power: 30 % too little or too much noise is caught."""
    for s_noise in (0.7, 1.3):
        out, mix = _run_distribution("euler_ancestral", Space.EDM, s_noise=s_noise)
        assert _moment_errors(out, mix)[1] > COV_TOL


def test_lcm_with_an_exact_consistency_function_gives_exact_samples() -> None:
    """For Gaussian data N(mu, diag v), the PF-ODE maps x at sigma to mu + sqrt(v / (v + sigma^2)) (x - mu):
    a perfect consistency model. LCM sampling with it must return the data distribution for any steps."""
    mu, v = torch.tensor([0.5, -1.0], dtype=torch.float64), torch.tensor([0.3, 1.7], dtype=torch.float64)

    def consistency(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return mu + ((v / (v + sigma[:, None] ** 2)).sqrt()) * (x - mu)

    g = torch.Generator().manual_seed(3)
    x = mu + (v + 14.0**2).sqrt() * torch.randn(N_SAMPLES, 2, generator=g, dtype=torch.float64)
    noise = GeneratorNoise([torch.Generator().manual_seed(4)], (N_SAMPLES, 2), dtype=torch.float64)
    sigmas = torch.tensor([14.0, 3.0, 0.8, 0.2, 0.0], dtype=torch.float64)
    out = SAMPLERS["lcm"](consistency, x, sigmas, generator=lambda a, b: noise.sample()[0])
    assert (out.mean(0) - mu).abs().max() < 0.05
    assert (out.var(0) - v).abs().max() < 4 * math.sqrt(2 / N_SAMPLES) * 1.7


def test_lms_coefficients_match_numerical_integration() -> None:
    from scipy import integrate

    from engine.sampling.samplers_ode import lms_coefficient

    sig = [10.0, 5.0, 3.0, 2.0, 1.0, 0.5]
    for order in (1, 2, 3, 4):
        for j in range(order):
            def basis(s: float) -> float:
                return math.prod((s - sig[4 - k]) / (sig[4 - j] - sig[4 - k]) for k in range(order) if k != j)

            expected = integrate.quad(basis, sig[4], sig[5], epsrel=1e-12)[0]
            assert lms_coefficient(sig, 4, order, j) == pytest.approx(expected, abs=1e-12)
