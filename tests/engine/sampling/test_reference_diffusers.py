"""Our samplers against diffusers' scheduler loops on the same tiny random UNet.

Each case runs diffusers' `set_timesteps` / `scale_model_input` / `step` loop and our sampler on
the same model, the same noise levels (read back from the diffusers scheduler) and the same
starting state, and asks for agreement to 1e-4 relative.

Noise alignment for stochastic samplers: diffusers draws each step's noise with
`randn_tensor(shape, generator=[g_0, g_1])`, i.e. image k's noise from generator k; our
`GeneratorNoise` draws image k's noise from its own CPU generator too, so with generators seeded
alike the two streams are identical draw for draw (both draw once per noisy step, in step order).
DPM++ SDE uses a Brownian tree in diffusers; we pass diffusers' own `BrownianTreeNoiseSampler`,
built with the same seed and interval, as our NoiseSource.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    FlowMatchHeunDiscreteScheduler,
    HeunDiscreteScheduler,
    KDPM2AncestralDiscreteScheduler,
    KDPM2DiscreteScheduler,
    LCMScheduler,
    LMSDiscreteScheduler,
    UniPCMultistepScheduler,
    UNet2DModel,
)

from engine.sampling import SAMPLERS, GeneratorNoise
from engine.sampling.wrappers import EpsDenoiser, FlowDenoiser, LCMBoundary, NoiseLevels, VDenoiser, make_betas

SD_BETAS = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}
SHAPE = (2, 4, 8, 8)  # (B, C, H, W)
SEEDS = (1234, 1235)


@pytest.fixture(scope="module")
def unet() -> UNet2DModel:
    torch.manual_seed(0)
    model = UNet2DModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
        norm_num_groups=8, down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
    )
    return model.eval()


def _model_fn(unet: UNet2DModel) -> Callable[..., torch.Tensor]:
    return lambda x, t: unet(x, t).sample


def _generators() -> list[torch.Generator]:
    return [torch.Generator("cpu").manual_seed(s) for s in SEEDS]


def _start_noise() -> torch.Tensor:
    return GeneratorNoise.from_seeds([7, 8], SHAPE[1:]).sample()  # (B, C, H, W)


@torch.no_grad()
def _diffusers_loop(sched: Any, unet: UNet2DModel, x: torch.Tensor, step_kwargs: dict[str, Any]) -> torch.Tensor:
    for t in sched.timesteps:
        x_in = sched.scale_model_input(x, t) if hasattr(sched, "scale_model_input") else x  # flow: unscaled
        out = unet(x_in, t).sample
        x = sched.step(out, t, x, **step_kwargs).prev_sample
    return x


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@dataclass
class Case:
    sampler: str
    make: Callable[[], Any]
    steps: int = 8
    kind: str = "eps"  # eps | v | flow | lcm
    vp_state: bool = False  # diffusers' state is the VP x_t (x_edm / sqrt(1 + sigma^2))
    stochastic: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    set_timesteps: dict[str, Any] = field(default_factory=dict)


CASES = {
    "euler": Case("euler", lambda: EulerDiscreteScheduler(**SD_BETAS, use_karras_sigmas=True)),
    "euler-v": Case("euler", lambda: EulerDiscreteScheduler(**SD_BETAS, prediction_type="v_prediction"), kind="v"),
    "euler_ancestral": Case("euler_ancestral", lambda: EulerAncestralDiscreteScheduler(**SD_BETAS), stochastic=True),
    "heun": Case("heun", lambda: HeunDiscreteScheduler(**SD_BETAS, use_karras_sigmas=True)),
    # With Karras sigmas diffusers' KDPM2 rounds the main stages' timesteps (not their sigmas); on
    # integer timesteps both stages see the same model input as ours.
    "dpm_2": Case("dpm_2", lambda: KDPM2DiscreteScheduler(**SD_BETAS, timestep_spacing="leading", steps_offset=1)),
    "dpm_2_ancestral": Case("dpm_2_ancestral", lambda: KDPM2AncestralDiscreteScheduler(**SD_BETAS), stochastic=True),
    "lms": Case("lms", lambda: LMSDiscreteScheduler(**SD_BETAS, use_karras_sigmas=True), steps=10),
    "dpmpp_2m": Case("dpmpp_2m", lambda: DPMSolverMultistepScheduler(**SD_BETAS), vp_state=True),
    "dpmpp_2m_sde": Case(
        "dpmpp_2m_sde", lambda: DPMSolverMultistepScheduler(**SD_BETAS, algorithm_type="sde-dpmsolver++"),
        vp_state=True, stochastic=True,
    ),
    "ddim": Case("ddim", lambda: DDIMScheduler(**SD_BETAS, clip_sample=False), vp_state=True),
    "ddim-eta": Case("ddim", lambda: DDIMScheduler(**SD_BETAS, clip_sample=False), vp_state=True, stochastic=True,
                     options={"eta": 0.7}),
    "ddpm": Case("ddpm", lambda: DDPMScheduler(**SD_BETAS, clip_sample=False), vp_state=True, stochastic=True),
    "unipc": Case("unipc", lambda: UniPCMultistepScheduler(**SD_BETAS), vp_state=True),
    "unipc-3": Case("unipc", lambda: UniPCMultistepScheduler(**SD_BETAS, solver_order=3), vp_state=True,
                    options={"order": 3}, steps=10),
    "lcm": Case("lcm", lambda: LCMScheduler(**SD_BETAS), kind="lcm", vp_state=True, stochastic=True, steps=4),
    "flow-euler": Case("euler", lambda: FlowMatchEulerDiscreteScheduler(shift=3.0), kind="flow"),
    "flow-heun": Case("heun", lambda: FlowMatchHeunDiscreteScheduler(shift=3.0), kind="flow"),
}


def _our_model(case: Case, unet: UNet2DModel, levels: NoiseLevels) -> Any:
    fn = _model_fn(unet)
    if case.kind == "flow":
        return FlowDenoiser(fn, levels)
    if case.kind == "v":
        return VDenoiser(fn, levels)
    model = EpsDenoiser(fn, levels)
    return LCMBoundary(model) if case.kind == "lcm" else model


def _our_sigmas(case: Case, sched: Any, levels: NoiseLevels) -> torch.Tensor:
    if case.vp_state:  # schedulers on integer timesteps: our sigmas are the table's at those steps
        table = levels.sigmas[sched.timesteps.long()]
        return torch.cat([table, torch.zeros(1, dtype=table.dtype)])
    return torch.unique_consecutive(sched.sigmas.double())  # Heun/DPM2 repeat their sigmas


@pytest.mark.parametrize("name", list(CASES))
def test_matches_diffusers(name: str, unet: UNet2DModel) -> None:
    case = CASES[name]
    sched = case.make()
    sched.set_timesteps(case.steps, **case.set_timesteps)
    levels = NoiseLevels.flow(3.0) if case.kind == "flow" else NoiseLevels.from_betas(make_betas("scaled_linear"))
    sigmas = _our_sigmas(case, sched, levels)
    noise = _start_noise()
    x_theirs = noise * getattr(sched, "init_noise_sigma", 1.0)
    step_kwargs: dict[str, Any] = {"generator": _generators()} if case.stochastic else {}
    step_kwargs.update({"eta": case.options["eta"]} if "eta" in case.options else {})
    theirs = _diffusers_loop(sched, unet, x_theirs.clone(), step_kwargs)

    x_ours = x_theirs * (1 + sigmas[0] ** 2) ** 0.5 if case.vp_state else x_theirs
    generator = GeneratorNoise(_generators(), SHAPE[1:]) if case.stochastic else None
    ours = SAMPLERS[case.sampler](_our_model(case, unet, levels), x_ours.clone(), sigmas, generator=generator,
                                  **case.options)
    assert ours.shape == theirs.shape
    assert torch.isfinite(ours).all()
    assert _rel(ours, theirs) < 1e-4, f"{name}: relative difference {_rel(ours, theirs):.2e}"
    assert _rel(ours, noise) > 0.1  # it really sampled


# torchsde warns when a query lands a float32 rounding below the tree's start: harmless here.
@pytest.mark.filterwarnings("ignore:Should have ta>=t0:UserWarning")
def test_dpmpp_sde_matches_diffusers_with_the_same_brownian_tree(unet: UNet2DModel) -> None:
    """DPM++ SDE: diffusers' DPMSolverSDEScheduler draws from a torchsde Brownian tree seeded by
    noise_sampler_seed; we pass the same BrownianTreeNoiseSampler as our NoiseSource."""
    pytest.importorskip("torchsde")
    from diffusers import DPMSolverSDEScheduler
    from diffusers.schedulers.scheduling_dpmsolver_sde import BrownianTreeNoiseSampler

    sched = DPMSolverSDEScheduler(**SD_BETAS, use_karras_sigmas=True, noise_sampler_seed=42)
    sched.set_timesteps(8)
    levels = NoiseLevels.from_betas(make_betas("scaled_linear"))
    sigmas = torch.unique_consecutive(sched.sigmas.double())
    x = _start_noise() * sched.init_noise_sigma
    theirs = _diffusers_loop(sched, unet, x.clone(), {})
    positive = sched.sigmas[sched.sigmas > 0]
    tree = BrownianTreeNoiseSampler(x, positive.min().item(), positive.max().item(), 42)

    def noise(sigma: float, sigma_next: float) -> torch.Tensor:
        # A Brownian increment moves by ~sqrt(dt) when its end points move by dt, so the tree must be
        # queried at exactly diffusers' float32 times: exp(-t) with t = -log sigma (and, for the
        # midpoint stage, t + (t_next - t) / 2) computed in float32.
        t = -torch.tensor(sigma, dtype=torch.float32).log()
        if any(abs(sigma_next - s) < 1e-9 * s for s in sigmas.tolist()):
            t_to = -torch.tensor(sigma_next, dtype=torch.float32).log()
        else:  # the midpoint stage: recover the step's end, sigma_mid^2 / sigma
            t_next = -torch.tensor(sigma_next**2 / sigma, dtype=torch.float32).log()
            t_to = t + (t_next - t) * 0.5
        return tree(t.neg().exp(), t_to.neg().exp())

    ours = SAMPLERS["dpmpp_sde"](EpsDenoiser(_model_fn(unet), levels), x.clone(), sigmas, generator=noise)
    assert _rel(ours, theirs) < 1e-4, f"relative difference {_rel(ours, theirs):.2e}"


def test_stochastic_reference_depends_on_the_noise(unet: UNet2DModel) -> None:
    """The alignment above is meaningful: other seeds give a clearly different result."""
    levels = NoiseLevels.from_betas(make_betas("scaled_linear"))
    sched = EulerAncestralDiscreteScheduler(**SD_BETAS)
    sched.set_timesteps(8)
    x = _start_noise() * sched.init_noise_sigma
    model = EpsDenoiser(_model_fn(unet), levels)
    sigmas = sched.sigmas.double()
    a = SAMPLERS["euler_ancestral"](model, x, sigmas, generator=GeneratorNoise.from_seeds(SEEDS, SHAPE[1:]))
    b = SAMPLERS["euler_ancestral"](model, x, sigmas, generator=GeneratorNoise.from_seeds([5, 6], SHAPE[1:]))
    assert _rel(a, b) > 1e-2
