"""Original (CompVis/SAI) single-file key layouts to diffusers component state dicts, using
diffusers' own conversion functions, plus component configs inferred from tensor shapes."""

from __future__ import annotations

import math
import re
from typing import Any

import torch
from diffusers.loaders.single_file_utils import (
    convert_controlnet_checkpoint,
    convert_ldm_unet_checkpoint,
    convert_ldm_vae_checkpoint,
    convert_open_clip_checkpoint,
    convert_sd3_transformer_checkpoint_to_diffusers,
)

from engine.models.families import UNET_PREFIX, Family

StateDict = dict[str, torch.Tensor]

# Where each family's text encoders live in the original single-file layout, in pipeline order:
# (component, prefix, "clip" for Hugging Face CLIP names or "openclip" for OpenCLIP names).
TEXT_ENCODER_SOURCES: dict[Family, tuple[tuple[str, str, str], ...]] = {
    Family.SD1: (("text_encoder", "cond_stage_model.transformer.", "clip"),),
    Family.SD2: (("text_encoder", "cond_stage_model.model.", "openclip"),),
    Family.SDXL: (
        ("text_encoder", "conditioner.embedders.0.transformer.", "clip"),
        ("text_encoder_2", "conditioner.embedders.1.model.", "openclip"),
    ),
    Family.SD3: (
        ("text_encoder", "text_encoders.clip_l.transformer.", "clip"),
        ("text_encoder_2", "text_encoders.clip_g.transformer.", "clip"),
    ),
}


def _under(state: StateDict, prefix: str) -> StateDict:
    n = len(prefix)
    return {k[n:]: v for k, v in state.items() if k.startswith(prefix)}


def unet_state(state: StateDict, config: dict[str, Any]) -> StateDict:
    """UNet weights (model.diffusion_model.*) in diffusers names."""
    only = {k: v for k, v in state.items() if k.startswith(UNET_PREFIX)}
    return convert_ldm_unet_checkpoint(only, config) if only else {}


def vae_state(state: StateDict, config: dict[str, Any]) -> StateDict:
    """VAE weights (first_stage_model.*, vae.* or unprefixed) in diffusers names."""
    if "encoder.conv_in.weight" in state and "decoder.conv_in.weight" in state:
        only = state
    else:
        only = {k: v for k, v in state.items() if k.startswith(("first_stage_model.", "vae."))}
    if not only:
        return {}
    if "encoder.down_blocks.0.resnets.0.conv1.weight" in only:  # already diffusers names
        return dict(only)
    return convert_ldm_vae_checkpoint(only, config)


def sd3_transformer_state(state: StateDict) -> StateDict:
    """SD3 MMDiT weights in diffusers names (the converter pops keys, so it gets a copy)."""
    only = _under(state, UNET_PREFIX) or {k: v for k, v in state.items() if k.startswith("joint_blocks.")
                                          or k.split(".")[0] in _SD3_TOP}
    return convert_sd3_transformer_checkpoint_to_diffusers(dict(only)) if only else {}


_SD3_TOP = {"pos_embed", "x_embedder", "t_embedder", "y_embedder", "context_embedder", "final_layer"}


def text_encoder_state(state: StateDict, prefix: str, layout: str, meta_model: torch.nn.Module) -> StateDict:
    """One text encoder's weights in transformers names (with the `text_model.` prefix)."""
    if not any(k.startswith(prefix) for k in state):
        return {}
    if layout == "openclip":
        return convert_open_clip_checkpoint(meta_model, state, prefix=prefix)
    return _under(state, prefix)


def controlnet_state(state: StateDict, config: dict[str, Any]) -> StateDict:
    """ControlNet weights (control_model.* or unprefixed original names) in diffusers names."""
    return convert_controlnet_checkpoint(dict(state), config)


def fit_clip_keys(state: StateDict, model: torch.nn.Module) -> StateDict:
    """Match `text_model.` prefixes to the model (transformers >=5.6 flattens CLIPTextModel)."""
    flattened = not hasattr(model, "text_model")
    out: StateDict = {}
    for key, value in state.items():
        if flattened and key.startswith("text_model."):
            key = key[len("text_model."):]
        elif not flattened and not key.startswith(("text_model.", "text_projection.")):
            key = "text_model." + key
        out[key] = value
    return out


def clip_ignorable(num_layers: int) -> Any:
    """Keys a text encoder may carry but not use: position ids, logit scale, layers beyond the
    configured depth (SD2 runs OpenCLIP-H without its last layer), an unused projection."""
    layer = re.compile(r"(?:text_model\.)?encoder\.layers\.(\d+)\.")

    def ignore(key: str) -> bool:
        if key.endswith(("position_ids", "logit_scale")) or key.startswith("text_projection"):
            return True
        m = layer.match(key)
        return bool(m and int(m.group(1)) >= num_layers)

    return ignore


def unet_overrides(state: StateDict) -> dict[str, Any]:
    """Config values the UNet tensors fix: input channels (4, 8 pix2pix, 9 inpainting)."""
    conv_in = state.get(UNET_PREFIX + "input_blocks.0.0.weight")
    return {"in_channels": int(conv_in.shape[1])} if conv_in is not None else {}


def sd3_config_from_shapes(base: dict[str, Any], state: StateDict) -> dict[str, Any]:
    """The SD3 transformer config for these tensors (SD3 medium, 3.5 medium/large all differ);
    only `attention_head_dim` comes from the shipped config."""
    sd = _under(state, UNET_PREFIX) or state
    blocks = {int(k.split(".")[1]) for k in sd if k.startswith("joint_blocks.")}
    x_embed = sd.get("x_embedder.proj.weight")
    if not blocks or x_embed is None:
        return dict(base)
    hidden, in_ch, patch = int(x_embed.shape[0]), int(x_embed.shape[1]), int(x_embed.shape[2])
    config = dict(base)
    config.update(
        num_layers=max(blocks) + 1,
        in_channels=in_ch,
        patch_size=patch,
        num_attention_heads=hidden // int(base["attention_head_dim"]),
        caption_projection_dim=hidden,
        joint_attention_dim=int(sd["context_embedder.weight"].shape[1]),
        pooled_projection_dim=int(sd["y_embedder.mlp.0.weight"].shape[1]),
        out_channels=int(sd["final_layer.linear.weight"].shape[0]) // (patch * patch),
        qk_norm="rms_norm" if any(".attn.ln_q." in k for k in sd) else None,
        dual_attention_layers=tuple(sorted({int(k.split(".")[1]) for k in sd if ".x_block.attn2." in k})),
    )
    if "pos_embed" in sd:
        config["pos_embed_max_size"] = int(math.isqrt(int(sd["pos_embed"].shape[1])))
    return config
