"""Schedules against diffusers/scipy and pinned values; model wrappers; guidance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, EulerDiscreteScheduler, FlowMatchEulerDiscreteScheduler
from scipy import stats

from engine.sampling import SCHEDULES, CFGDenoiser, Guidance, NoiseLevels, Space, make_sigmas
from engine.sampling.schedules import beta_ppf, resolution_shift
from engine.sampling.wrappers import EpsDenoiser, FlowDenoiser, VDenoiser, denoiser_from_config, make_betas
from tests.engine.sampling.analytic import MixtureDenoiser, two_moons_2d

SD = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}


@pytest.fixture(scope="module")
def sd_levels() -> NoiseLevels:
    return NoiseLevels.from_betas(make_betas("scaled_linear"))


@pytest.mark.parametrize("kind, diffusers_kind", [("linear", "linear"), ("scaled_linear", "scaled_linear"),
                                                  ("cosine", "squaredcos_cap_v2")])
def test_beta_tables_match_diffusers(kind: str, diffusers_kind: str) -> None:
    ours = NoiseLevels.from_betas(make_betas(kind, 1000, 0.00085, 0.012))
    sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule=diffusers_kind)
    theirs = ((1 - sched.alphas_cumprod) / sched.alphas_cumprod).sqrt().double()
    # diffusers computes 1 - abar in float32, which cancels at small t: hence the absolute floor
    torch.testing.assert_close(ours.sigmas, theirs, rtol=2e-5, atol=5e-6)


def test_sd_sigma_range_is_pinned(sd_levels: NoiseLevels) -> None:
    assert sd_levels.sigma_min == pytest.approx(0.029167, abs=1e-6)
    assert sd_levels.sigma_max == pytest.approx(14.614642, abs=1e-5)


@pytest.mark.parametrize("ours, flag", [("karras", "use_karras_sigmas"), ("exponential", "use_exponential_sigmas")])
def test_range_schedules_match_diffusers(ours: str, flag: str, sd_levels: NoiseLevels) -> None:
    sched = EulerDiscreteScheduler(**SD, **{flag: True})
    sched.set_timesteps(12)
    torch.testing.assert_close(make_sigmas(sd_levels, ours, 12), sched.sigmas.double(), rtol=1e-5, atol=1e-6)


def test_ddim_uniform_matches_diffusers_leading_timesteps(sd_levels: NoiseLevels) -> None:
    for steps in (7, 20, 50):
        sched = DDIMScheduler(**SD, steps_offset=1, timestep_spacing="leading")
        sched.set_timesteps(steps)
        expected = torch.cat([sd_levels.sigmas[sched.timesteps.long()], torch.zeros(1, dtype=torch.float64)])
        torch.testing.assert_close(make_sigmas(sd_levels, "ddim_uniform", steps), expected)


def test_flow_shift_matches_diffusers_with_pipeline_sigmas() -> None:
    sched = FlowMatchEulerDiscreteScheduler(shift=3.0)
    sched.set_timesteps(sigmas=np.linspace(1.0, 1 / 9, 9).tolist())
    ours = make_sigmas(NoiseLevels.flow(3.0), "flow_shift", 9)
    torch.testing.assert_close(ours, sched.sigmas.double(), rtol=1e-6, atol=1e-7)


def test_beta_quantiles_match_scipy() -> None:
    for q in (0.001, 0.1, 0.37, 0.5, 0.9, 0.999):
        for a, b in ((0.6, 0.6), (2.0, 5.0), (0.5, 3.0)):
            assert beta_ppf(q, a, b) == pytest.approx(stats.beta.ppf(q, a, b), abs=1e-10)


def test_pinned_schedules(sd_levels: NoiseLevels) -> None:
    expected = {
        "karras": [14.6146, 7.0944, 3.1686, 1.2741, 0.4469, 0.1303, 0.0292, 0.0],
        "normal": [14.6146, 5.9489, 2.9183, 1.6156, 0.9324, 0.4936, 0.0292, 0.0],
        "simple": [14.6146, 6.7016, 3.5282, 2.0617, 1.2762, 0.7901, 0.4381, 0.0],
        "sgm_uniform": [14.6146, 6.678, 3.5221, 2.0606, 1.2768, 0.7913, 0.4397, 0.0],
        "beta": [14.6146, 9.7015, 4.7126, 2.2683, 1.1682, 0.6127, 0.2772, 0.0],
        "polyexponential": [14.6146, 5.1857, 1.84, 0.6529, 0.2317, 0.0822, 0.0292, 0.0],
    }
    for name, values in expected.items():
        assert make_sigmas(sd_levels, name, 7).tolist() == pytest.approx(values, abs=1e-4), name


@pytest.mark.parametrize("name", [n for n in SCHEDULES if n != "flow_shift"])
@pytest.mark.parametrize("steps", [1, 3, 30])
def test_every_schedule_is_a_valid_decreasing_sequence_ending_in_zero(name: str, steps: int, sd_levels) -> None:
    sigmas = make_sigmas(sd_levels, name, steps)
    assert sigmas[-1] == 0 and (sigmas[1:] < sigmas[:-1]).all()
    assert len(sigmas) == steps + 1 or name == "beta"  # beta drops repeated timesteps


def test_flow_shift_needs_a_flow_model(sd_levels: NoiseLevels) -> None:
    with pytest.raises(ValueError, match="flow model"):
        make_sigmas(sd_levels, "flow_shift", 10)
    assert resolution_shift(256) == pytest.approx(np.exp(0.5))
    assert resolution_shift(4096) == pytest.approx(np.exp(1.15))


# ---- wrappers ----------------------------------------------------------------------------------


def _exact(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return MixtureDenoiser(two_moons_2d())(x, sigma)


def test_eps_v_and_flow_wrappers_recover_the_exact_denoiser(sd_levels: NoiseLevels) -> None:
    """Feed each wrapper the exact prediction its model type would make; it must give back E[x0 | x]."""
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    sigma = torch.full((6,), 2.5, dtype=torch.float64)
    exact = _exact(x, sigma)
    s = sigma[:, None]
    abar = 1 / (1 + s * s)

    def eps_model(x_vp, t):  # x_vp = sqrt(abar) x_edm
        x_edm = x_vp / abar.sqrt()
        return (x_edm - _exact(x_edm, sigma)) / s

    def v_model(x_vp, t):  # v = sqrt(abar) eps - sqrt(1 - abar) x0
        x_edm = x_vp / abar.sqrt()
        d = _exact(x_edm, sigma)
        return abar.sqrt() * (x_edm - d) / s - (1 - abar).sqrt() * d

    torch.testing.assert_close(EpsDenoiser(eps_model, sd_levels)(x, sigma), exact)
    torch.testing.assert_close(VDenoiser(v_model, sd_levels)(x, sigma), exact)

    t = sigma / (1 + sigma)  # the same noise level in flow time
    x_flow = x * (1 - t)[:, None]
    flow_exact = MixtureDenoiser(two_moons_2d(), Space.FLOW)(x_flow, t)
    torch.testing.assert_close(flow_exact, exact)  # the analytic model agrees with itself across spaces

    def velocity(x_t, timestep):
        tt = (timestep / 1000).double()[:, None]
        return (x_t - flow_exact) / tt

    torch.testing.assert_close(FlowDenoiser(velocity, NoiseLevels.flow(3.0))(x_flow, t), exact, rtol=1e-6, atol=1e-6)


def test_vp_wrapper_feeds_the_model_its_timestep(sd_levels: NoiseLevels) -> None:
    seen = []
    model = EpsDenoiser(lambda x, t: seen.append(t) or torch.zeros_like(x), sd_levels)
    model(torch.zeros(3, 1), sd_levels.sigmas[[999, 500, 0]].float())
    torch.testing.assert_close(seen[0], torch.tensor([999.0, 500.0, 0.0]), atol=1e-3, rtol=0)


def test_scalar_timestep_lookup_equals_the_tensor_one(sd_levels: NoiseLevels) -> None:
    """The per-call Python lookup gives the table interpolation's exact values, also off the table."""
    sigmas = torch.cat([torch.logspace(-4, 2, 301, dtype=torch.float64), sd_levels.sigmas[[0, 1, 500, 999]]])
    fast = torch.tensor([sd_levels.timestep_of(float(s)) for s in sigmas], dtype=torch.float64)
    assert torch.equal(fast, sd_levels.timestep(sigmas))
    assert sd_levels.timestep_of(1e-9) == 0.0 and sd_levels.timestep_of(1e9) == 999.0


def test_mixed_noise_levels_in_one_batch_match_separate_calls(sd_levels: NoiseLevels) -> None:
    """A batch whose images sit at different sigmas gives each image what a call of its own gives."""
    model = EpsDenoiser(lambda x, t: x * 0.3 + t[:, None] / 1000, sd_levels)
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(1))
    sigma = torch.tensor([0.5, 3.0, 11.0])
    together = model(x, sigma)
    alone = torch.cat([model(x[i:i + 1], sigma[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone, rtol=1e-6, atol=1e-6)
    v = VDenoiser(lambda x, t: x * 0.3 + t[:, None] / 1000, sd_levels)
    torch.testing.assert_close(v(x, sigma), torch.cat([v(x[i:i + 1], sigma[i:i + 1]) for i in range(3)]),
                               rtol=1e-6, atol=1e-6)


def test_unipc_small_solver_matches_numpy() -> None:
    from engine.sampling.samplers_unipc import solve

    rng = np.random.default_rng(0)
    for n in (1, 2, 3):
        a, b = rng.normal(size=(n, n)), rng.normal(size=n)
        np.testing.assert_allclose(solve(a.tolist(), b.tolist()), np.linalg.solve(a, b), rtol=1e-12)
    with pytest.raises(ValueError, match="singular"):
        solve([[1.0, 1.0], [1.0, 1.0]], [1.0, 2.0])


def test_denoiser_from_config_picks_the_wrapper() -> None:
    fn = lambda x, t: x  # noqa: E731
    assert isinstance(denoiser_from_config(fn, SD, "epsilon"), EpsDenoiser)
    assert isinstance(denoiser_from_config(fn, SD, "v_prediction"), VDenoiser)
    flow = denoiser_from_config(fn, {"shift": 3.0}, "flow")
    assert isinstance(flow, FlowDenoiser) and flow.levels.shift == 3.0
    with pytest.raises(ValueError, match="unknown prediction_type"):
        denoiser_from_config(fn, SD, "sample")
    with pytest.raises(ValueError, match="unknown beta schedule"):
        make_betas("quadratic")


# ---- guidance ----------------------------------------------------------------------------------


class _CondModel:
    """D = c * x / (1 + sigma^2) with a per-sample conditioning scale c; counts batch sizes."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, *, c: torch.Tensor, extra: dict) -> torch.Tensor:
        self.batches.append(x.shape[0])
        return c[:, None] * x / (1 + sigma[:, None] ** 2) + extra["shift"][:, None]


def _cfg(guidance: Guidance, sigmas: torch.Tensor) -> tuple[CFGDenoiser, _CondModel]:
    inner = _CondModel()
    cond = {"c": torch.tensor([2.0, 3.0]), "extra": {"shift": torch.tensor([0.1, 0.2])}}
    uncond = {"c": torch.tensor([1.0, 1.0]), "extra": {"shift": torch.tensor([0.0, 0.0])}}
    return CFGDenoiser(inner, cond, uncond, guidance, sigmas), inner


def test_cfg_batches_cond_and_uncond_in_one_call() -> None:
    sigmas = torch.tensor([4.0, 2.0, 1.0, 0.0])
    cfg, inner = _cfg(Guidance(scale=5.0), sigmas)
    x, sigma = torch.ones(2, 3), torch.full((2,), 2.0)
    out = cfg(x, sigma)
    cond = torch.tensor([2.0, 3.0])[:, None] * x / 5 + torch.tensor([0.1, 0.2])[:, None]
    uncond = x / 5
    torch.testing.assert_close(out, uncond + 5.0 * (cond - uncond))
    assert inner.batches == [4]


def test_guidance_window_runs_only_cond_outside_it() -> None:
    sigmas = torch.tensor([8.0, 4.0, 2.0, 1.0, 0.0])
    cfg, inner = _cfg(Guidance(scale=5.0, start=0.25, end=0.75), sigmas)
    for s in sigmas[:-1]:
        cfg(torch.ones(2, 3), torch.full((2,), float(s)))
    assert inner.batches == [2, 4, 4, 2]  # steps 1 and 2 of 4 are guided


def test_guidance_rescale_matches_the_cond_std() -> None:
    sigmas = torch.tensor([4.0, 0.0])
    x, sigma = torch.randn(2, 16, generator=torch.Generator().manual_seed(0)), torch.full((2,), 4.0)
    plain, _ = _cfg(Guidance(scale=7.0), sigmas)
    full, _ = _cfg(Guidance(scale=7.0, rescale=1.0), sigmas)
    cond_only, _ = _cfg(Guidance(scale=1.0), sigmas)
    eps = lambda d: (x - d) / 4.0  # noqa: E731
    torch.testing.assert_close(eps(full(x, sigma)).std(1), eps(cond_only(x, sigma)).std(1))
    assert not torch.allclose(eps(plain(x, sigma)).std(1), eps(cond_only(x, sigma)).std(1))


def test_classifier_gradient_shifts_the_score() -> None:
    """Adding grad log p(y|x) = g to the score moves D by sigma^2 g (EDM)."""
    sigmas = torch.tensor([4.0, 0.0])
    g = torch.tensor([[0.5, -1.0, 0.0]])

    def grad(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        assert torch.is_grad_enabled()
        return g.expand_as(x)

    with_clf, _ = _cfg(Guidance(scale=3.0, classifier=grad, classifier_scale=2.0), sigmas)
    without, _ = _cfg(Guidance(scale=3.0), sigmas)
    x, sigma = torch.ones(2, 3), torch.full((2,), 4.0)
    with torch.no_grad():
        torch.testing.assert_close(with_clf(x, sigma) - without(x, sigma), 2.0 * 16.0 * g.expand(2, 3))


def test_autoguidance_pushes_the_cond_prediction_away_from_the_guides_inside_and_outside_the_cfg_window() -> None:
    """D = CFG result + w (cond - guide(cond)) (Karras et al. 2024), the guide called with its own conditioning."""
    sigmas = torch.tensor([8.0, 4.0, 2.0, 1.0, 0.0])
    guide = _CondModel()
    guide_cond = {"c": torch.tensor([1.5, 1.5]), "extra": {"shift": torch.tensor([0.0, 0.0])}}
    inner = _CondModel()
    cond = {"c": torch.tensor([2.0, 3.0]), "extra": {"shift": torch.tensor([0.1, 0.2])}}
    uncond = {"c": torch.tensor([1.0, 1.0]), "extra": {"shift": torch.tensor([0.0, 0.0])}}
    guided = CFGDenoiser(inner, cond, uncond, Guidance(scale=5.0, end=0.5, autoguidance=2.0), sigmas, guide=guide,
                         guide_cond=guide_cond)
    plain = CFGDenoiser(_CondModel(), cond, uncond, Guidance(scale=5.0, end=0.5), sigmas)
    x = torch.ones(2, 3)
    for s in (8.0, 2.0):  # inside the CFG window, then past it (cond alone)
        sigma = torch.full((2,), s)
        d_cond = torch.tensor([2.0, 3.0])[:, None] * x / (1 + s * s) + torch.tensor([0.1, 0.2])[:, None]
        d_guide = 1.5 * x / (1 + s * s)
        torch.testing.assert_close(guided(x, sigma), plain(x, sigma) + 2.0 * (d_cond - d_guide))
    assert guide.batches == [2, 2]
    # w = 0 never calls the guide
    off, unused = CFGDenoiser(_CondModel(), cond, uncond, Guidance(scale=5.0), sigmas, guide=_CondModel(),
                              guide_cond=guide_cond), guide.batches.copy()
    off(x, torch.full((2,), 8.0))
    assert off.guide is None and guide.batches == unused


def test_guidance_validates_its_settings() -> None:
    with pytest.raises(ValueError, match="rescale"):
        Guidance(rescale=1.5)
    with pytest.raises(ValueError, match="window"):
        Guidance(start=0.8, end=0.2)
    with pytest.raises(ValueError, match="autoguidance"):
        Guidance(autoguidance=-1.0)
    with pytest.raises(ValueError, match="same keys"):
        CFGDenoiser(_CondModel(), {"c": torch.ones(2)}, {}, Guidance(), torch.tensor([1.0, 0.0]))
