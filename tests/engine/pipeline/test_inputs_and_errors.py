"""Model resolution, bad inputs with clear errors (and the engine keeps working), decoding fallbacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import ControlNetModel
from safetensors.torch import save_file

from engine.decoding.vae import TileSpec, decode, to_uint8
from engine.models import IncompatibleModelError, ModelLoadError, ModelNotFoundError, ModelStore, UnknownModelError
from engine.models.families import Family
from engine.pipeline import Engine, ImageInputs, InputImageError, NoModelError
from engine.pipeline import decode as decoding
from engine.pipeline.inpaint import crop_region
from engine.settings import ControlUnit, Job, ModelRef
from tests.engine.pipeline.conftest import tiny_job


def test_missing_model_path_names_it(engine: Engine, tiny_models, tmp_path: Path) -> None:
    gone = tmp_path / "moved" / "model.safetensors"
    with pytest.raises(ModelNotFoundError, match=str(gone)):
        engine.run(tiny_job(tiny_models, model=ModelRef(path=str(gone))))


def test_no_model_installed_says_where_to_put_one(tiny_resources, tmp_path: Path) -> None:
    empty = Engine(device="cpu", store=ModelStore.with_roots([tmp_path]), resources=tiny_resources)
    with pytest.raises(NoModelError, match=f"no model installed: put a checkpoint in {tmp_path}"):
        empty.run(Job(width=64, height=64))


def test_model_by_name_from_the_store_is_recorded_by_path(engine: Engine, tiny_models) -> None:
    result = engine.run(tiny_job(tiny_models, Family.SD2, model=ModelRef(name="tiny-sd2"), steps=2))[0]
    assert result.job.model.name == "tiny-sd2"
    assert Path(result.job.model.path).stem == "tiny-sd2" and Path(result.job.model.path).is_absolute()
    with pytest.raises(ModelNotFoundError, match="installed: .*tiny-sd1"):
        engine.run(tiny_job(tiny_models, model=ModelRef(name="no-such-model")))


def test_corrupt_and_unsupported_files_are_clear_errors_and_the_engine_goes_on(engine, tiny_models, tmp_path) -> None:  # type: ignore[no-untyped-def]
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(tiny_models[Family.SD1].single_file.read_bytes()[:5000])
    flux = tmp_path / "flux.safetensors"
    save_file({"double_blocks.0.img_attn.qkv.weight": torch.zeros(4, 4)}, str(flux))
    with pytest.raises(ModelLoadError, match="truncated.safetensors"):
        engine.run(tiny_job(tiny_models, model=ModelRef(path=str(truncated))))
    with pytest.raises(UnknownModelError, match="FLUX"):
        engine.run(tiny_job(tiny_models, model=ModelRef(path=str(flux))))
    with pytest.raises(InputImageError, match="not a readable image"):
        engine.run(tiny_job(tiny_models, init_image=str(truncated)))
    assert engine.run(tiny_job(tiny_models, steps=2))[0].image.shape == (64, 64, 3)


def test_controlnet_for_another_family_does_not_fit(engine, tiny_models, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cn = ControlNetModel.from_unet(tiny_models[Family.SD1].denoiser)
    cn.save_pretrained(tmp_path / "sd1-canny")
    rgb = np.zeros((64, 64, 3), np.uint8)
    unit = ControlUnit(type="canny", image="map", model=str(tmp_path / "sd1-canny"))
    job = tiny_job(tiny_models, Family.SDXL, controls=(unit,))
    with pytest.raises(IncompatibleModelError, match="Stable Diffusion 1.x"):
        engine.run(job, ImageInputs(images={"map": rgb}))


def test_controlnet_found_by_type_in_the_store(tiny_models, tiny_resources, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ControlNetModel.from_unet(tiny_models[Family.SD1].denoiser).save_pretrained(tmp_path / "control-canny")
    roots = [tiny_models[Family.SD1].folder.parent, tmp_path]
    eng = Engine(device="cpu", store=ModelStore.with_roots(roots), resources=tiny_resources)
    inputs = ImageInputs(images={"map": np.zeros((64, 64, 3), np.uint8)})
    job = tiny_job(tiny_models, steps=2, controls=(ControlUnit(type="canny", image="map"),))
    assert len(eng.run(job, inputs)) == 1
    with pytest.raises(ModelNotFoundError, match="no installed ControlNet for 'depth'"):
        eng.run(job.replace(controls=(ControlUnit(type="depth", image="map"),)), inputs)


def test_crop_region_pads_and_takes_the_output_aspect_ratio() -> None:
    mask = np.zeros((100, 200), np.float32)
    mask[40:50, 10:30] = 1.0
    region = crop_region(mask, padding=5, width=64, height=32)  # box 5..35 x 35..55 is 30 x 20, wants 2:1
    assert (region.left, region.top, region.right, region.bottom) == (0, 35, 40, 55)
    strip = np.zeros((100, 200), np.float32)
    strip[0:4, 0:20] = 1.0  # 20 x 4 at the top edge, output square: grows to 20 x 20, shifted inside the image
    corner = crop_region(strip, padding=0, width=32, height=32)
    assert (corner.left, corner.top, corner.right, corner.bottom) == (0, 0, 20, 20)


def test_decode_falls_back_to_tiles_when_memory_runs_out(engine: Engine, tiny_models, monkeypatch) -> None:
    model, _ = engine.load(tiny_job(tiny_models).model)
    vae = model.vae
    latents = torch.randn(1, 4, 40, 40, generator=torch.Generator().manual_seed(0))
    tiles = TileSpec(tile=16, overlap=8)
    whole = to_uint8(decode(vae, latents))[0]
    tiled = to_uint8(decode(vae, latents, tiles=tiles))[0]
    real = vae.decode

    def small_only(z, *args, **kwargs):  # type: ignore[no-untyped-def]
        if z.shape[-1] > tiles.tile:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real(z, *args, **kwargs)

    monkeypatch.setattr(vae, "decode", small_only)
    fallback = decoding.decode_image(vae, latents, tiles=tiles)
    assert np.array_equal(fallback, tiled)
    gap = np.abs(fallback.astype(np.int16) - whole.astype(np.int16))
    assert gap.mean() < 8.0  # random tiny VAE, 16-latent tiles: ~5 levels (quality is tested in decoding)
    monkeypatch.setattr(decoding, "TILED_ABOVE_PIXELS", 32 * 32)
    assert np.array_equal(decoding.decode_image(vae, latents, tiles=tiles), tiled)  # large: tiled up front
    monkeypatch.setattr(vae, "decode", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("bad shape")))
    with pytest.raises(RuntimeError, match="bad shape"):  # other errors are not swallowed
        decoding.decode_image(vae, latents[:, :, :8, :8], tiled=False)
