"""UNet module names: diffusers <-> the original CompVis/SGM layout (input_blocks.N.M...).

LoRA files written against the original layout (kohya's SDXL LoRAs, A1111/LyCORIS files) name
modules this way; the mapping is derived from the UNet's own config, so it fits any depth.
"""

from __future__ import annotations

from typing import Any

RESNET_RENAMES = (("norm1.", "in_layers.0."), ("conv1.", "in_layers.2."), ("time_emb_proj.", "emb_layers.1."),
                  ("norm2.", "out_layers.0."), ("conv2.", "out_layers.3."), ("conv_shortcut.", "skip_connection."))
UNET_TOP = {"time_embedding.linear_1.": "time_embed.0.", "time_embedding.linear_2.": "time_embed.2.",
            "conv_in.": "input_blocks.0.0.", "conv_norm_out.": "out.0.", "conv_out.": "out.2.",
            "add_embedding.linear_1.": "label_emb.0.0.", "add_embedding.linear_2.": "label_emb.0.2."}


def unet_prefixes(config: dict[str, Any], up: bool = True) -> dict[str, tuple[str, bool]]:
    """diffusers prefix -> (original prefix, is_resnet) for a UNet of any depth."""
    n, layers = len(config["block_out_channels"]), config["layers_per_block"]
    out: dict[str, tuple[str, bool]] = {k: (v, False) for k, v in UNET_TOP.items()}
    idx = 1
    for i, kind in enumerate(config["down_block_types"]):
        for j in range(layers):
            out[f"down_blocks.{i}.resnets.{j}."] = (f"input_blocks.{idx}.0.", True)
            if "CrossAttn" in kind:
                out[f"down_blocks.{i}.attentions.{j}."] = (f"input_blocks.{idx}.1.", False)
            idx += 1
        if i < n - 1:
            out[f"down_blocks.{i}.downsamplers.0.conv."] = (f"input_blocks.{idx}.0.op.", False)
            idx += 1
    out["mid_block.resnets.0."] = ("middle_block.0.", True)
    out["mid_block.attentions.0."] = ("middle_block.1.", False)
    out["mid_block.resnets.1."] = ("middle_block.2.", True)
    if up:
        k = 0
        for i, kind in enumerate(config["up_block_types"]):
            attn = "CrossAttn" in kind
            for j in range(layers + 1):
                out[f"up_blocks.{i}.resnets.{j}."] = (f"output_blocks.{k}.0.", True)
                if attn:
                    out[f"up_blocks.{i}.attentions.{j}."] = (f"output_blocks.{k}.1.", False)
                if j == layers and i < n - 1:
                    out[f"up_blocks.{i}.upsamplers.0.conv."] = (f"output_blocks.{k}.{2 if attn else 1}.conv.", False)
                k += 1
    return out


def to_original(name: str, prefixes: dict[str, tuple[str, bool]]) -> str:
    """The original-layout name of a diffusers UNet parameter or module name (KeyError if none)."""
    for src, (dst, is_resnet) in sorted(prefixes.items(), key=lambda kv: -len(kv[0])):
        if name.startswith(src) or name + "." == src:
            rest = name[len(src):]
            if is_resnet:
                for a, b in RESNET_RENAMES:
                    if rest.startswith(a) or rest + "." == a:
                        rest = b + rest[len(a):] if rest.startswith(a) else b.rstrip(".")
                        break
            return (dst + rest).rstrip(".")
    raise KeyError(f"no original name for {name}")
