"""Pipeline benchmark: our Engine vs diffusers' own pipeline on the same model, steps and size.

Run: python benchmarks/pipeline.py [--repeats 5] [--steps 10]
Both run the same components with the same Euler sigmas, CFG and starting noise (txt2img, prompt
encoding and VAE decode included). Repeats are interleaved (ours, theirs, ours, ...) and the median
wall time is compared: target ratio ours/theirs <= 1.0 on CPU (<= 0.8 on a GPU). Peak memory of one
run: the peak of live torch CPU allocations (torch profiler) on CPU, max_memory_allocated on CUDA.
Tiny random-weight models of SD1, SDXL and SD3 on CPU; with CUDA also SD1.5- and SDXL-architecture
models with random weights at 512 and 1024 px.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from diffusers import (  # noqa: E402
    AutoencoderKL,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection  # noqa: E402

from benchmarks.measure import peak_bytes  # noqa: E402
from engine.models import FAMILY_SPECS, ModelStore, ResourcePaths  # noqa: E402
from engine.models.families import Family  # noqa: E402
from engine.models.resources import read_config  # noqa: E402
from engine.pipeline import Engine  # noqa: E402
from engine.pipeline.generate import job_sigmas, model_denoiser  # noqa: E402
from engine.sampling import GeneratorNoise  # noqa: E402
from engine.settings import Job, ModelRef  # noqa: E402
from tests.engine.models.tiny import build_tiny, save_folder, write_tiny_configs  # noqa: E402
from tests.engine.pipeline.reference import diffusers_pipeline  # noqa: E402

PROMPT, NEGATIVE = "a lighthouse on a cliff at sunset, oil painting", "blurry, lowres"  # no weights: diffusers has none


def quiet(pipe):  # type: ignore[no-untyped-def]
    """No tqdm bar: its output is not part of what is measured."""
    pipe.set_progress_bar_config(disable=True)
    return pipe


def runners(engine: Engine, job: Job) -> tuple[Callable[[], np.ndarray], Callable[[], np.ndarray]]:
    """(ours, theirs): two functions producing the same image."""
    model, _ = engine.load(job.model)
    pipe = quiet(diffusers_pipeline(model))
    f = 2 ** (len(model.vae.config.block_out_channels) - 1)
    shape = (model.vae.config.latent_channels, job.height // f, job.width // f)
    if model.family is Family.SD3:
        schedule = {"sigmas": list(np.linspace(1.0, 1.0 / job.steps, job.steps))}
    else:
        schedule = {"sigmas": job_sigmas(model_denoiser(model)[0], job, False).tolist()}

    def ours() -> np.ndarray:
        return engine.run(job)[0].image

    def theirs() -> np.ndarray:
        noise = GeneratorNoise.from_seeds([job.seed], shape, device=engine.device,
                                          dtype=next(model.denoiser.parameters()).dtype).sample()
        out = pipe(job.prompt, negative_prompt=job.negative_prompt, guidance_scale=job.cfg_scale,
                   height=job.height, width=job.width, latents=noise, output_type="np", **schedule)
        return np.round(out.images[0] * 255).astype(np.uint8)

    return ours, theirs


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def median_times(fns: list[Callable[[], object]], repeats: int, device: torch.device) -> list[float]:
    """Median wall time of each function over interleaved repeats (after one warm-up each)."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def full_size_model(family: Family, out: Path, resources: ResourcePaths) -> Path:
    """An SD1.5- or SDXL-architecture model with random weights, saved as a diffusers folder."""
    spec = FAMILY_SPECS[family]
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config(read_config(resources.component_dir(family, "unet")))
    vae = AutoencoderKL.from_config(read_config(resources.component_dir(family, "vae")))
    encoders = []
    for te in spec.text_encoders:
        config = CLIPTextConfig.from_pretrained(str(resources.component_dir(family, te)), local_files_only=True)
        encoders.append((CLIPTextModelWithProjection if te == "text_encoder_2" else CLIPTextModel)(config))
    folder = out / f"random-{family.value}"
    save_folder(family, folder, unet, vae, tuple(encoders))
    return folder


def compare(engine: Engine, job: Job, label: str, repeats: int) -> None:
    """Print the wall-time and peak-memory ratios of one configuration."""
    ours, theirs = runners(engine, job)
    same = np.abs(ours().astype(np.int16) - theirs().astype(np.int16)).max()
    t_ours, t_theirs = median_times([ours, theirs], repeats, engine.device)
    m_ours, m_theirs = peak_bytes(ours, engine.device), peak_bytes(theirs, engine.device)
    print(f"{label:<28} {job.width}x{job.height} {job.steps:>3} steps | ours {t_ours * 1000:8.1f} ms  "
          f"diffusers {t_theirs * 1000:8.1f} ms  time ratio {t_ours / t_theirs:5.2f} | peak ours "
          f"{m_ours / 2**20:8.1f} MiB  diffusers {m_theirs / 2**20:8.1f} MiB  memory ratio {m_ours / m_theirs:5.2f}"
          f" | max pixel diff {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", type=int, default=64, help="image side for the tiny models (SD3 tiny: at most 64)")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"repeats {args.repeats} (interleaved, median)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tiny_res = write_tiny_configs(root / "configs")
        engine = Engine(device=str(device), store=ModelStore.with_roots([root]), resources=tiny_res)
        for i, family in enumerate((Family.SD1, Family.SDXL, Family.SD3)):
            tiny = build_tiny(family, root / "models", seed=i)
            if family is Family.SD3:  # SD3's VAE scaling and shift (left out of the tiny config)
                cfg = tiny.folder / "vae" / "config.json"
                cfg.write_text(json.dumps(json.loads(cfg.read_text()) | {"scaling_factor": 1.5305,
                                                                         "shift_factor": 0.0609}))
            job = Job(model=ModelRef(path=str(tiny.folder)), prompt=PROMPT, negative_prompt=NEGATIVE, seed=1,
                      steps=args.steps, sampler="euler", schedule="flow_shift" if family is Family.SD3 else "karras",
                      cfg_scale=6.0, width=args.size, height=args.size)
            compare(engine, job, f"tiny {family.value}", args.repeats)
        if device.type == "cuda":
            full = Engine(device="cuda", store=ModelStore.with_roots([root]))
            for family, size in ((Family.SD1, 512), (Family.SDXL, 1024)):
                folder = full_size_model(family, root / "full", ResourcePaths())
                job = Job(model=ModelRef(path=str(folder)), prompt=PROMPT, negative_prompt=NEGATIVE, seed=1,
                          steps=20, sampler="euler", schedule="karras", cfg_scale=6.0, width=size, height=size)
                compare(full, job, f"random {family.value} (fp16)", max(3, args.repeats // 2))


if __name__ == "__main__":
    main()
