"""Detection of kind and family from keys and shapes, and clear typed errors for bad input."""

from __future__ import annotations

import pytest
import torch
from diffusers import ControlNetModel
from safetensors.torch import save_file

from engine.models import (
    Family,
    IncompatibleModelError,
    Layout,
    ModelKind,
    ModelLoadError,
    ModelNotFoundError,
    UnknownModelError,
    UnsafeCheckpointError,
    detect_path,
    load_controlnet,
    load_model,
    read_key_index,
)
from tests.engine.models.test_loading import assert_same_weights
from tests.engine.models.tiny import controlnet_to_original


class Callback:
    """Stands in for objects (e.g. Lightning callbacks) that old .ckpt files pickle."""


def _save(path, tensors):
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return path


@pytest.mark.parametrize("family", list(Family))
def test_single_file_and_folder_detection(family, tiny_models) -> None:
    tiny = tiny_models[family]
    for path, layout in ((tiny.single_file, Layout.ORIGINAL), (tiny.folder, Layout.DIFFUSERS_FOLDER)):
        det = detect_path(path)
        assert (det.kind, det.family, det.layout) == (ModelKind.CHECKPOINT, family, layout)


def test_detection_reads_headers_only(tiny_models, monkeypatch) -> None:
    import engine.models.checkpoint as ck

    monkeypatch.setattr(ck, "load_file", lambda *a, **k: pytest.fail("tensors were loaded"))
    assert detect_path(tiny_models[Family.SDXL].single_file).family is Family.SDXL


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_truncated_file_is_a_load_error(tiny_models, tmp_path) -> None:
    data = tiny_models[Family.SD1].single_file.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="corrupt or truncated"):
        load_model(cut)
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"\x80\x04not a checkpoint at all" * 10)
    with pytest.raises(ModelLoadError, match="corrupt or truncated"):
        detect_path(junk)


def test_missing_path_is_not_found(tmp_path) -> None:
    for path in (tmp_path / "gone.safetensors", tmp_path / "gone-folder"):
        with pytest.raises(ModelNotFoundError, match="does not exist") as info:
            load_model(path)
        assert info.value.path == path


def test_pickle_needing_code_is_refused_with_a_conversion_hint(tmp_path) -> None:
    path = tmp_path / "old.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "callbacks": Callback()}, path)
    with pytest.raises(UnsafeCheckpointError, match="pickle") as info:
        read_key_index(path)
    assert "save_file" in info.value.reason and "old.safetensors" in info.value.reason


def test_unsupported_family_names_what_it_found(tmp_path) -> None:
    flux = _save(tmp_path / "flux.safetensors", {"double_blocks.0.img_attn.qkv.weight": torch.zeros(6, 2),
                                                 "img_in.weight": torch.zeros(2, 2)})
    with pytest.raises(UnknownModelError, match="FLUX"):
        load_model(flux)
    other = _save(tmp_path / "other.safetensors", {"backbone.layer1.weight": torch.zeros(3, 3)})
    with pytest.raises(UnknownModelError, match=r"backbone \(1\)"):
        detect_path(other)


def test_vae_lora_and_upscaler_files_are_classified(tiny_models, tmp_path) -> None:
    vae = _save(tmp_path / "vae.safetensors", tiny_models[Family.SD3].vae.state_dict())
    det = detect_path(vae)
    assert (det.kind, det.layout, det.compatible) == (ModelKind.VAE, Layout.DIFFUSERS_FILE, (Family.SD3,))
    with pytest.raises(ModelLoadError, match="not a base model"):
        load_model(vae)

    kohya = _save(tmp_path / "kohya.safetensors", {
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": torch.zeros(4, 768),
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight": torch.zeros(320, 4),
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.alpha": torch.tensor(4.0)})
    det = detect_path(kohya)
    assert (det.kind, det.layout, det.family) == (ModelKind.LORA, Layout.KOHYA, Family.SD1)
    diffusers_lora = _save(tmp_path / "xl.safetensors", {
        "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight": torch.zeros(4, 2048),
        "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.lora_B.weight": torch.zeros(640, 4)})
    det = detect_path(diffusers_lora)
    assert (det.kind, det.layout, det.family) == (ModelKind.LORA, Layout.DIFFUSERS_FILE, Family.SDXL)

    esrgan = tmp_path / "4x.pth"
    torch.save({"conv_first.weight": torch.zeros(8, 3, 3, 3), "body.0.rdb1.conv1.weight": torch.zeros(4, 8, 3, 3)},
               esrgan)
    det = detect_path(esrgan)
    assert (det.kind, det.architecture) == (ModelKind.UPSCALER, "esrgan-rrdb")


@pytest.fixture(scope="module")
def tiny_controlnet(tiny_models) -> ControlNetModel:
    torch.manual_seed(3)
    cn = ControlNetModel.from_unet(tiny_models[Family.SD1].denoiser)
    with torch.no_grad():
        for p in cn.parameters():
            p.add_(torch.randn_like(p) * 0.01)  # zero convs would make layouts indistinguishable
    return cn.eval()


def test_controlnet_loads_from_every_layout(tiny_models, tiny_resources, tiny_controlnet, tmp_path) -> None:
    base = load_model(tiny_models[Family.SD1].single_file, resources=tiny_resources)
    folder = tmp_path / "cn-folder"
    tiny_controlnet.save_pretrained(folder)
    original = _save(tmp_path / "cn-original.safetensors", controlnet_to_original(tiny_controlnet))
    flat = _save(tmp_path / "cn-diffusers.safetensors", tiny_controlnet.state_dict())
    for path in (folder, original, flat):
        det = detect_path(path)
        assert (det.kind, det.family) == (ModelKind.CONTROLNET, Family.SD1), path
        assert_same_weights(load_controlnet(path, base), tiny_controlnet)


def test_controlnet_that_does_not_fit_the_base(tiny_models, tiny_resources, tiny_controlnet, tmp_path) -> None:
    original = _save(tmp_path / "cn.safetensors", controlnet_to_original(tiny_controlnet))
    sdxl = load_model(tiny_models[Family.SDXL].single_file, resources=tiny_resources)
    with pytest.raises(IncompatibleModelError, match="Stable Diffusion 1.x.*XL"):
        load_controlnet(original, sdxl)
    sd2 = load_model(tiny_models[Family.SD2].single_file, resources=tiny_resources)
    forced = load_model(tiny_models[Family.SD1].single_file, resources=tiny_resources)
    assert forced.family is Family.SD1
    # An SD1-family ControlNet whose widths differ from the base UNet's.
    wide = ControlNetModel(block_out_channels=(32, 96), layers_per_block=1, cross_attention_dim=32,
                           down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), norm_num_groups=32,
                           attention_head_dim=8)
    wide_file = _save(tmp_path / "wide.safetensors", controlnet_to_original(wide))
    with pytest.raises(IncompatibleModelError, match="not fit.*size mismatch"):
        load_controlnet(wide_file, forced)
    with pytest.raises(IncompatibleModelError):
        load_controlnet(original, sd2)


def test_corrupt_controlnet_is_a_load_error(tiny_models, tiny_resources, tmp_path) -> None:
    base = load_model(tiny_models[Family.SD1].folder, resources=tiny_resources)
    bad = tmp_path / "cn.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(ModelLoadError):
        load_controlnet(bad, base)
