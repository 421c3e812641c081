"""Loading tiny models of every family from both layouts gives the same weights and family."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.models import (
    Family,
    Layout,
    LoadOptions,
    ModelLoadError,
    ResourcePaths,
    load_model,
    load_vae,
)
from engine.models.convert import sd3_config_from_shapes
from engine.models.resources import read_config
from tests.engine.models.tiny import SD3, vae_to_original

PREDICTION = {Family.SD1: "epsilon", Family.SD2: "v_prediction", Family.SDXL: "epsilon", Family.SD3: "flow"}


def assert_same_weights(loaded: torch.nn.Module, original: torch.nn.Module) -> None:
    a, b = loaded.state_dict(), original.state_dict()
    assert a.keys() == b.keys()
    differing = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differing, differing[:5]


@pytest.mark.parametrize("family", list(Family))
@pytest.mark.parametrize("layout", ["folder", "single_file"])
def test_both_layouts_load_the_same_weights(family, layout, tiny_models, tiny_resources) -> None:
    tiny = tiny_models[family]
    path = tiny.folder if layout == "folder" else tiny.single_file
    model = load_model(path, resources=tiny_resources)
    assert model.family is family
    assert model.layout is (Layout.DIFFUSERS_FOLDER if layout == "folder" else Layout.ORIGINAL)
    assert model.prediction_type == PREDICTION[family]
    assert_same_weights(model.denoiser, tiny.denoiser)
    assert_same_weights(model.vae, tiny.vae)
    assert len(model.text_encoders) == len(tiny.text_encoders)
    for loaded, original in zip(model.text_encoders, tiny.text_encoders):
        assert type(loaded) is type(original)
        assert_same_weights(loaded, original)
    parts = model.components()
    assert set(parts) >= {"vae", "tokenizer"} and ("unet" in parts) != ("transformer" in parts)


def test_loaded_text_encoder_runs_like_the_original(tiny_models, tiny_resources) -> None:
    tiny = tiny_models[Family.SDXL]
    model = load_model(tiny.single_file, resources=tiny_resources)
    ids = model.tokenizers[1]("a photo of a cat", padding="max_length", max_length=77, return_tensors="pt").input_ids
    assert ids[0, :7].tolist() == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert ids[0, 7].item() == 0  # the OpenCLIP tokenizer pads with "!" (id 0)
    with torch.no_grad():
        got = model.text_encoders[1](ids, output_hidden_states=True)
        want = tiny.text_encoders[1](ids, output_hidden_states=True)
    torch.testing.assert_close(got.text_embeds, want.text_embeds, rtol=0, atol=0)
    torch.testing.assert_close(got.hidden_states[-2], want.hidden_states[-2], rtol=0, atol=0)


def test_dtype_option_casts_every_component(tiny_models, tiny_resources) -> None:
    model = load_model(tiny_models[Family.SD1].single_file, LoadOptions(dtype=torch.float16), tiny_resources)
    for module in (model.denoiser, model.vae, *model.text_encoders):
        assert {p.dtype for p in module.parameters()} == {torch.float16}


def test_prediction_type_override(tiny_models, tiny_resources) -> None:
    model = load_model(tiny_models[Family.SD2].single_file, LoadOptions(prediction_type="epsilon"), tiny_resources)
    assert model.prediction_type == "epsilon"
    assert model.scheduler_config["prediction_type"] == "epsilon"
    with pytest.raises(ValueError, match="prediction_type"):
        LoadOptions(prediction_type="x0")


def test_pickle_checkpoint_loads_through_weights_only(tiny_models, tiny_resources, tmp_path) -> None:
    tiny = tiny_models[Family.SD1]
    ckpt = tmp_path / "tiny-sd1.ckpt"
    torch.save({"state_dict": load_file(str(tiny.single_file)), "global_step": 10}, ckpt)
    model = load_model(ckpt, resources=tiny_resources)
    assert_same_weights(model.denoiser, tiny.denoiser)
    assert_same_weights(model.text_encoders[0], tiny.text_encoders[0])


def test_checkpoint_without_vae_needs_a_standalone_vae(tiny_models, tiny_resources, tmp_path) -> None:
    tiny = tiny_models[Family.SD1]
    state = {k: v for k, v in load_file(str(tiny.single_file)).items() if not k.startswith("first_stage_model.")}
    no_vae = tmp_path / "no-vae.safetensors"
    save_file(state, str(no_vae))
    with pytest.raises(ModelLoadError, match="no VAE weights"):
        load_model(no_vae, resources=tiny_resources)
    vae_file = tmp_path / "vae.safetensors"
    save_file({k: v.contiguous() for k, v in vae_to_original(tiny.vae).items()}, str(vae_file))
    model = load_model(no_vae, LoadOptions(vae=vae_file), tiny_resources)
    assert_same_weights(model.vae, tiny.vae)


def test_standalone_vae_in_both_layouts(tiny_models, tiny_resources, tmp_path) -> None:
    tiny = tiny_models[Family.SD3]
    original = tmp_path / "vae-original.safetensors"
    save_file({k: v.contiguous() for k, v in vae_to_original(tiny.vae).items()}, str(original))
    diffusers_file = tmp_path / "vae-diffusers.safetensors"
    save_file(tiny.vae.state_dict(), str(diffusers_file))
    for path in (original, diffusers_file, tiny.folder / "vae"):
        assert_same_weights(load_vae(path, Family.SD3, resources=tiny_resources), tiny.vae)


def test_sd3_config_is_inferred_from_shapes(tiny_models) -> None:
    shipped = read_config(ResourcePaths().component_dir(Family.SD3, "transformer"))
    state = load_file(str(tiny_models[Family.SD3].single_file))
    config = sd3_config_from_shapes(dict(shipped, attention_head_dim=SD3["attention_head_dim"]), state)
    for key in ("num_layers", "num_attention_heads", "joint_attention_dim", "caption_projection_dim",
                "pooled_projection_dim", "pos_embed_max_size", "in_channels", "out_channels", "patch_size", "qk_norm"):
        assert config[key] == SD3[key], key
    assert tuple(config["dual_attention_layers"]) == tuple(SD3["dual_attention_layers"])


def test_full_size_configs_reject_tiny_weights_with_a_clear_error(tiny_models) -> None:
    with pytest.raises(ModelLoadError, match="do not fit|missing"):
        load_model(tiny_models[Family.SD1].single_file)


def test_folder_with_missing_component_weights(tiny_models, tiny_resources, tmp_path) -> None:
    folder = tmp_path / "broken"
    shutil.copytree(tiny_models[Family.SD1].folder, folder)
    (folder / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="no weight file"):
        load_model(folder, resources=tiny_resources)


def test_inpainting_unet_in_channels_follow_the_weights(tiny_models, tiny_resources, tmp_path) -> None:
    state = load_file(str(tiny_models[Family.SD1].single_file))
    key = "model.diffusion_model.input_blocks.0.0.weight"
    state[key] = torch.randn(state[key].shape[0], 9, *state[key].shape[2:])
    path = tmp_path / "inpaint.safetensors"
    save_file(state, str(path))
    model = load_model(path, resources=tiny_resources)
    assert model.denoiser.config.in_channels == 9
    assert any("inpainting" in note for note in model.notes)
    assert json.loads(json.dumps(dict(model.scheduler_config)))["prediction_type"] == "epsilon"
