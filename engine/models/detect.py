"""What a weight file or folder is: kind (checkpoint, VAE, ControlNet, LoRA, upscaler), key
layout and family, decided from tensor names and shapes (headers only) or diffusers configs."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from engine.models.checkpoint import WEIGHT_SUFFIXES, KeyIndex, read_key_index
from engine.models.errors import ModelLoadError, ModelNotFoundError, UnknownModelError
from engine.models.families import (
    FAMILY_SPECS,
    Family,
    checkpoint_family,
    unet_family_from_shapes,
    unsupported_layout,
)


class ModelKind(str, Enum):
    """What a model file is used for."""

    CHECKPOINT = "checkpoint"
    VAE = "vae"
    CONTROLNET = "controlnet"
    LORA = "lora"
    UPSCALER = "upscaler"


class Layout(str, Enum):
    """How the tensors are named and stored."""

    ORIGINAL = "original"  # one file, CompVis/SAI (ldm/sgm) names
    DIFFUSERS_FILE = "diffusers-file"  # one file, diffusers names
    DIFFUSERS_FOLDER = "diffusers-folder"  # model_index.json or config.json + weights
    KOHYA = "kohya"  # LoRA with lora_unet_/lora_te_ names (kohya-ss, A1111)


@dataclass(frozen=True)
class Detection:
    """The result of inspecting one model file or folder."""

    kind: ModelKind
    layout: Layout
    family: Family | None
    compatible: tuple[Family, ...]
    architecture: str
    notes: tuple[str, ...] = ()
    prediction_type: str | None = None
    in_channels: int | None = None


_VAE_ORIGINAL = ("encoder.down.0.block.0.conv1.weight", "decoder.up.0.block.0.conv1.weight")
_VAE_DIFFUSERS = ("encoder.down_blocks.0.resnets.0.conv1.weight", "decoder.up_blocks.0.resnets.0.conv1.weight")
_KOHYA_PREFIXES = ("lora_unet_", "lora_te_", "lora_te1_", "lora_te2_", "lora_transformer_")
_LORA_MARKERS = (".lora_down.", ".lora_up.", ".lora_A.", ".lora_B.", ".lora.down.", ".lora.up.",
                 "lora_linear_layer", ".hada_w1_a", ".lokr_w1", "_lora.down.")
_DIFFUSERS_LORA_PREFIXES = ("unet.", "text_encoder.", "text_encoder_2.", "transformer.", "base_model.model.")


def _family_by_latents(latent_channels: int) -> tuple[Family, ...]:
    return tuple(f for f, spec in FAMILY_SPECS.items() if spec.latent_channels == latent_channels)


def _detect_vae(index: KeyIndex) -> Detection | None:
    for prefix in ("", "first_stage_model.", "vae."):
        sub = index.strip(prefix) if prefix else index
        for keys, layout in ((_VAE_ORIGINAL, Layout.ORIGINAL), (_VAE_DIFFUSERS, Layout.DIFFUSERS_FILE)):
            if all(k in sub for k in keys):
                conv_in = sub.shape("decoder.conv_in.weight")
                latents = conv_in[1] if conv_in else 4
                return Detection(ModelKind.VAE, layout, None, _family_by_latents(latents), "autoencoder-kl",
                                 (f"{latents} latent channels",))
    return None


def _detect_controlnet(index: KeyIndex) -> Detection | None:
    if "pos_embed_input.proj.weight" in index and "transformer_blocks.0.attn.to_q.weight" in index:
        return Detection(ModelKind.CONTROLNET, Layout.DIFFUSERS_FILE, Family.SD3, (Family.SD3,), "sd3-controlnet")
    if "controlnet_cond_embedding.conv_in.weight" in index:
        sub, layout, add = index, Layout.DIFFUSERS_FILE, "add_embedding.linear_1.weight" in index
    else:
        prefix = "control_model." if index.any_startswith("control_model.input_hint_block.") else ""
        if prefix + "input_hint_block.0.weight" not in index:
            return None
        sub = index.strip(prefix) if prefix else index
        layout, add = Layout.ORIGINAL, "label_emb.0.0.weight" in sub
    family = unet_family_from_shapes(sub, has_add_embedding=add)
    compatible = (family,) if family else ()
    return Detection(ModelKind.CONTROLNET, layout, family, compatible, "controlnet")


def _lora_family(index: KeyIndex) -> Family | None:
    keys = list(index)
    if any(k.startswith(("lora_te2_", "text_encoder_2.")) for k in keys):
        return Family.SDXL
    if any("transformer_blocks" in k and k.startswith(("transformer.", "lora_transformer_")) for k in keys):
        if any("single_transformer_blocks" in k for k in keys):
            return None  # FLUX-style
        return Family.SD3
    for key, shape in index.shapes.items():
        if len(shape) == 2 and ("attn2_to_k." in key or "attn2.to_k." in key or "attn2.processor.to_k_lora.down" in key):
            if key.endswith(("lora_down.weight", "lora_A.weight", "down.weight")):
                return {768: Family.SD1, 1024: Family.SD2, 2048: Family.SDXL}.get(shape[1])
    return None


def _detect_lora(index: KeyIndex) -> Detection | None:
    keys = list(index)
    if not any(marker in k for k in keys for marker in _LORA_MARKERS):
        return None
    if any(k.startswith(_KOHYA_PREFIXES) for k in keys):
        layout = Layout.KOHYA
    elif any(k.startswith(_DIFFUSERS_LORA_PREFIXES) for k in keys):
        layout = Layout.DIFFUSERS_FILE
    else:
        return None
    family = _lora_family(index)
    kind = "lycoris" if any((".hada_" in k or ".lokr_" in k) for k in keys) else "lora"
    notes = () if family else ("base family not recognised from the keys",)
    return Detection(ModelKind.LORA, layout, family, (family,) if family else (), kind, notes)


def _detect_upscaler(index: KeyIndex) -> Detection | None:
    if "model.0.weight" in index and index.any_startswith("model.1.sub.0.RDB1."):
        arch = "esrgan-rrdb (old layout)"
    elif "conv_first.weight" in index and (
        index.any_startswith("body.0.rdb1.") or index.any_startswith("RRDB_trunk.0.RDB1.")
    ):
        arch = "esrgan-rrdb"
    elif index.any_startswith("layers.0.residual_group.blocks.0.conv_block."):
        arch = "hat"
    elif index.any_startswith("layers.0.residual_group.blocks.0.attn."):
        arch = "swinir"
    elif "body.0.weight" in index and "body.1.weight" in index and all(k.startswith("body.") for k in index):
        arch = "srvgg-compact"
    else:
        return None
    return Detection(ModelKind.UPSCALER, Layout.ORIGINAL, None, (), arch)


def _describe(index: KeyIndex) -> str:
    groups = Counter(k.split(".", 1)[0] for k in index)
    top = ", ".join(f"{name} ({n})" for name, n in groups.most_common(6))
    sample = ", ".join(list(index)[:3])
    return f"{len(index)} tensors; top-level groups: {top}; e.g. {sample}"


def detect_index(index: KeyIndex, path: Path) -> Detection:
    """Classify a weight file from its key index; UnknownModelError says what was found."""
    if len(index) == 0:
        raise UnknownModelError(path, "the file holds no tensors")
    match = checkpoint_family(index)
    if match is not None:
        spec = FAMILY_SPECS[match.family]
        arch = "mmdit" if spec.denoiser == "transformer" else "unet"
        return Detection(ModelKind.CHECKPOINT, Layout.ORIGINAL, match.family, (match.family,), arch,
                         match.notes, spec.prediction_type, match.in_channels)
    what = unsupported_layout(index)
    if what is not None:
        raise UnknownModelError(path, f"this is {what}, which Atelier does not support ({_describe(index)})")
    for detector in (_detect_controlnet, _detect_vae, _detect_lora, _detect_upscaler):
        found = detector(index)
        if found is not None:
            return found
    raise UnknownModelError(
        path,
        "not a supported model: no SD1.x/SD2.x/SDXL/SD3 checkpoint, VAE, ControlNet, LoRA or upscaler "
        f"layout matches ({_describe(index)})",
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(path, f"unreadable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelLoadError(path, "expected a JSON object")
    return data


def _pipeline_family(folder: Path, cls: str, index: dict[str, Any]) -> Family:
    if "StableDiffusion3" in cls:
        return Family.SD3
    if "XL" in cls:
        if not index.get("text_encoder") or index.get("text_encoder") == [None, None]:
            raise UnknownModelError(folder, f"{cls} without a first text encoder is an SDXL refiner, not supported")
        return Family.SDXL
    if cls.startswith("StableDiffusion"):
        unet = _read_json(folder / "unet" / "config.json")
        linear = bool(unet.get("use_linear_projection")) or unet.get("cross_attention_dim") == 1024
        return Family.SD2 if linear else Family.SD1
    raise UnknownModelError(folder, f"diffusers pipeline {cls or '(no _class_name)'} is not supported")


def detect_folder(folder: Path) -> Detection:
    """Classify a diffusers folder from model_index.json or a component config.json."""
    if (folder / "model_index.json").is_file():
        index = _read_json(folder / "model_index.json")
        cls = str(index.get("_class_name", ""))
        family = _pipeline_family(folder, cls, index)
        spec = FAMILY_SPECS[family]
        sched = folder / "scheduler" / "scheduler_config.json"
        pred = _read_json(sched).get("prediction_type") if sched.is_file() else None
        pred = "flow" if family is Family.SD3 else (pred or spec.prediction_type)
        conf = folder / spec.denoiser / "config.json"
        in_ch = _read_json(conf).get("in_channels") if conf.is_file() else None
        arch = "mmdit" if spec.denoiser == "transformer" else "unet"
        return Detection(ModelKind.CHECKPOINT, Layout.DIFFUSERS_FOLDER, family, (family,), arch, (), pred, in_ch)
    if (folder / "config.json").is_file():
        config = _read_json(folder / "config.json")
        cls = str(config.get("_class_name", ""))
        if cls == "ControlNetModel":
            if config.get("addition_embed_type") == "text_time":
                family = Family.SDXL
            elif config.get("use_linear_projection") or config.get("cross_attention_dim") == 1024:
                family = Family.SD2
            else:
                family = Family.SD1
            return Detection(ModelKind.CONTROLNET, Layout.DIFFUSERS_FOLDER, family, (family,), "controlnet")
        if cls == "SD3ControlNetModel":
            return Detection(ModelKind.CONTROLNET, Layout.DIFFUSERS_FOLDER, Family.SD3, (Family.SD3,), "sd3-controlnet")
        if cls in ("AutoencoderKL", "VQModel"):
            latents = int(config.get("latent_channels", 4))
            arch = "autoencoder-kl" if cls == "AutoencoderKL" else "vqgan"
            return Detection(ModelKind.VAE, Layout.DIFFUSERS_FOLDER, None, _family_by_latents(latents), arch,
                             (f"{latents} latent channels",))
        raise UnknownModelError(folder, f"diffusers component {cls or '(no _class_name)'} is not supported here")
    raise UnknownModelError(folder, "folder has neither model_index.json nor config.json")


def detect_path(path: Path) -> Detection:
    """Classify a model file or folder; raises a ModelLoadError subclass when it cannot."""
    path = Path(path)
    if not path.exists():
        raise ModelNotFoundError(path, "does not exist (moved, deleted, or on a drive that is not mounted)")
    if path.is_dir():
        return detect_folder(path)
    if path.suffix.lower() not in WEIGHT_SUFFIXES:
        raise ModelLoadError(path, f"unsupported file type {path.suffix!r}; expected one of {', '.join(WEIGHT_SUFFIXES)}")
    return detect_index(read_key_index(path), path)
