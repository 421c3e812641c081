"""LoRA patching: every key layout resolves, the update is W + s * alpha/r * up @ down, and
removal restores the weights bit for bit."""

from __future__ import annotations

import pytest
import torch
from diffusers import UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from engine.adapters.lora import apply_loras, group_layers
from engine.models.errors import IncompatibleModelError
from tests.engine.models.tiny import CLIP, UNET_SD1

ATTN = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"


@pytest.fixture
def unet() -> UNet2DConditionModel:
    torch.manual_seed(0)
    return UNet2DConditionModel(**UNET_SD1).eval()


@pytest.fixture
def clip() -> CLIPTextModel:
    torch.manual_seed(1)
    return CLIPTextModel(CLIPTextConfig(**CLIP)).eval()


def _pair(out: int, inp: int, rank: int = 4, seed: int = 0, conv: tuple[int, int] | None = None):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(seed)
    down_shape = (rank, inp, *conv) if conv else (rank, inp)
    up_shape = (out, rank, 1, 1) if conv else (out, rank)
    return torch.randn(down_shape, generator=g) * 0.1, torch.randn(up_shape, generator=g) * 0.1


def _snapshot(*modules: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for m in modules for p in m.parameters()]


def test_kohya_lora_patches_exactly_and_unpatches_bit_for_bit(unet, clip) -> None:
    before = _snapshot(unet, clip)
    q = unet.get_submodule(ATTN)
    te_q = clip.get_submodule("encoder.layers.0.self_attn.q_proj") if hasattr(clip, "encoder") else \
        clip.text_model.encoder.layers[0].self_attn.q_proj
    d1, u1 = _pair(q.out_features, q.in_features)
    d2, u2 = _pair(te_q.out_features, te_q.in_features, seed=1)
    state = {
        "lora_unet_" + ATTN.replace(".", "_") + ".lora_down.weight": d1,
        "lora_unet_" + ATTN.replace(".", "_") + ".lora_up.weight": u1,
        "lora_unet_" + ATTN.replace(".", "_") + ".alpha": torch.tensor(2.0),
        "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": d2,
        "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": u2,
    }
    w_q, w_te = q.weight.detach().clone(), te_q.weight.detach().clone()
    patch = apply_loras([(state, 0.8)], unet, (clip,))
    assert patch.applied == 2 and patch.unmatched == ()
    torch.testing.assert_close(q.weight, w_q + 0.8 * (2.0 / 4) * u1 @ d1)
    torch.testing.assert_close(te_q.weight, w_te + 0.8 * u2 @ d2)  # no alpha: scale 1
    patch.remove()
    assert all(torch.equal(a, b) for a, b in zip(before, _snapshot(unet, clip)))


def test_original_layout_and_peft_names_resolve(unet) -> None:
    proj_in = unet.get_submodule("down_blocks.0.attentions.0.proj_in")
    conv1 = unet.get_submodule("down_blocks.0.resnets.0.conv1")
    q = unet.get_submodule(ATTN)
    d1, u1 = _pair(proj_in.out_channels, proj_in.in_channels, conv=(1, 1))
    d2, u2 = _pair(q.out_features, q.in_features, seed=2)
    d3, u3 = _pair(conv1.out_channels, conv1.in_channels, conv=(3, 3), seed=3)
    state = {
        "lora_unet_input_blocks_1_1_proj_in.lora_down.weight": d1,  # SGM/CompVis module names
        "lora_unet_input_blocks_1_1_proj_in.lora_up.weight": u1,
        f"unet.{ATTN}.lora_A.weight": d2,  # PEFT
        f"unet.{ATTN}.lora_B.weight": u2,
        "lora_unet_input_blocks_1_0_in_layers_2.lora_down.weight": d3,  # LoCon on a resnet conv
        "lora_unet_input_blocks_1_0_in_layers_2.lora_up.weight": u3,
    }
    before = _snapshot(unet)
    w3 = conv1.weight.detach().clone()
    with apply_loras([(state, 1.0)], unet) as patch:
        assert patch.applied == 3
        expected = w3 + (u3.flatten(1) @ d3.flatten(1)).reshape(w3.shape)
        torch.testing.assert_close(conv1.weight, expected)
    assert all(torch.equal(a, b) for a, b in zip(before, _snapshot(unet)))


def test_two_loras_accumulate_and_strength_zero_is_identity(unet) -> None:
    q = unet.get_submodule(ATTN)
    d, u = _pair(q.out_features, q.in_features)
    key = "lora_unet_" + ATTN.replace(".", "_")
    state = {f"{key}.lora_down.weight": d, f"{key}.lora_up.weight": u}
    w = q.weight.detach().clone()
    with apply_loras([(state, 0.5), (state, 0.25)], unet):
        torch.testing.assert_close(q.weight, w + 0.75 * u @ d)
    with apply_loras([(state, 0.0)], unet):
        assert torch.equal(q.weight, w)


def test_incompatible_loras_raise_and_leave_weights_untouched(unet) -> None:
    before = _snapshot(unet)
    d, u = _pair(64, 64)
    with pytest.raises(IncompatibleModelError, match="fit this model"):
        apply_loras([({"lora_unet_nonexistent_block.lora_down.weight": d,
                       "lora_unet_nonexistent_block.lora_up.weight": u}, 1.0)], unet)
    key = "lora_unet_" + ATTN.replace(".", "_")
    good_d, good_u = _pair(unet.get_submodule(ATTN).out_features, unet.get_submodule(ATTN).in_features)
    bad = {f"{key}.lora_down.weight": good_d, f"{key}.lora_up.weight": good_u,
           "lora_unet_down_blocks_0_attentions_0_proj_out.lora_down.weight": torch.zeros(4, 7),
           "lora_unet_down_blocks_0_attentions_0_proj_out.lora_up.weight": torch.zeros(9, 4)}
    with pytest.raises(ValueError, match="does not fit"):
        apply_loras([(bad, 1.0)], unet)
    assert all(torch.equal(a, b) for a, b in zip(before, _snapshot(unet)))
    with pytest.raises(IncompatibleModelError, match="no LoRA weights"):
        apply_loras([({"something.weight": torch.zeros(2)}, 1.0)], unet)


def test_group_layers_reports_stray_keys() -> None:
    layers, other = group_layers({"a.lora_down.weight": torch.zeros(1, 2), "a.lora_up.weight": torch.zeros(2, 1),
                                  "b.lora_down.weight": torch.zeros(1, 2), "junk": torch.zeros(1)})
    assert list(layers) == ["a"] and sorted(other) == ["b", "junk"]
