"""The sampler contract: registry, bad input, progress, cancel, seeds, img2img and inpaint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import engine.sampling as sampling
from engine.sampling import (
    SAMPLERS,
    SCHEDULES,
    STOCHASTIC_SAMPLERS,
    Cancelled,
    CancelToken,
    GeneratorNoise,
    NoiseLevels,
    Space,
    StepInfo,
    get_sampler,
    get_schedule,
    img2img_sigmas,
    sample,
)
from engine.sampling.names import SAMPLER_DISPLAY_NAMES, SCHEDULE_DISPLAY_NAMES
from tests.engine.sampling.analytic import MixtureDenoiser, geometric_sigmas, two_moons_2d

ROOT = Path(__file__).resolve().parents[3]
SHAPE = (2, 4, 4)  # one image's (C, H, W); d = 32 > the mixture's 2 dims, so use a 32-D mixture


def _mixture_32d():
    mix = two_moons_2d()
    return type(mix)(mix.weights, mix.means.repeat(1, 16), mix.variances.repeat(1, 16))


@pytest.fixture
def model() -> MixtureDenoiser:
    return MixtureDenoiser(_mixture_32d())


def test_registries_match_the_names_table() -> None:
    assert list(SAMPLERS) == list(SAMPLER_DISPLAY_NAMES)
    assert list(SCHEDULES) == list(SCHEDULE_DISPLAY_NAMES)


def test_names_module_does_not_load_torch() -> None:
    code = "import sys, engine.sampling.names; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


@pytest.mark.parametrize("getter, kind", [(get_sampler, "sampler"), (get_schedule, "schedule")])
def test_unknown_name_lists_the_valid_ones(getter, kind: str) -> None:
    with pytest.raises(ValueError, match=f"unknown {kind} 'nope'.*valid: .*karras|unknown {kind} 'nope'.*dpmpp_2m"):
        getter("nope")


@pytest.mark.parametrize(
    "sigmas, message",
    [
        (torch.tensor([1.0, float("nan"), 0.0]), "finite"),
        (torch.tensor([1.0, 2.0, 0.0]), "strictly decreasing"),
        (torch.tensor([1.0, 1.0, 0.0]), "strictly decreasing"),
        (torch.tensor([1.0, -0.5]), ">= 0"),
        (torch.tensor([1.0]), "at least 2"),
        (torch.ones(2, 2), "1-D"),
        ([1.0, 0.0], "torch.Tensor"),
    ],
)
@pytest.mark.parametrize("name", ["euler", "dpmpp_2m", "unipc"])
def test_bad_sigmas_raise_value_error(name: str, sigmas, message: str, model) -> None:
    with pytest.raises(ValueError, match=message):
        SAMPLERS[name](model, torch.zeros(1, *SHAPE), sigmas)


def test_bad_steps_and_shapes_raise_value_error(model) -> None:
    levels = NoiseLevels(torch.tensor([0.1, 10.0]))
    for steps in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="steps must be an integer >= 1"):
            SCHEDULES["karras"](levels, steps)
    with pytest.raises(ValueError, match="x must be a floating tensor"):
        SAMPLERS["euler"](model, torch.zeros(4, dtype=torch.long), torch.tensor([1.0, 0.0]))
    wrong = GeneratorNoise.from_seeds([0], (3, 4, 4))
    with pytest.raises(ValueError, match=r"noise source gave shape \(1, 3, 4, 4\), the state is \(1, 2, 4, 4\)"):
        SAMPLERS["euler_ancestral"](model, torch.zeros(1, *SHAPE), torch.tensor([1.0, 0.5, 0.0]), generator=wrong)
    with pytest.raises(ValueError, match="init latents have shape"):
        sample(model, torch.tensor([1.0, 0.0]), sampler="euler", seeds=[0], shape=SHAPE, init=torch.zeros(2, *SHAPE))
    with pytest.raises(ValueError, match="mask shape"):
        sample(model, torch.tensor([1.0, 0.0]), sampler="euler", seeds=[0], shape=SHAPE,
               init=torch.zeros(1, *SHAPE), mask=torch.ones(3, 3))
    with pytest.raises(ValueError, match="takes no option"):
        sample(model, torch.tensor([1.0, 0.0]), sampler="euler", seeds=[0], shape=SHAPE, options={"eta": 1.0})
    with pytest.raises(ValueError, match="denoise strength"):
        img2img_sigmas(torch.tensor([1.0, 0.0]), 1.5)


@pytest.mark.parametrize("name", sorted(STOCHASTIC_SAMPLERS))
def test_stochastic_samplers_demand_a_noise_source(name: str, model) -> None:
    with pytest.raises(ValueError, match="injects noise"):
        SAMPLERS[name](model, torch.randn(1, *SHAPE), geometric_sigmas(5.0, 0.1, 3, zero=True))


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_sampler_reports_each_step_and_is_reproducible(name: str, model) -> None:
    sigmas = geometric_sigmas(10.0, 0.05, 6, zero=True)
    infos: list[StepInfo] = []
    runs = [
        sample(model, sigmas, sampler=name, seeds=[11, 12], shape=SHAPE, dtype=torch.float64, callback=infos.append)
        for _ in range(2)
    ]
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=0)
    assert [i.i for i in infos[:6]] == list(range(6)) and all(i.total == 6 for i in infos)
    assert [i.sigma for i in infos[:6]] == pytest.approx(sigmas[:-1].tolist())
    assert infos[0].x.shape == infos[0].denoised.shape == (2, *SHAPE)
    assert torch.isfinite(runs[0]).all()


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_flow_models_report_flow_sigmas(name: str) -> None:
    model = MixtureDenoiser(_mixture_32d(), Space.FLOW)
    ts = torch.tensor([1.0, 0.8, 0.5, 0.2, 0.0], dtype=torch.float64)
    infos: list[StepInfo] = []
    out = sample(model, ts, sampler=name, seeds=[3], shape=SHAPE, dtype=torch.float64, callback=infos.append)
    assert torch.isfinite(out).all()
    assert [i.sigma for i in infos[:4]] == pytest.approx(ts[:-1].tolist(), abs=2e-4)  # t = 1 is read as 1 - 1e-4


def test_image_noise_depends_only_on_its_own_seed(model) -> None:
    """Image k of a batch is the same image whether generated alone or beside others."""
    sigmas = geometric_sigmas(10.0, 0.05, 5, zero=True)
    batch = sample(model, sigmas, sampler="euler_ancestral", seeds=[100, 101], shape=SHAPE, dtype=torch.float64)
    alone = sample(model, sigmas, sampler="euler_ancestral", seeds=[101], shape=SHAPE, dtype=torch.float64)
    torch.testing.assert_close(batch[1:], alone)
    assert not torch.allclose(batch[0], batch[1])


def test_generator_noise_is_drawn_on_cpu_per_image() -> None:
    noise = GeneratorNoise.from_seeds([5, 6], (3,), dtype=torch.float64)
    first = noise.sample()
    expected = torch.stack([torch.randn(3, generator=torch.Generator().manual_seed(s)) for s in (5, 6)]).double()
    torch.testing.assert_close(first, expected)
    assert not torch.equal(noise.sample(), first)  # the stream advances
    with pytest.raises(ValueError, match="at least one generator"):
        GeneratorNoise([], (3,))


def test_cancel_raises_within_one_step(model) -> None:
    token = CancelToken()
    steps_seen: list[int] = []

    def on_step(info: StepInfo) -> None:
        steps_seen.append(info.i)
        if info.i == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        sample(model, geometric_sigmas(10.0, 0.05, 10, zero=True), sampler="heun", seeds=[0], shape=SHAPE,
               cancel=token, callback=on_step)
    assert steps_seen == [0, 1, 2]
    assert model.calls <= 2 * 3 + 1  # nothing ran after the cancelled step's stage


def test_img2img_starts_at_the_strength_sigma(model) -> None:
    sigmas = geometric_sigmas(10.0, 0.05, 10, zero=True)
    assert torch.equal(img2img_sigmas(sigmas, 0.3), sigmas[7:])
    assert torch.equal(img2img_sigmas(sigmas, 1.0), sigmas)
    init = torch.randn(1, *SHAPE, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    untouched = sample(model, sigmas, sampler="euler", seeds=[1], shape=SHAPE, dtype=torch.float64, init=init, denoise=0.0)
    torch.testing.assert_close(untouched, init)
    infos: list[StepInfo] = []
    sample(model, sigmas, sampler="euler", seeds=[1], shape=SHAPE, dtype=torch.float64, init=init, denoise=0.3,
           callback=infos.append)
    assert len(infos) == 3 and infos[0].sigma == pytest.approx(float(sigmas[7]))
    noise = GeneratorNoise.from_seeds([1], SHAPE, dtype=torch.float64).sample()
    torch.testing.assert_close(infos[0].x, init + noise * sigmas[7])


@pytest.mark.parametrize("space", [Space.EDM, Space.FLOW])
def test_inpaint_keeps_the_known_region_and_fills_the_rest(space: Space) -> None:
    model = MixtureDenoiser(_mixture_32d(), space)
    init = torch.full((1, *SHAPE), 5.0, dtype=torch.float64)  # far outside the data: the model would move it
    mask = torch.zeros(4, 4, dtype=torch.float64)
    mask[:, 2:] = 1.0
    sigmas = geometric_sigmas(0.99 if space is Space.FLOW else 10.0, 0.01, 8, zero=True)
    out = sample(model, sigmas, sampler="dpmpp_2m", seeds=[2], shape=SHAPE, dtype=torch.float64, init=init, mask=mask)
    torch.testing.assert_close(out[..., :2], init[..., :2])
    assert (out[..., 2:] - 5.0).abs().mean() > 1.0


def test_public_exports_resolve() -> None:
    for name in sampling.__all__:
        assert getattr(sampling, name) is not None
    with pytest.raises(AttributeError):
        sampling.not_there  # noqa: B018
