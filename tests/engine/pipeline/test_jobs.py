"""Job features on tiny models: seeds and batches, variation seeds, inpainting, ControlNet, LoRA,
previews, cancel and decoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import ControlNetModel
from PIL import Image
from safetensors.torch import save_file

from engine.models.families import Family
from engine.pipeline import Cancelled, CancelToken, Engine, GenerationError, ImageInputs, InputImageError, Progress
from engine.pipeline.seeds import slerp
from engine.settings import ControlUnit, Inpaint, LoraRef
from tests.engine.pipeline.conftest import SIZE, tiny_job

ATTN = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


@pytest.fixture(scope="module")
def controlnet_dir(tiny_models, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    torch.manual_seed(3)
    cn = ControlNetModel.from_unet(tiny_models[Family.SD1].denoiser)
    with torch.no_grad():
        for p in cn.parameters():
            p.add_(torch.randn_like(p) * 0.05)  # zero convs would give no residual at all
    folder = tmp_path_factory.mktemp("cn") / "tiny-canny"
    cn.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def control_map(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("maps") / "edges.png"
    rgb = np.zeros((48, 80, 3), np.uint8)  # another size and aspect ratio: fitted to the output
    rgb[10:30, 20:60] = 255
    Image.fromarray(rgb).save(path)
    return path


@pytest.fixture(scope="module")
def lora_file(tiny_models, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    q = tiny_models[Family.SD1].denoiser.get_submodule(ATTN)
    g = torch.Generator().manual_seed(0)
    name = "lora_unet_" + ATTN.replace(".", "_")
    state = {name + ".lora_down.weight": torch.randn(4, q.in_features, generator=g),
             name + ".lora_up.weight": torch.randn(q.out_features, 4, generator=g), name + ".alpha": torch.tensor(4.0)}
    path = tmp_path_factory.mktemp("lora") / "style.safetensors"
    save_file(state, str(path))
    return path


def test_batches_use_consecutive_seeds_and_each_image_rerenders_alone(engine: Engine, tiny_models) -> None:
    job = tiny_job(tiny_models, batch_size=2, batch_count=2, sampler="euler_ancestral")
    results = engine.run(job)
    assert [r.job.seed for r in results] == [7, 8, 9, 10]
    assert all(r.job.batch_size == 1 and r.job.batch_count == 1 for r in results)
    assert min(_diff(a.image, b.image) for i, a in enumerate(results) for b in results[i + 1:]) > 10
    for result in results[2:]:  # the second pass; batched and single matmuls may round apart by one level
        alone = engine.run(result.job)[0].image
        assert _diff(alone, result.image) <= 1 and (alone != result.image).mean() < 0.01
    single = engine.run(tiny_job(tiny_models, batch_count=2, sampler="euler_ancestral"))
    assert np.array_equal(engine.run(single[1].job)[0].image, single[1].image)  # batch size 1: exact


def test_variation_seed_slerps_towards_the_variation_noise(engine: Engine, tiny_models) -> None:
    plain = engine.run(tiny_job(tiny_models))[0].image
    var0 = engine.run(tiny_job(tiny_models, variation_seed=99, variation_strength=0.0))[0].image
    assert np.array_equal(plain, var0)
    full = engine.run(tiny_job(tiny_models, variation_seed=99, variation_strength=1.0))[0].image
    assert _diff(full, engine.run(tiny_job(tiny_models, seed=99))[0].image) <= 1  # Euler: noise of seed 99
    half = engine.run(tiny_job(tiny_models, variation_seed=99, variation_strength=0.5))
    assert _diff(half[0].image, plain) > 10 and _diff(half[0].image, full) > 10
    assert half[0].job.variation_seed == 99


def test_slerp_keeps_the_noise_norm_and_ends() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 4, 32, 32, generator=g), torch.randn(2, 4, 32, 32, generator=g)
    torch.testing.assert_close(slerp(0.0, a, b), a)
    torch.testing.assert_close(slerp(1.0, a, b), b, atol=1e-5, rtol=1e-5)
    mid = slerp(0.5, a, b)
    ratio = torch.linalg.vector_norm(mid, dim=-2) / torch.linalg.vector_norm(a, dim=-2)
    assert 0.9 < float(ratio.mean()) < 1.1  # a straight average would shrink it to ~0.71


def _inputs() -> tuple[ImageInputs, np.ndarray, np.ndarray]:
    init = np.random.default_rng(1).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[8:24, 8:24] = 255
    return ImageInputs(images={"init.png": init}, masks={"mask.png": mask}), init, mask


def test_inpaint_keeps_the_unmasked_region_exactly(engine: Engine, tiny_models) -> None:
    inputs, init, _ = _inputs()
    job = tiny_job(tiny_models, init_image="init.png", denoise=1.0, inpaint=Inpaint(mask="mask.png", blur=2))
    out = engine.run(job, inputs)[0].image
    far = np.ones((SIZE, SIZE), bool)
    far[2:30, 2:30] = False  # beyond the blur of the masked square
    assert np.array_equal(out[far], init[far])
    assert np.abs(out[8:24, 8:24].astype(float) - init[8:24, 8:24]).mean() > 20


def test_only_masked_crops_generates_and_pastes_back(engine: Engine, tiny_models) -> None:
    inputs, init, _ = _inputs()
    job = tiny_job(tiny_models, init_image="init.png", denoise=1.0,
                   inpaint=Inpaint(mask="mask.png", blur=2, only_masked=True, padding=4))
    out = engine.run(job, inputs)[0].image
    assert out.shape == init.shape
    far = np.ones((SIZE, SIZE), bool)
    far[2:30, 2:30] = False
    assert np.array_equal(out[far], init[far])
    whole = engine.run(job.replace(inpaint=Inpaint(mask="mask.png", blur=2)), inputs)[0].image
    assert _diff(out[8:24, 8:24], whole[8:24, 8:24]) > 10  # the crop was generated at full resolution


def test_empty_mask_is_a_clear_error(engine: Engine, tiny_models) -> None:
    inputs, _, _ = _inputs()
    empty = ImageInputs(images=inputs.images, masks={"mask.png": np.zeros((SIZE, SIZE), np.uint8)})
    with pytest.raises(InputImageError, match="mask is empty"):
        engine.run(tiny_job(tiny_models, init_image="init.png", inpaint=Inpaint(mask="mask.png")), empty)


def test_controlnet_weight_zero_equals_no_controlnet(engine, tiny_models, controlnet_dir, control_map) -> None:  # type: ignore[no-untyped-def]
    plain = engine.run(tiny_job(tiny_models))[0].image

    def unit(weight: float, **kw: float) -> ControlUnit:
        return ControlUnit(type="canny", image=str(control_map), model=str(controlnet_dir), weight=weight, **kw)

    zero = engine.run(tiny_job(tiny_models, controls=(unit(0.0),)))[0].image
    assert np.array_equal(plain, zero)
    one = engine.run(tiny_job(tiny_models, controls=(unit(1.0),)))[0].image
    assert _diff(one, plain) > 5
    two = engine.run(tiny_job(tiny_models, controls=(unit(1.0), unit(0.7))))[0].image
    assert _diff(two, one) > 5
    late = engine.run(tiny_job(tiny_models, controls=(unit(1.0, start=0.5, end=1.0),)))[0].image
    assert _diff(late, one) > 2 and _diff(late, plain) > 0


def test_lora_applies_for_the_job_and_is_removed_exactly(engine, tiny_models, lora_file) -> None:  # type: ignore[no-untyped-def]
    model, _ = engine.load(tiny_job(tiny_models).model)
    before = [p.detach().clone() for p in model.denoiser.parameters()]
    plain = engine.run(tiny_job(tiny_models))[0].image
    styled = engine.run(tiny_job(tiny_models, loras=(LoraRef(path=str(lora_file), weight=1.0),)))[0].image
    assert _diff(styled, plain) > 5
    assert all(torch.equal(a, b) for a, b in zip(before, model.denoiser.parameters()))
    token = CancelToken()

    def cancel_at_two(p: Progress) -> None:
        if p.step == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        engine.run(tiny_job(tiny_models, loras=(LoraRef(path=str(lora_file)),)), progress=cancel_at_two, cancel=token)
    assert all(torch.equal(a, b) for a, b in zip(before, model.denoiser.parameters()))


def test_cancel_lands_within_one_step_and_previews_come_every_step(engine: Engine, tiny_models) -> None:
    seen: list[Progress] = []
    engine.run(tiny_job(tiny_models, steps=5, batch_count=2), progress=seen.append)
    assert [(p.step, p.batch) for p in seen] == [(s, b) for b in (0, 1) for s in range(1, 6)]
    assert all(p.preview is not None and p.preview.shape == (SIZE // 2, SIZE // 2, 3) for p in seen)
    assert seen[-1].fraction == 1.0 and not np.array_equal(seen[0].preview, seen[4].preview)
    token, reports = CancelToken(), []

    def on_progress(p: Progress) -> None:
        reports.append(p.step)
        if p.step == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        engine.run(tiny_job(tiny_models, steps=10, sampler="heun"), progress=on_progress, cancel=token)
    assert reports == [1, 2]


def test_out_of_memory_while_sampling_says_what_to_change(engine, tiny_models, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def oom(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr("engine.pipeline.jobs.sample_latents", oom)
    with pytest.raises(GenerationError, match="out of memory.*lower the batch size"):
        engine.run(tiny_job(tiny_models))
