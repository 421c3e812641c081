"""Safe reading of weight files: `.safetensors` directly, pickle checkpoints (`.ckpt`, `.pt`,
`.pth`, `.bin`) only through `torch.load(weights_only=True)`; anything that needs pickle code
is refused with instructions to convert it."""

from __future__ import annotations

import pickle
import struct
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from engine.models.errors import ModelLoadError, ModelNotFoundError, UnsafeCheckpointError

SAFETENSORS_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
WEIGHT_SUFFIXES = SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES

_CONVERT_HINT = (
    "Atelier never runs code from model files. If you trust where this file came from, convert it "
    "once to .safetensors in a separate Python session, e.g.\n"
    "  python -c \"import torch; from safetensors.torch import save_file; "
    "sd = torch.load('{name}', map_location='cpu', weights_only=False); "
    "sd = sd.get('state_dict', sd); "
    "save_file({{k: v.contiguous() for k, v in sd.items() if isinstance(v, torch.Tensor)}}, "
    "'{stem}.safetensors')\"\n"
    "and load the .safetensors file instead."
)


@dataclass(frozen=True)
class KeyIndex:
    """Tensor names and shapes of a weight file, read without loading the tensors."""

    shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "shapes", MappingProxyType(dict(self.shapes)))

    def __contains__(self, key: object) -> bool:
        return key in self.shapes

    def __iter__(self) -> Iterator[str]:
        return iter(self.shapes)

    def __len__(self) -> int:
        return len(self.shapes)

    def shape(self, key: str) -> tuple[int, ...] | None:
        """The shape of `key`, or None when the file has no such tensor."""
        return self.shapes.get(key)

    def any_startswith(self, prefix: str) -> bool:
        """Whether any tensor name starts with `prefix`."""
        return any(k.startswith(prefix) for k in self.shapes)

    def strip(self, prefix: str) -> KeyIndex:
        """The tensors under `prefix`, with the prefix removed from their names."""
        n = len(prefix)
        return KeyIndex({k[n:]: s for k, s in self.shapes.items() if k.startswith(prefix)})


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise ModelNotFoundError(path, "does not exist (moved, deleted, or on a drive that is not mounted)")
    if not path.is_file():
        raise ModelLoadError(path, "is not a file")


def _unsafe(path: Path, detail: str) -> UnsafeCheckpointError:
    hint = _CONVERT_HINT.format(name=path.name, stem=path.stem)
    first = detail.strip().splitlines()[0] if detail.strip() else "unsupported pickle content"
    return UnsafeCheckpointError(path, f"refused: the file needs pickle code to load ({first}).\n{hint}")


def _torch_load(path: Path) -> Any:
    """torch.load restricted to tensors and plain containers; memory-mapped when the format allows."""
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap can only be used" not in str(exc):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        # A GLOBAL means the file references Python code (classes, functions): refuse it. Other
        # weights-only failures (unknown opcodes, cut-off data) mean the file is damaged.
        needs_code = [ln.strip() for ln in text.splitlines() if "Unsupported global" in ln or "GLOBAL " in ln]
        if needs_code:
            raise _unsafe(path, needs_code[0]) from None
        detail = next((ln.strip() for ln in text.splitlines() if "Unsupported" in ln), text.splitlines()[0])
        raise ModelLoadError(path, f"corrupt or truncated pickle checkpoint ({detail})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, struct.error, IndexError, KeyError,
            TypeError) as exc:  # what a weights-only load of damaged bytes raises varies with where they break
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(path, f"corrupt or truncated checkpoint ({msg})") from None


def _tensors_of(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """The flat name -> tensor dict inside a loaded pickle checkpoint."""
    if not isinstance(obj, Mapping):
        raise ModelLoadError(path, f"holds a {type(obj).__name__}, not a dictionary of tensors")
    for wrapper in ("state_dict", "model", "params_ema", "params"):  # BasicSR: the EMA weights are the ones to use
        inner = obj.get(wrapper)
        if isinstance(inner, Mapping) and any(isinstance(v, torch.Tensor) for v in inner.values()):
            obj = inner
            break
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ModelLoadError(path, "contains no tensors")
    return tensors


def read_key_index(path: Path) -> KeyIndex:
    """Names and shapes of the tensors in a weight file; safetensors headers only."""
    path = Path(path)
    _check_exists(path)
    suffix = path.suffix.lower()
    if suffix in SAFETENSORS_SUFFIXES:
        try:
            with safe_open(str(path), framework="pt") as f:
                return KeyIndex({k: tuple(f.get_slice(k).get_shape()) for k in f.keys()})
        except (SafetensorError, OSError) as exc:
            raise ModelLoadError(path, f"corrupt or truncated .safetensors file ({exc})") from None
    if suffix in PICKLE_SUFFIXES:
        tensors = _tensors_of(_torch_load(path), path)
        return KeyIndex({k: tuple(v.shape) for k, v in tensors.items()})
    raise ModelLoadError(path, f"unsupported file type {path.suffix!r}; expected one of {', '.join(WEIGHT_SUFFIXES)}")


def read_state_dict(path: Path, keep: Callable[[str], bool] | None = None) -> dict[str, torch.Tensor]:
    """All tensors of a weight file on the CPU (or those whose name passes `keep`)."""
    path = Path(path)
    _check_exists(path)
    suffix = path.suffix.lower()
    if suffix in SAFETENSORS_SUFFIXES:
        try:
            if keep is None:
                return load_file(str(path), device="cpu")
            with safe_open(str(path), framework="pt", device="cpu") as f:
                return {k: f.get_tensor(k) for k in f.keys() if keep(k)}
        except (SafetensorError, OSError) as exc:
            raise ModelLoadError(path, f"corrupt or truncated .safetensors file ({exc})") from None
    if suffix in PICKLE_SUFFIXES:
        tensors = _tensors_of(_torch_load(path), path)
        return tensors if keep is None else {k: v for k, v in tensors.items() if keep(k)}
    raise ModelLoadError(path, f"unsupported file type {path.suffix!r}; expected one of {', '.join(WEIGHT_SUFFIXES)}")
