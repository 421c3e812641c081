"""Sampler benchmark: accuracy against exact answers, engine overhead per step, and our loop vs
diffusers' scheduler loop.

Run: python benchmarks/samplers.py [--out benchmarks/out]
1. Error at 5, 10, 20, 50 model evaluations (NFE) for every sampler on a 2-D Gaussian mixture:
   deterministic samplers against the exact probability-flow ODE endpoint (max abs error over 64
   paths), stochastic ones by the error of the sample mean/covariance (8000 samples). Table + PNG.
2. Engine overhead: time outside the model call as a fraction of model time on a small UNet.
3. Our loop vs diffusers' (same UNet, same NFE): wall-time ratio, target <= 1.0.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.sampling import EVALS_PER_STEP, SAMPLERS, STOCHASTIC_SAMPLERS, GeneratorNoise  # noqa: E402
from engine.sampling.schedules import karras  # noqa: E402
from engine.sampling.wrappers import EpsDenoiser, NoiseLevels, make_betas  # noqa: E402
from tests.engine.sampling.analytic import MixtureDenoiser, two_moons_2d  # noqa: E402

NFES = (5, 10, 20, 50)
SIGMA_MAX, SIGMA_MIN = 20.0, 0.002


def steps_for(name: str, nfe: int) -> int:
    """Steps whose model evaluations come closest to nfe without exceeding it (the last step into 0
    of a two-stage sampler takes one evaluation)."""
    per = EVALS_PER_STEP[name]
    return max(1, (nfe + per - 1) // per)


def accuracy_table() -> dict[str, list[float]]:
    mix = two_moons_2d()
    levels = NoiseLevels(torch.tensor([SIGMA_MIN, SIGMA_MAX]))
    g = torch.Generator().manual_seed(0)
    paths = mix.sample(64, g) + SIGMA_MAX * torch.randn(64, 2, generator=g, dtype=torch.float64)
    exact = mix.ode_solution(paths, SIGMA_MAX, 0.0)
    crowd = mix.sample(8000, g) + SIGMA_MAX * torch.randn(8000, 2, generator=g, dtype=torch.float64)
    results: dict[str, list[float]] = {}
    for name, fn in SAMPLERS.items():
        errors = []
        for nfe in NFES:
            model = MixtureDenoiser(mix)
            sigmas = karras(levels, steps_for(name, nfe))
            if name in STOCHASTIC_SAMPLERS:
                noise = GeneratorNoise([torch.Generator().manual_seed(1)], crowd.shape, dtype=torch.float64)
                out = fn(model, crowd.clone(), sigmas, generator=lambda a, b: noise.sample()[0])
                err = max((out.mean(0) - mix.mean()).abs().max().item(),
                          (torch.cov(out.T) - mix.covariance()).abs().max().item())
            else:
                err = (fn(model, paths.clone(), sigmas) - exact).abs().max().item()
            errors.append(err)
        results[name] = errors
    return results


def print_accuracy(results: dict[str, list[float]]) -> None:
    print("1. Error vs model evaluations (karras schedule, sigma 20 -> 0)")
    print("   deterministic: max |x - exact ODE endpoint|; stochastic (*): max moment error")
    print(f"   {'sampler':<22}" + "".join(f"{f'NFE {n}':>11}" for n in NFES))
    for name, errors in results.items():
        tag = name + (" *" if name in STOCHASTIC_SAMPLERS else "")
        print(f"   {tag:<22}" + "".join(f"{e:>11.2e}" for e in errors))


def plot_accuracy(results: dict[str, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for name, errors in results.items():
        ax = axes[1] if name in STOCHASTIC_SAMPLERS else axes[0]
        ax.loglog(NFES, errors, marker="o", label=name)
    axes[0].set_title("Deterministic: error vs exact PF-ODE endpoint")
    axes[1].set_title("Stochastic: mean/covariance error (8000 samples)")
    for ax in axes:
        ax.set_xlabel("model evaluations (NFE)")
        ax.set_ylabel("max abs error")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def small_unet() -> torch.nn.Module:
    from diffusers import UNet2DModel

    torch.manual_seed(0)
    return UNet2DModel(sample_size=32, in_channels=4, out_channels=4, layers_per_block=1,
                       block_out_channels=(32, 64), norm_num_groups=8,
                       down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D")).eval()


class TimedModel:
    """Accumulates the wall time spent inside the model function."""

    def __init__(self, unet: torch.nn.Module) -> None:
        self.unet, self.seconds = unet, 0.0

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        out = self.unet(x, t).sample
        self.seconds += time.perf_counter() - start
        return out


def overhead(unet: torch.nn.Module, levels: NoiseLevels, repeats: int = 7) -> None:
    print("\n2. Engine overhead per step (time outside the model call / model time), small UNet 4x32x32")
    x = GeneratorNoise.from_seeds([0], (4, 32, 32)).sample()
    sigmas = karras(levels, 20)
    for name in ("euler", "dpmpp_2m", "heun", "euler_ancestral", "dpmpp_2m_sde", "unipc", "lms"):
        best = float("inf")
        for _ in range(repeats):
            timed = TimedModel(unet)
            noise = GeneratorNoise.from_seeds([1], (4, 32, 32))
            start = time.perf_counter()
            with torch.no_grad():
                SAMPLERS[name](EpsDenoiser(timed, levels), x * float(sigmas[0]), sigmas, generator=noise)
            total = time.perf_counter() - start
            best = min(best, (total - timed.seconds) / timed.seconds)
        print(f"   {name:<18} overhead {100 * best:6.2f} %  (target < 2 %)")


def versus_diffusers(unet: torch.nn.Module, levels: NoiseLevels, repeats: int = 9) -> None:
    from diffusers import DPMSolverMultistepScheduler, EulerDiscreteScheduler, UniPCMultistepScheduler

    print("\n3. Our loop vs diffusers' scheduler loop (same UNet, 20 steps), time ratio ours/theirs")
    sd = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}
    cases = {
        "euler": lambda: EulerDiscreteScheduler(**sd, use_karras_sigmas=True),
        "dpmpp_2m": lambda: DPMSolverMultistepScheduler(**sd),
        "unipc": lambda: UniPCMultistepScheduler(**sd),
    }
    noise = GeneratorNoise.from_seeds([0], (4, 32, 32)).sample()
    for name, make in cases.items():
        sched = make()
        sched.set_timesteps(20)
        if name == "euler":
            sigmas = sched.sigmas.double()
            x0 = noise * sched.init_noise_sigma
        else:
            table = levels.sigmas[sched.timesteps.long()]
            sigmas = torch.cat([table, torch.zeros(1, dtype=torch.float64)])
            x0 = noise * (1 + float(sigmas[0]) ** 2) ** 0.5

        def run_ours() -> torch.Tensor:
            with torch.no_grad():
                return SAMPLERS[name](EpsDenoiser(lambda x, t: unet(x, t).sample, levels), x0.clone(), sigmas)

        def run_theirs() -> torch.Tensor:
            sched = make()
            sched.set_timesteps(20)
            x = noise * sched.init_noise_sigma
            with torch.no_grad():
                for t in sched.timesteps:
                    x = sched.step(unet(sched.scale_model_input(x, t), t).sample, t, x).prev_sample
            return x

        # The machine's speed drifts: time the two back to back (alternating which goes first) and
        # take the median of the per-pair ratios.
        ratios, ours_t, theirs_t = [], float("inf"), float("inf")
        for r in range(repeats):
            pair = {}
            for who, fn in ((("ours", run_ours), ("theirs", run_theirs)) if r % 2 == 0
                            else (("theirs", run_theirs), ("ours", run_ours))):
                start = time.perf_counter()
                result = fn()
                pair[who] = (time.perf_counter() - start, result)
            ratios.append(pair["ours"][0] / pair["theirs"][0])
            ours_t, theirs_t = min(ours_t, pair["ours"][0]), min(theirs_t, pair["theirs"][0])
        ours, x = pair["ours"][1], pair["theirs"][1]
        ratio = sorted(ratios)[len(ratios) // 2]
        diff = float((ours - x).norm() / x.norm())
        print(f"   {name:<10} ours {ours_t * 1e3:7.1f} ms  diffusers {theirs_t * 1e3:7.1f} ms  "
              f"median ratio {ratio:5.3f}  (target <= 1.0; results differ by {diff:.1e})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    results = accuracy_table()
    print_accuracy(results)
    png = args.out / "sampler_accuracy.png"
    plot_accuracy(results, png)
    print(f"   plot: {png}")
    unet = small_unet()
    levels = NoiseLevels.from_betas(make_betas("scaled_linear"))
    overhead(unet, levels)
    versus_diffusers(unet, levels)


if __name__ == "__main__":
    main()
