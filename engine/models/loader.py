"""Build diffusers components (UNet/MMDiT, VAE, CLIP text encoders, tokenizers, ControlNet) from a
diffusers folder or an original single-file checkpoint, offline, with the shipped configs."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch
from diffusers import AutoencoderKL, ControlNetModel, SD3Transformer2DModel, UNet2DConditionModel, VQModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from engine.models import convert
from engine.models.build import build_module, folder_state_dict
from engine.models.cache import FileStamp, ModelCache
from engine.models.checkpoint import read_state_dict
from engine.models.detect import Detection, Layout, ModelKind, detect_path
from engine.models.errors import IncompatibleModelError, ModelLoadError, ModelNotFoundError, UnknownModelError
from engine.models.families import FAMILY_SPECS, Family
from engine.models.resources import ResourcePaths, clip_tokenizer, read_config

PREDICTION_TYPES = ("epsilon", "v_prediction", "flow")


@dataclass(frozen=True)
class LoadOptions:
    """How to load a base model; part of the cache key."""

    family: Family | None = None  # force a family instead of detecting it
    prediction_type: str | None = None  # e.g. "epsilon" for an SD2 512-base file
    dtype: torch.dtype = torch.float32
    device: str = "cpu"
    vae: Path | None = None  # a standalone VAE replacing the checkpoint's own

    def __post_init__(self) -> None:
        if self.prediction_type is not None and self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {self.prediction_type!r}")


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A base model ready for a pipeline: its components plus what the sampler must know."""

    path: Path
    family: Family
    layout: Layout
    prediction_type: str
    denoiser: torch.nn.Module  # UNet2DConditionModel or SD3Transformer2DModel
    vae: AutoencoderKL | VQModel  # a VQGAN quantizes to its codebook when it decodes
    text_encoders: tuple[torch.nn.Module, ...]
    tokenizers: tuple[CLIPTokenizer, ...]
    scheduler_config: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    # autoguidance's weaker model (a folder's guide/: its own denoiser and text encoders, the rest shared)
    guide: LoadedModel | None = None

    @property
    def nbytes(self) -> int:
        """Bytes held by all parameters and buffers (what the cache budget counts)."""
        modules = (self.denoiser, self.vae, *self.text_encoders)
        if self.guide is not None:
            modules += (self.guide.denoiser, *self.guide.text_encoders)
        seen: set[int] = set()
        total = 0
        for module in modules:
            for t in (*module.parameters(), *module.buffers()):
                key = t.untyped_storage().data_ptr()
                if key not in seen:
                    seen.add(key)
                    total += t.untyped_storage().nbytes()
        return total

    def components(self) -> dict[str, Any]:
        """Keyword arguments for the family's diffusers pipeline (scheduler not included)."""
        spec = FAMILY_SPECS[self.family]
        parts: dict[str, Any] = {spec.denoiser: self.denoiser, "vae": self.vae}
        parts.update(zip(spec.text_encoders, self.text_encoders))
        parts.update(zip(spec.tokenizers, self.tokenizers))
        return parts


def _clip_factory(config_dir: Path, component: str, family: Family) -> tuple[Any, CLIPTextConfig]:
    config = CLIPTextConfig.from_pretrained(str(config_dir), local_files_only=True)
    with_projection = family is Family.SD3 or component == "text_encoder_2"
    cls = CLIPTextModelWithProjection if with_projection else CLIPTextModel
    return (lambda: cls(config)), config


def _build_text_encoder(
    state: dict[str, torch.Tensor], config_dir: Path, component: str, family: Family, path: Path, options: LoadOptions
) -> torch.nn.Module:
    factory, config = _clip_factory(config_dir, component, family)
    with torch.device("meta"):
        probe = factory()
    state = convert.fit_clip_keys(state, probe)
    if hasattr(probe, "text_projection") and "text_projection.weight" not in state and family is Family.SD3:
        state["text_projection.weight"] = torch.eye(config.hidden_size)  # SD3 files omit CLIP-L's identity projection
    return build_module(factory, state, path=path, component=component, dtype=options.dtype, device=options.device,
                        ignore=convert.clip_ignorable(config.num_hidden_layers))


def _denoiser_factory(family: Family, config: dict[str, Any]) -> Any:
    cls = SD3Transformer2DModel if FAMILY_SPECS[family].denoiser == "transformer" else UNet2DConditionModel
    return lambda: cls.from_config(config)


def _scheduler_config(family: Family, folder: Path, options: LoadOptions) -> tuple[dict[str, Any], str]:
    config = read_config(folder, "scheduler_config.json")
    pred = "flow" if family is Family.SD3 else (options.prediction_type or config.get("prediction_type", "epsilon"))
    if family is Family.SD3 and options.prediction_type not in (None, "flow"):
        raise ValueError(f"SD3 models are flow models; prediction_type {options.prediction_type!r} does not apply")
    if family is not Family.SD3:
        config["prediction_type"] = pred
    return config, pred


def _check_kind(path: Path, det: Detection) -> None:
    if det.kind is not ModelKind.CHECKPOINT:
        raise ModelLoadError(path, f"is a {det.kind.value} ({det.architecture}), not a base model checkpoint")


def load_model(path: Path, options: LoadOptions = LoadOptions(), resources: ResourcePaths = ResourcePaths()) -> LoadedModel:
    """Load a base model from a diffusers folder or a single-file checkpoint, offline."""
    path = Path(path)
    det = detect_path(path)
    _check_kind(path, det)
    family = options.family or det.family
    assert family is not None
    if det.layout is Layout.DIFFUSERS_FOLDER:
        return _load_folder(path, family, det, options, resources)
    return _load_single_file(path, family, det, options, resources)


def _load_single_file(path: Path, family: Family, det: Detection, options: LoadOptions,
                      resources: ResourcePaths) -> LoadedModel:
    spec = FAMILY_SPECS[family]
    state = read_state_dict(path)
    denoiser_dir = resources.component_dir(family, spec.denoiser)
    config = read_config(denoiser_dir)
    if spec.denoiser == "transformer":
        config = convert.sd3_config_from_shapes(config, state)
        den_state = convert.sd3_transformer_state(state)
    else:
        config.update(convert.unet_overrides(state))
        den_state = convert.unet_state(state, config)
    denoiser = build_module(_denoiser_factory(family, config), den_state, path=path, component=spec.denoiser,
                            dtype=options.dtype, device=options.device)
    encoders = []
    for component, prefix, layout in convert.TEXT_ENCODER_SOURCES[family]:
        te_dir = resources.component_dir(family, component)
        factory, _ = _clip_factory(te_dir, component, family)
        with torch.device("meta"):
            probe = factory()
        te_state = convert.text_encoder_state(state, prefix, layout, probe)
        if not te_state:
            raise ModelLoadError(path, f"{component}: the checkpoint has no text encoder weights under {prefix!r}; "
                                       "files that ship only the diffusion model are not supported")
        encoders.append(_build_text_encoder(te_state, te_dir, component, family, path, options))
    if options.vae is not None:
        vae = load_vae(options.vae, family, dtype=options.dtype, device=options.device, resources=resources)
    else:
        vae_config = read_config(resources.component_dir(family, "vae"))
        vae_state = convert.vae_state(state, vae_config)
        if not vae_state:
            raise ModelLoadError(path, "vae: the checkpoint has no VAE weights; choose a standalone VAE file")
        vae = build_module(lambda: AutoencoderKL.from_config(vae_config), vae_state, path=path, component="vae",
                           dtype=options.dtype, device=options.device)
    del state
    tokenizers = tuple(clip_tokenizer(resources.component_dir(family, t), resources.tokenizers / "clip")
                       for t in spec.tokenizers)
    sched, pred = _scheduler_config(family, resources.component_dir(family, "scheduler"), options)
    return LoadedModel(path, family, det.layout, pred, denoiser, vae, tuple(encoders), tokenizers,
                       MappingProxyType(sched), det.notes)


def _folder_networks(path: Path, family: Family, options: LoadOptions,
                     text: bool = True) -> tuple[Any, tuple[Any, ...]]:
    """The denoiser and (unless `text` is false) the text encoders of a diffusers folder (or of its guide/)."""
    spec = FAMILY_SPECS[family]
    config = read_config(path / spec.denoiser)
    denoiser = build_module(_denoiser_factory(family, config), folder_state_dict(path / spec.denoiser), path=path,
                            component=spec.denoiser, dtype=options.dtype, device=options.device)
    encoders = tuple(
        _build_text_encoder(folder_state_dict(path / te), path / te, te, family, path, options)
        for te in (spec.text_encoders if text else ())
    )
    return denoiser, encoders


def _load_folder(path: Path, family: Family, det: Detection, options: LoadOptions,
                 resources: ResourcePaths) -> LoadedModel:
    spec = FAMILY_SPECS[family]
    config = read_config(path / spec.denoiser)
    denoiser, encoders = _folder_networks(path, family, options)
    latents = config.get("out_channels")  # what the VAE must decode (in_channels adds masks for inpainting)
    vae_path = options.vae if options.vae is not None else path / "vae"
    vae = load_vae(vae_path, family, dtype=options.dtype, device=options.device, resources=resources,
                   latent_channels=latents)
    if latents is not None and vae.config.latent_channels != latents:
        raise IncompatibleModelError(vae_path, f"a VAE with {vae.config.latent_channels} latent channels does not fit "
                                               f"this model's {spec.denoiser}, which works on {latents}")
    tokenizers = tuple(clip_tokenizer(path / t if (path / t).is_dir() else resources.component_dir(family, t),
                                      resources.tokenizers / "clip") for t in spec.tokenizers)
    sched_dir = path / "scheduler" if (path / "scheduler").is_dir() else resources.component_dir(family, "scheduler")
    sched, pred = _scheduler_config(family, sched_dir, options)
    model = LoadedModel(path, family, det.layout, pred, denoiser, vae, encoders, tokenizers,
                        MappingProxyType(sched), det.notes)
    return _with_guide(model, options)


def _with_guide(model: LoadedModel, options: LoadOptions) -> LoadedModel:
    """`model` with the guide model of its folder's guide/ when it has one (autoguidance): a denoiser of the
    same family and latent space, with its own text encoders when guide/ has them (else the model's),
    sharing the tokenizers, VAE and scheduler."""
    folder, spec = model.path / "guide", FAMILY_SPECS[model.family]
    if not (folder / spec.denoiser).is_dir():
        return model
    own_text = all((folder / te).is_dir() for te in spec.text_encoders)
    denoiser, encoders = _folder_networks(folder, model.family, options, text=own_text)
    encoders = encoders if own_text else model.text_encoders
    for name in ("in_channels", "out_channels"):
        if denoiser.config.get(name) != model.denoiser.config.get(name):
            raise IncompatibleModelError(folder, f"its {spec.denoiser} has {name} {denoiser.config.get(name)}, the "
                                                 f"model's {model.denoiser.config.get(name)}: it cannot guide it")
    guide = dataclasses.replace(model, path=folder, denoiser=denoiser, text_encoders=encoders, notes=(), guide=None)
    return dataclasses.replace(model, guide=guide)


def load_vae(path: Path, family: Family, *, dtype: torch.dtype = torch.float32, device: str = "cpu",
             resources: ResourcePaths = ResourcePaths(), latent_channels: int | None = None) -> AutoencoderKL | VQModel:
    """Load a VAE (folder, or single file in original or diffusers names) or a VQGAN (diffusers
    VQModel folder) for a family; `latent_channels` (the denoiser's input channels) also admits an
    autoencoder of another latent width that fits that denoiser (the built-in model's 8-channel VQGAN)."""
    path = Path(path)
    det = detect_path(path)
    if det.kind is not ModelKind.VAE:
        raise ModelLoadError(path, f"is a {det.kind.value}, not a VAE")
    fits_denoiser = (latent_channels is not None and det.layout is Layout.DIFFUSERS_FOLDER
                     and read_config(path).get("latent_channels") == latent_channels)
    if family not in det.compatible and not fits_denoiser:
        raise IncompatibleModelError(path, f"a VAE with {det.notes[0] if det.notes else 'this layout'} does not fit "
                                           f"{FAMILY_SPECS[family].label}")
    if det.layout is Layout.DIFFUSERS_FOLDER:
        config, state = read_config(path), folder_state_dict(path)
    else:
        config = read_config(resources.component_dir(family, "vae"))
        state = convert.vae_state(read_state_dict(path), config)
    cls = VQModel if det.architecture == "vqgan" else AutoencoderKL
    return build_module(lambda: cls.from_config(config), state, path=path, component="vae", dtype=dtype,
                        device=device)


_CONTROLNET_PARAMS = frozenset(inspect.signature(ControlNetModel.__init__).parameters) - {"self"}
_FIT_KEYS = ("cross_attention_dim", "block_out_channels", "addition_embed_type")


def _same(a: Any, b: Any) -> bool:
    return (list(a) if isinstance(a, (list, tuple)) else a) == (list(b) if isinstance(b, (list, tuple)) else b)


def controlnet_fits(path: Path, unet_config: Mapping[str, Any]) -> bool:
    """Whether a ControlNet folder's config fits a base UNet (single files are judged when loaded)."""
    config_path = Path(path) / "config.json"
    if not config_path.is_file():
        return True
    try:
        config = read_config(Path(path))
    except ModelLoadError:
        return False
    return all(_same(config.get(k), unet_config.get(k)) for k in _FIT_KEYS)


def _controlnet_config_from_unet(unet_config: Mapping[str, Any], state: dict[str, torch.Tensor]) -> dict[str, Any]:
    config = {k: v for k, v in unet_config.items() if k in _CONTROLNET_PARAMS}
    hint = state.get("control_model.input_hint_block.0.weight", state.get("input_hint_block.0.weight",
                     state.get("controlnet_cond_embedding.conv_in.weight")))
    conv_in = state.get("control_model.input_blocks.0.0.weight", state.get("input_blocks.0.0.weight",
                        state.get("conv_in.weight")))
    if hint is not None:
        config["conditioning_channels"] = int(hint.shape[1])
    config["in_channels"] = int(conv_in.shape[1]) if conv_in is not None else 4
    return config


def load_controlnet(path: Path, base: LoadedModel, *, dtype: torch.dtype | None = None,
                    device: str | None = None) -> ControlNetModel:
    """Load a ControlNet (folder or single file) and check that it fits the base model's UNet."""
    path = Path(path)
    det = detect_path(path)
    if det.kind is not ModelKind.CONTROLNET:
        raise ModelLoadError(path, f"is a {det.kind.value}, not a ControlNet")
    if det.family is Family.SD3 or base.family is Family.SD3:
        raise UnknownModelError(path, "ControlNets for SD3 models are not supported")
    if det.family is not None and det.family is not base.family:
        raise IncompatibleModelError(path, f"this ControlNet is for {FAMILY_SPECS[det.family].label}, "
                                           f"but the base model is {FAMILY_SPECS[base.family].label}")
    unet_config = dict(base.denoiser.config)
    if det.layout is Layout.DIFFUSERS_FOLDER:
        config, state = read_config(path), folder_state_dict(path)
    else:
        raw = read_state_dict(path)
        config = _controlnet_config_from_unet(unet_config, raw)
        state = convert.controlnet_state(raw, config) if det.layout is Layout.ORIGINAL else raw
    for key in _FIT_KEYS:
        mine, theirs = config.get(key), unet_config.get(key)
        if not _same(mine, theirs):
            raise IncompatibleModelError(path, f"does not fit the base model: {key} is {mine}, the base UNet has {theirs}")
    param = next(base.denoiser.parameters())
    return build_module(lambda: ControlNetModel.from_config(config), state, path=path, component="controlnet",
                        dtype=dtype or param.dtype, device=device or param.device, error=IncompatibleModelError)


def model_cache_key(path: Path, options: LoadOptions = LoadOptions(),
                    resources: ResourcePaths = ResourcePaths()) -> tuple[Hashable, ...]:
    """The cache key of a load: file identity (size, mtime) plus everything that changes the result."""
    try:
        stamp = FileStamp.of(path)
        vae = FileStamp.of(options.vae) if options.vae is not None else None
    except OSError:
        raise ModelNotFoundError(path, "does not exist (moved, deleted, or on a drive that is not mounted)") from None
    return ("model", stamp, options, vae, resources)


def cached_load_model(cache: ModelCache[LoadedModel], path: Path, options: LoadOptions = LoadOptions(),
                      resources: ResourcePaths = ResourcePaths()) -> LoadedModel:
    """`load_model` through `cache`: switching back to a cached model does not reload it."""
    return cache.get_or_load(model_cache_key(path, options, resources), lambda: load_model(path, options, resources))
