"""Tiny random-weight models of each family, saved as a diffusers folder and as an original
single-file checkpoint (our own diffusers -> CompVis/SAI key mapping), plus tiny config folders
laid out like resources/configs/ for the loader."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL, ControlNetModel, SD3Transformer2DModel, UNet2DConditionModel
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from engine.models.families import FAMILY_SPECS, Family
from engine.models.original_names import to_original as original_name, unet_prefixes
from engine.models.resources import RESOURCES_DIR, ResourcePaths

SHIPPED = RESOURCES_DIR / "configs"

CLIP = dict(vocab_size=49408, hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
            max_position_embeddings=77, projection_dim=32, bos_token_id=49406, eos_token_id=49407)
VAE = dict(block_out_channels=[32, 64], down_block_types=["DownEncoderBlock2D"] * 2,
           up_block_types=["UpDecoderBlock2D"] * 2, layers_per_block=1, latent_channels=4, norm_num_groups=32,
           sample_size=32)
UNET_SD1 = dict(block_out_channels=[32, 64], layers_per_block=1, cross_attention_dim=32, attention_head_dim=8,
                down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"], up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"],
                norm_num_groups=32, sample_size=16, in_channels=4, out_channels=4)
UNET_SD2 = dict(UNET_SD1, use_linear_projection=True, attention_head_dim=[2, 4])
UNET_SDXL = dict(UNET_SD1, down_block_types=["DownBlock2D", "CrossAttnDownBlock2D"],
                 up_block_types=["CrossAttnUpBlock2D", "UpBlock2D"], cross_attention_dim=64, use_linear_projection=True,
                 transformer_layers_per_block=[1, 2], addition_embed_type="text_time", addition_time_embed_dim=8,
                 projection_class_embeddings_input_dim=6 * 8 + 32, attention_head_dim=[2, 4])
SD3 = dict(sample_size=16, patch_size=2, in_channels=16, out_channels=16, num_layers=2, attention_head_dim=8,
           num_attention_heads=4, joint_attention_dim=64, caption_projection_dim=32, pooled_projection_dim=64,
           pos_embed_max_size=16, qk_norm="rms_norm", dual_attention_layers=[0])

DENOISER = {Family.SD1: UNET_SD1, Family.SD2: UNET_SD2, Family.SDXL: UNET_SDXL, Family.SD3: SD3}


def _write(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1))


def _act(family: Family, te: str) -> str:
    """OpenAI's CLIP-L uses quick_gelu, the OpenCLIP encoders (SD2's H, SDXL/SD3's bigG) gelu."""
    return "quick_gelu" if te == "text_encoder" and family is not Family.SD2 else "gelu"


def _vae_config(family: Family) -> dict:
    if family is Family.SD3:
        return dict(VAE, latent_channels=16, use_quant_conv=False, use_post_quant_conv=False)
    return dict(VAE)


def write_tiny_configs(root: Path) -> ResourcePaths:
    """Config folders shaped like resources/configs/, with tiny component sizes."""
    for family, spec in FAMILY_SPECS.items():
        src, dst = SHIPPED / family.value, root / family.value
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("config.json"))
        cls = "SD3Transformer2DModel" if family is Family.SD3 else "UNet2DConditionModel"
        _write(dst / spec.denoiser / "config.json", dict(DENOISER[family], _class_name=cls))
        _write(dst / "vae" / "config.json", dict(_vae_config(family), _class_name="AutoencoderKL"))
        for te in spec.text_encoders:
            _write(dst / te / "config.json", dict(CLIP, model_type="clip_text_model", hidden_act=_act(family, te)))
        if (dst / "text_encoder_3").exists():
            shutil.rmtree(dst / "text_encoder_3")
    return ResourcePaths(configs=root, tokenizers=RESOURCES_DIR / "tokenizers")


@dataclass
class TinyModel:
    """The modules of one tiny model and where its two saved layouts are."""

    family: Family
    denoiser: torch.nn.Module
    vae: AutoencoderKL
    text_encoders: tuple[torch.nn.Module, ...]
    folder: Path
    single_file: Path


def build_tiny(family: Family, out: Path, seed: int = 0) -> TinyModel:
    """Random tiny components for `family` (fixed seed), saved in both layouts under `out`."""
    torch.manual_seed(seed)
    spec = FAMILY_SPECS[family]
    if family is Family.SD3:
        denoiser = SD3Transformer2DModel(**SD3)
    else:
        denoiser = UNet2DConditionModel(**DENOISER[family])
    vae = AutoencoderKL(**_vae_config(family))
    encoders = []
    for te in spec.text_encoders:
        with_proj = family is Family.SD3 or te == "text_encoder_2"
        cls = CLIPTextModelWithProjection if with_proj else CLIPTextModel
        encoders.append(cls(CLIPTextConfig(**CLIP, hidden_act=_act(family, te))))
    if family is Family.SD3:  # SD3's CLIP-L projection is the identity; its files leave it out
        encoders[0].text_projection.weight.data = torch.eye(CLIP["hidden_size"])
    for m in (denoiser, vae, *encoders):
        m.eval()
    _perturb(denoiser)
    folder = out / f"tiny-{family.value}"
    save_folder(family, folder, denoiser, vae, tuple(encoders))
    single = out / f"tiny-{family.value}.safetensors"
    save_file(to_original(family, denoiser, vae, tuple(encoders)), str(single))
    return TinyModel(family, denoiser, vae, tuple(encoders), folder, single)


def _perturb(module: torch.nn.Module) -> None:
    """Give zero-initialised weights random values so every tensor is distinguishable."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            if torch.count_nonzero(p) == 0:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)


def save_folder(family: Family, folder: Path, denoiser, vae, encoders) -> None:
    """A diffusers pipeline folder (model_index.json + component folders)."""
    spec = FAMILY_SPECS[family]
    folder.mkdir(parents=True)
    shutil.copy(SHIPPED / family.value / "model_index.json", folder / "model_index.json")
    shutil.copytree(SHIPPED / family.value / "scheduler", folder / "scheduler")
    denoiser.save_pretrained(folder / spec.denoiser)
    vae.save_pretrained(folder / "vae")
    for name, te in zip(spec.text_encoders, encoders):
        te.save_pretrained(folder / name)
    for tok in spec.tokenizers:
        shutil.copytree(SHIPPED / family.value / tok, folder / tok)


# ---- diffusers -> original single-file key layout (our own mapping) ----

def unet_to_original(unet: UNet2DConditionModel) -> dict[str, torch.Tensor]:
    """UNet weights in CompVis names (without the model.diffusion_model. prefix)."""
    prefixes = unet_prefixes(dict(unet.config))
    return {original_name(k, prefixes): v.clone() for k, v in unet.state_dict().items()}


def controlnet_to_original(cn: ControlNetModel) -> dict[str, torch.Tensor]:
    """ControlNet weights in the original control_model.* names."""
    config = dict(cn.config)
    prefixes = unet_prefixes(config, up=False)
    prefixes["controlnet_cond_embedding.conv_in."] = ("input_hint_block.0.", False)
    prefixes["controlnet_cond_embedding.conv_out."] = ("input_hint_block.14.", False)
    for b in range(len(cn.controlnet_cond_embedding.blocks)):
        prefixes[f"controlnet_cond_embedding.blocks.{b}."] = (f"input_hint_block.{2 * (b + 1)}.", False)
    for z in range(len(cn.controlnet_down_blocks)):
        prefixes[f"controlnet_down_blocks.{z}."] = (f"zero_convs.{z}.0.", False)
    prefixes["controlnet_mid_block."] = ("middle_block_out.0.", False)
    return {"control_model." + original_name(k, prefixes): v.clone() for k, v in cn.state_dict().items()}


def vae_to_original(vae: AutoencoderKL) -> dict[str, torch.Tensor]:
    """VAE weights in CompVis names (encoder.down.*, decoder.up.* reversed, mid.attn_1 as 1x1 convs)."""
    n = len(vae.config.block_out_channels)
    out = {}
    for key, value in vae.state_dict().items():
        k = key.replace("conv_shortcut", "nin_shortcut").replace("conv_norm_out", "norm_out")
        for i in range(n):
            k = k.replace(f"encoder.down_blocks.{i}.resnets.", f"encoder.down.{i}.block.")
            k = k.replace(f"encoder.down_blocks.{i}.downsamplers.0.", f"encoder.down.{i}.downsample.")
            k = k.replace(f"decoder.up_blocks.{i}.resnets.", f"decoder.up.{n - 1 - i}.block.")
            k = k.replace(f"decoder.up_blocks.{i}.upsamplers.0.", f"decoder.up.{n - 1 - i}.upsample.")
        k = k.replace("mid_block.resnets.0.", "mid.block_1.").replace("mid_block.resnets.1.", "mid.block_2.")
        if "mid_block.attentions.0." in k:
            k = k.replace("mid_block.attentions.0.", "mid.attn_1.")
            for a, b in (("group_norm.", "norm."), ("to_q.", "q."), ("to_k.", "k."), ("to_v.", "v."),
                         ("to_out.0.", "proj_out.")):
                k = k.replace(a, b)
            if value.ndim == 2:
                value = value[:, :, None, None]  # linear (out, in) -> 1x1 conv (out, in, 1, 1)
        out[k] = value.clone()
    return out


def _hf_clip(te: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Transformers CLIP weights with the `text_model.` prefix that released files use."""
    sd = te.state_dict()
    return {(k if k.startswith(("text_model.", "text_projection")) else "text_model." + k): v.clone()
            for k, v in sd.items() if not k.endswith("position_ids")}


def clip_to_openclip(te: torch.nn.Module, extra_layer: bool) -> dict[str, torch.Tensor]:
    """CLIP text weights in OpenCLIP names (fused in_proj, transposed projection)."""
    sd = _hf_clip(te)
    out: dict[str, torch.Tensor] = {}
    layers = te.config.num_hidden_layers
    for i in range(layers):
        p = f"text_model.encoder.layers.{i}."
        q = f"transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            out[q + f"attn.in_proj_{kind}"] = torch.cat([sd[p + f"self_attn.{x}_proj.{kind}"] for x in "qkv"])
            out[q + f"attn.out_proj.{kind}"] = sd[p + f"self_attn.out_proj.{kind}"]
            out[q + f"ln_1.{kind}"] = sd[p + f"layer_norm1.{kind}"]
            out[q + f"ln_2.{kind}"] = sd[p + f"layer_norm2.{kind}"]
            out[q + f"mlp.c_fc.{kind}"] = sd[p + f"mlp.fc1.{kind}"]
            out[q + f"mlp.c_proj.{kind}"] = sd[p + f"mlp.fc2.{kind}"]
    if extra_layer:  # SD2 ships OpenCLIP-H with one more layer than it uses
        for k in [k for k in out if k.startswith(f"transformer.resblocks.{layers - 1}.")]:
            out[k.replace(f"resblocks.{layers - 1}.", f"resblocks.{layers}.")] = torch.randn_like(out[k])
    out["token_embedding.weight"] = sd["text_model.embeddings.token_embedding.weight"]
    out["positional_embedding"] = sd["text_model.embeddings.position_embedding.weight"]
    out["ln_final.weight"] = sd["text_model.final_layer_norm.weight"]
    out["ln_final.bias"] = sd["text_model.final_layer_norm.bias"]
    hidden = te.config.hidden_size
    proj = sd.get("text_projection.weight", torch.randn(hidden, hidden))
    out["text_projection"] = proj.T.contiguous()  # OpenCLIP stores (width, embed)
    return out


def _swap(w: torch.Tensor) -> torch.Tensor:
    shift, scale = w.chunk(2, dim=0)
    return torch.cat([scale, shift], dim=0)


def sd3_to_original(tr: SD3Transformer2DModel) -> dict[str, torch.Tensor]:
    """SD3 MMDiT weights in SAI names (fused qkv, swapped scale/shift on final modulations)."""
    sd = {k: v.clone() for k, v in tr.state_dict().items()}
    last = tr.config.num_layers - 1
    out = {"pos_embed": sd.pop("pos_embed.pos_embed")}
    simple = {"pos_embed.proj.": "x_embedder.proj.", "time_text_embed.timestep_embedder.linear_1.": "t_embedder.mlp.0.",
              "time_text_embed.timestep_embedder.linear_2.": "t_embedder.mlp.2.",
              "time_text_embed.text_embedder.linear_1.": "y_embedder.mlp.0.",
              "time_text_embed.text_embedder.linear_2.": "y_embedder.mlp.2.", "context_embedder.": "context_embedder.",
              "proj_out.": "final_layer.linear."}
    for kind in ("weight", "bias"):
        for a, b in simple.items():
            out[b + kind] = sd.pop(a + kind)
        out[f"final_layer.adaLN_modulation.1.{kind}"] = _swap(sd.pop(f"norm_out.linear.{kind}"))
        for i in range(last + 1):
            t, j = f"transformer_blocks.{i}.", f"joint_blocks.{i}."
            out[j + f"x_block.attn.qkv.{kind}"] = torch.cat([sd.pop(t + f"attn.to_{x}.{kind}") for x in "qkv"])
            out[j + f"context_block.attn.qkv.{kind}"] = torch.cat([sd.pop(t + f"attn.add_{x}_proj.{kind}") for x in "qkv"])
            out[j + f"x_block.attn.proj.{kind}"] = sd.pop(t + f"attn.to_out.0.{kind}")
            out[j + f"x_block.adaLN_modulation.1.{kind}"] = sd.pop(t + f"norm1.linear.{kind}")
            ctx_mod = sd.pop(t + f"norm1_context.linear.{kind}")
            out[j + f"context_block.adaLN_modulation.1.{kind}"] = _swap(ctx_mod) if i == last else ctx_mod
            out[j + f"x_block.mlp.fc1.{kind}"] = sd.pop(t + f"ff.net.0.proj.{kind}")
            out[j + f"x_block.mlp.fc2.{kind}"] = sd.pop(t + f"ff.net.2.{kind}")
            if i != last:
                out[j + f"context_block.attn.proj.{kind}"] = sd.pop(t + f"attn.to_add_out.{kind}")
                out[j + f"context_block.mlp.fc1.{kind}"] = sd.pop(t + f"ff_context.net.0.proj.{kind}")
                out[j + f"context_block.mlp.fc2.{kind}"] = sd.pop(t + f"ff_context.net.2.{kind}")
            if t + f"attn2.to_q.{kind}" in sd:
                out[j + f"x_block.attn2.qkv.{kind}"] = torch.cat([sd.pop(t + f"attn2.to_{x}.{kind}") for x in "qkv"])
                out[j + f"x_block.attn2.proj.{kind}"] = sd.pop(t + f"attn2.to_out.0.{kind}")
    for i in range(last + 1):
        t, j = f"transformer_blocks.{i}.", f"joint_blocks.{i}."
        for a, b in (("attn.norm_q", "x_block.attn.ln_q"), ("attn.norm_k", "x_block.attn.ln_k"),
                     ("attn.norm_added_q", "context_block.attn.ln_q"), ("attn.norm_added_k", "context_block.attn.ln_k"),
                     ("attn2.norm_q", "x_block.attn2.ln_q"), ("attn2.norm_k", "x_block.attn2.ln_k")):
            if f"{t}{a}.weight" in sd:
                out[f"{j}{b}.weight"] = sd.pop(f"{t}{a}.weight")
    if sd:
        raise KeyError(f"unmapped SD3 keys: {sorted(sd)[:5]}")
    return out


def to_original(family: Family, denoiser, vae, encoders) -> dict[str, torch.Tensor]:
    """One state dict in the family's original single-file layout."""
    if family is Family.SD3:
        out = {"model.diffusion_model." + k: v for k, v in sd3_to_original(denoiser).items()}
        for (name, te) in zip(("clip_l", "clip_g"), encoders):
            sd = _hf_clip(te)
            if name == "clip_l":
                sd.pop("text_projection.weight")  # SD3 files omit CLIP-L's (identity) projection
            out.update({f"text_encoders.{name}.transformer." + k: v for k, v in sd.items()})
    else:
        out = {"model.diffusion_model." + k: v for k, v in unet_to_original(denoiser).items()}
        if family is Family.SD1:
            out.update({"cond_stage_model.transformer." + k: v for k, v in _hf_clip(encoders[0]).items()})
        elif family is Family.SD2:
            out.update({"cond_stage_model.model." + k: v for k, v in clip_to_openclip(encoders[0], True).items()})
        else:
            out.update({"conditioner.embedders.0.transformer." + k: v for k, v in _hf_clip(encoders[0]).items()})
            out.update({"conditioner.embedders.1.model." + k: v for k, v in clip_to_openclip(encoders[1], False).items()})
    out.update({"first_stage_model." + k: v for k, v in vae_to_original(vae).items()})
    return {k: v.contiguous() for k, v in out.items()}
