"""Model families (SD1.x, SD2.x, SDXL base, SD3/3.5) and their detection from tensor names and
shapes of a single-file checkpoint in the original (CompVis/SAI) key layout."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from engine.models.checkpoint import KeyIndex


class Family(str, Enum):
    """A base-model architecture; each has a config skeleton under resources/configs/<value>/."""

    SD1 = "sd1"
    SD2 = "sd2"
    SDXL = "sdxl"
    SD3 = "sd3"


@dataclass(frozen=True)
class FamilySpec:
    """What a family is made of and how it predicts."""

    family: Family
    label: str
    denoiser: str  # component folder: "unet" or "transformer"
    text_encoders: tuple[str, ...]  # component folders loaded, in pipeline order
    tokenizers: tuple[str, ...]
    prediction_type: str  # "epsilon", "v_prediction" or "flow"
    default_size: int
    latent_channels: int
    context_dim: int  # cross-attention width of the full-size model
    pipeline_class: str


FAMILY_SPECS = MappingProxyType(
    {
        Family.SD1: FamilySpec(
            Family.SD1, "Stable Diffusion 1.x", "unet", ("text_encoder",), ("tokenizer",),
            "epsilon", 512, 4, 768, "StableDiffusionPipeline",
        ),
        Family.SD2: FamilySpec(
            Family.SD2, "Stable Diffusion 2.x (768-v)", "unet", ("text_encoder",), ("tokenizer",),
            "v_prediction", 768, 4, 1024, "StableDiffusionPipeline",
        ),
        Family.SDXL: FamilySpec(
            Family.SDXL, "Stable Diffusion XL base", "unet", ("text_encoder", "text_encoder_2"),
            ("tokenizer", "tokenizer_2"), "epsilon", 1024, 4, 2048, "StableDiffusionXLPipeline",
        ),
        # The T5 encoder (text_encoder_3) is optional in diffusers' SD3 pipeline and not loaded here.
        Family.SD3: FamilySpec(
            Family.SD3, "Stable Diffusion 3 / 3.5", "transformer", ("text_encoder", "text_encoder_2"),
            ("tokenizer", "tokenizer_2"), "flow", 1024, 16, 4096, "StableDiffusion3Pipeline",
        ),
    }
)

UNET_PREFIX = "model.diffusion_model."
SD1_CLIP = "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"
SD2_OPENCLIP = "cond_stage_model.model.token_embedding.weight"
SDXL_CLIP_L = "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight"
SDXL_OPENCLIP_G = "conditioner.embedders.1.model.token_embedding.weight"
SDXL_REFINER_OPENCLIP = "conditioner.embedders.0.model.token_embedding.weight"
SD3_BLOCK = "joint_blocks.0.context_block.adaLN_modulation.1.bias"
SD3_CLIP_L = "text_encoders.clip_l.transformer.text_model.embeddings.token_embedding.weight"
SD3_CLIP_G = "text_encoders.clip_g.transformer.text_model.embeddings.token_embedding.weight"
SD3_T5 = "text_encoders.t5xxl.transformer.shared.weight"
CONTEXT_DIMS = MappingProxyType({768: Family.SD1, 1024: Family.SD2, 2048: Family.SDXL})
SDXL_REFINER_ADM = 2560

# Layouts Atelier recognises but cannot run; named so the error says what the file is.
UNSUPPORTED_SIGNATURES = (
    ("double_blocks.0.img_attn.qkv.weight", "a FLUX-style model"),
    ("model.diffusion_model.double_blocks.0.img_attn.qkv.weight", "a FLUX-style model"),
    (SDXL_REFINER_OPENCLIP, "an SDXL refiner"),
    ("down_blocks.1.0.channelwise.0.weight", "a Stable Cascade stage"),
    ("model.diffusion_model.input_blocks.10.0.skip_connection.bias", "the SD x4 upscaler"),
    ("double_layers.0.attn.w2q.weight", "an AuraFlow model"),
    ("model.diffusion_model.blocks.0.attn.qkv_x.weight", "a Mochi video model"),
)


@dataclass(frozen=True)
class FamilyMatch:
    """A detected base-model family with what else the keys revealed."""

    family: Family
    notes: tuple[str, ...] = ()
    in_channels: int | None = None
    has_vae: bool = True
    text_encoders_present: tuple[str, ...] = ()


def unsupported_layout(index: KeyIndex) -> str | None:
    """A name for a known but unsupported architecture, if the keys show one."""
    for key, what in UNSUPPORTED_SIGNATURES:
        if key in index:
            return what
    return None


def _context_dim(index: KeyIndex) -> int | None:
    """Cross-attention width from the first attn2.to_k weight (in_features = context width)."""
    for key, shape in index.shapes.items():
        if key.endswith("attn2.to_k.weight") and len(shape) == 2:
            return shape[1]
    return None


def _proj_in_is_linear(index: KeyIndex) -> bool | None:
    """SD2/SDXL transformers use a linear proj_in, SD1 a 1x1 conv; None when there is none."""
    for key, shape in index.shapes.items():
        if key.endswith("proj_in.weight"):
            return len(shape) == 2
    return None


def unet_family_from_shapes(index: KeyIndex, *, has_add_embedding: bool) -> Family | None:
    """SD1/SD2/SDXL for a UNet-shaped key set (original or diffusers names) from its shapes."""
    if has_add_embedding:
        return Family.SDXL
    ctx = _context_dim(index)
    if ctx in CONTEXT_DIMS:
        return CONTEXT_DIMS[ctx]
    linear = _proj_in_is_linear(index)
    if linear is None:
        return None
    return Family.SD2 if linear else Family.SD1


def _present(index: KeyIndex, keys: dict[str, str]) -> tuple[str, ...]:
    return tuple(name for name, key in keys.items() if key in index)


def _unet_family(index: KeyIndex) -> FamilyMatch | None:
    unet = index.strip(UNET_PREFIX)
    conv_in = unet.shape("input_blocks.0.0.weight")
    if conv_in is None:
        return None
    label = unet.shape("label_emb.0.0.weight")
    if label is not None and label[1] == SDXL_REFINER_ADM and SDXL_CLIP_L not in index:
        return None  # an SDXL refiner; reported by unsupported_layout / the caller
    if SDXL_CLIP_L in index or SDXL_OPENCLIP_G in index or label is not None:
        family = Family.SDXL
        present = _present(index, {"text_encoder": SDXL_CLIP_L, "text_encoder_2": SDXL_OPENCLIP_G})
    elif SD2_OPENCLIP in index:
        family, present = Family.SD2, ("text_encoder",)
    elif SD1_CLIP in index:
        family, present = Family.SD1, ("text_encoder",)
    else:
        found = unet_family_from_shapes(unet, has_add_embedding=False)
        if found is None:
            return None
        family, present = found, ()
    notes: list[str] = []
    in_ch = conv_in[1]
    if in_ch == 9:
        notes.append("inpainting UNet (9 input channels)")
    elif in_ch == 8:
        notes.append("instruct-pix2pix UNet (8 input channels)")
    if family is Family.SD2:
        notes.append("v-prediction assumed (SD2.x 768-v); SD2 512-base files need prediction_type='epsilon'")
    has_vae = index.any_startswith("first_stage_model.") or index.any_startswith("vae.")
    return FamilyMatch(family, tuple(notes), in_ch, has_vae, present)


def _sd3_family(index: KeyIndex) -> FamilyMatch | None:
    if UNET_PREFIX + SD3_BLOCK not in index and SD3_BLOCK not in index:
        return None
    present = _present(index, {"text_encoder": SD3_CLIP_L, "text_encoder_2": SD3_CLIP_G})
    notes = ["T5 weights present but not loaded (no T5 tokenizer is shipped)"] if SD3_T5 in index else []
    x_embed = index.shape(UNET_PREFIX + "x_embedder.proj.weight") or index.shape("x_embedder.proj.weight")
    has_vae = index.any_startswith("first_stage_model.") or index.any_startswith("vae.")
    return FamilyMatch(Family.SD3, tuple(notes), x_embed[1] if x_embed else None, has_vae, present)


def checkpoint_family(index: KeyIndex) -> FamilyMatch | None:
    """The base-model family of a single-file checkpoint in the original layout, or None."""
    return _sd3_family(index) or _unet_family(index)
