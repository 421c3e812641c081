"""Which files a job names: its base model, ControlNets and LoRAs, by path or by name in the store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType

from engine.models import FAMILY_SPECS, Family, ModelEntry, ModelKind, ModelNotFoundError, ScanResult
from engine.paths import builtin_models_dir
from engine.pipeline.errors import NoModelError
from engine.settings import ControlUnit, ModelRef
from engine.upscale import UPSCALERS

BUILTIN_NAME = "builtin"


BUILTIN_FOLDER = "atelier-shapes"


def builtin_model() -> Path | None:
    """The base model that ships with Atelier (trained by `python -m engine.train`), if it is present."""
    folder = builtin_models_dir() / BUILTIN_FOLDER
    return folder if (folder / "model_index.json").is_file() and (folder / "vae").is_dir() else None


def is_builtin(path: Path) -> bool:
    """Whether a model lies among the models Atelier ships (resources/models)."""
    return Path(path).resolve().is_relative_to(builtin_models_dir().resolve())


def _path(text: str, base_dir: Path | None) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() or base_dir is None else base_dir / path


def _looks_like_name(text: str) -> bool:
    """A bare name ("my-model"), as opposed to a file path ("models/x.safetensors")."""
    return "/" not in text and "\\" not in text and Path(text).suffix.lower() not in (
        ".safetensors", ".ckpt", ".pt", ".pth", ".bin")


def _by_name(entries: tuple[ModelEntry, ...], name: str) -> ModelEntry | None:
    """The entry called `name` (its store name, file name or stem; case-insensitive)."""
    key = name.casefold()
    for entry in entries:
        if key in (entry.name.casefold(), entry.path.name.casefold(), entry.path.stem.casefold(),
                   Path(entry.name).name.casefold()):
            return entry
    return None


def resolve_model(ref: ModelRef, scan: Callable[[], ScanResult], models_dir: Path,
                  base_dir: Path | None = None) -> tuple[Path, str]:
    """(path, display name) of the job's base model: its path if set, else its name in the store.

    A missing path is an error naming it, unless it is a bare name (`--model NAME`) found in the store.
    With no name, the first of the user's checkpoints is used, else the built-in model (when the
    store's folders include Atelier's own).
    """
    if ref.path:
        path = _path(ref.path, base_dir)
        if path.exists():
            return path, ref.name or path.stem
        builtin = builtin_model()
        if path.name == BUILTIN_FOLDER and builtin is not None:  # made by the built-in model of another install
            return builtin, BUILTIN_FOLDER
        if not _looks_like_name(ref.path):
            raise ModelNotFoundError(path, "the model in the settings does not exist (moved, deleted, or on a "
                                           "drive that is not mounted)")
    checkpoints = scan().of_kind(ModelKind.CHECKPOINT)
    name = ref.path if ref.path else ref.name
    if name and name != BUILTIN_NAME:
        entry = _by_name(checkpoints, name)
        if entry is not None:
            return entry.path, entry.name
        if not checkpoints:
            raise NoModelError(models_dir, f"model {name!r} is not installed")
        installed = ", ".join(sorted(e.name for e in checkpoints))
        raise ModelNotFoundError(Path(name), f"no installed model has this name; installed: {installed}")
    if not checkpoints:
        raise NoModelError(models_dir)
    first = min(checkpoints, key=lambda e: (is_builtin(e.path), e.name.casefold()))
    return first.path, first.name


def resolve_controlnet(unit: ControlUnit, family: Family, scan: Callable[[], ScanResult], models_dir: Path,
                       base_dir: Path | None = None, fits: Callable[[Path], bool] | None = None) -> Path:
    """The ControlNet file of a unit: its model path or name, else the installed one named like its type
    (among those `fits` accepts for the base model: the built-in model's ControlNets fit only it)."""
    if unit.model:
        path = _path(unit.model, base_dir)
        if path.exists():
            return path
        if not _looks_like_name(unit.model):
            raise ModelNotFoundError(path, "the ControlNet in the settings does not exist")
        entry = _by_name(scan().of_kind(ModelKind.CONTROLNET), unit.model)
        if entry is None:
            raise ModelNotFoundError(Path(unit.model), f"no installed ControlNet has this name (in {models_dir})")
        return entry.path
    fitting = sorted((e for e in scan().of_kind(ModelKind.CONTROLNET, family) if fits is None or fits(e.path)),
                     key=lambda e: e.name.casefold())
    matches = [e for e in fitting if unit.type.casefold() in e.name.casefold()]
    if not matches:
        raise ModelNotFoundError(models_dir, f"no installed ControlNet for {unit.type!r} fits "
                                             f"{FAMILY_SPECS[family].label}; put one in this folder "
                                             "(its name containing the type) or set the unit's model")
    return matches[0].path


def resolve_lora(text: str, scan: Callable[[], ScanResult], base_dir: Path | None = None) -> Path:
    """A LoRA's file from its path or its name in the store."""
    path = _path(text, base_dir)
    if path.exists():
        return path
    if _looks_like_name(text):
        entry = _by_name(scan().of_kind(ModelKind.LORA), text)
        if entry is not None:
            return entry.path
    raise ModelNotFoundError(path, "the LoRA in the settings does not exist")


# AUTOMATIC1111's names for the upscalers it downloads (as its images record them) -> their file stems.
A1111_UPSCALER_FILES = MappingProxyType({
    "r-esrgan 4x+": "RealESRGAN_x4plus",
    "r-esrgan 4x+ anime6b": "RealESRGAN_x4plus_anime_6B",
    "r-esrgan 2x+": "RealESRGAN_x2plus",
    "esrgan_4x": "ESRGAN_4x",
    "swinir 4x": "SwinIR_4x",
})


def resolve_upscaler(text: str, scan: Callable[[], ScanResult], base_dir: Path | None = None) -> str | Path:
    """A pixel upscaler as upscale_image takes it: a built-in's name (any case) as is, else the model
    file its path or its name in the store (an upscaler file in the models folder; A1111's names for
    the files it downloads included) points to."""
    builtin = next((name for name in UPSCALERS if name.casefold() == text.casefold()), None)
    if builtin is not None:
        return builtin
    path = _path(text, base_dir)
    if path.is_file():
        return path
    if _looks_like_name(text):
        stem = A1111_UPSCALER_FILES.get(text.casefold(), text)
        entry = _by_name(scan().of_kind(ModelKind.UPSCALER), stem)
        if entry is not None:
            return entry.path
        known = f" (AUTOMATIC1111's {text!r} is the file {stem}.pth: put it in the models folder)" if stem != text else ""
        raise ModelNotFoundError(Path(text), f"no upscaler has this name{known}: choose one of {', '.join(UPSCALERS)}, "
                                             "an upscaler file in the models folder, or a model file's path")
    raise ModelNotFoundError(path, "the upscaler model file in the settings does not exist")
