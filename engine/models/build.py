"""Assemble a torch module from a config and a state dict, strictly: every weight the module
expects must be present with the right shape, or a ModelLoadError names what is wrong."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import torch

from engine.models.checkpoint import read_state_dict
from engine.models.errors import ModelLoadError

_WEIGHT_NAMES = ("diffusion_pytorch_model", "model", "pytorch_model")


def _examples(keys: set[str], n: int = 3) -> str:
    listed = sorted(keys)
    more = f" and {len(listed) - n} more" if len(listed) > n else ""
    return ", ".join(listed[:n]) + more


def _materialize_buffers(module: torch.nn.Module, path: Path, component: str) -> None:
    """Rebuild non-persistent buffers left on the meta device (known ones only)."""
    for name, buf in list(module.named_buffers()):
        if not buf.is_meta:
            continue
        owner_name, _, attr = name.rpartition(".")
        owner = module.get_submodule(owner_name) if owner_name else module
        if attr == "position_ids":
            value = torch.arange(buf.shape[-1]).expand(buf.shape).clone()  # (1, L)
        else:
            raise ModelLoadError(path, f"{component}: buffer {name!r} is not stored in the file and cannot be rebuilt")
        owner.register_buffer(attr, value, persistent=False)


def build_module(
    factory: Callable[[], torch.nn.Module],
    state: dict[str, torch.Tensor],
    *,
    path: Path,
    component: str,
    dtype: torch.dtype,
    device: str | torch.device,
    ignore: Callable[[str], bool] | None = None,
    error: type[ModelLoadError] = ModelLoadError,
) -> torch.nn.Module:
    """Build `factory()` on the meta device and load `state` into it with strict key and shape checks."""
    with torch.device("meta"):
        module = factory()
    expected = set(module.state_dict().keys())
    if ignore is not None:
        state = {k: v for k, v in state.items() if k in expected or not ignore(k)}
    missing = expected - state.keys()
    unexpected = state.keys() - expected
    if not state or len(missing) == len(expected):
        raise error(path, f"{component}: no weights for it in the file")
    if missing:
        raise error(path, f"{component}: {len(missing)} weights missing from the file ({_examples(missing)})")
    if unexpected:
        raise error(path, f"{component}: {len(unexpected)} weights do not belong to the configured model "
                          f"({_examples(unexpected)})")
    # Cast before assigning: ModelMixin.to(dtype) would warn, and this avoids a second copy.
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    try:
        module.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        sizes = [ln.strip() for ln in str(exc).splitlines() if "size mismatch" in ln]
        detail = sizes[0] if sizes else str(exc).splitlines()[0]
        raise error(path, f"{component}: weights do not fit the configured model ({detail})") from None
    _materialize_buffers(module, path, component)
    module.to(device=device)
    module.eval()
    module.requires_grad_(False)
    return module


def folder_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    """The weights of one diffusers/transformers component folder (single, fp16-variant or sharded)."""
    if not folder.is_dir():
        raise ModelLoadError(folder, "component folder is missing")
    for ext in (".safetensors", ".bin"):
        for name in _WEIGHT_NAMES:
            for variant in ("", ".fp16"):
                single = folder / f"{name}{variant}{ext}"
                if single.is_file():
                    return read_state_dict(single)
                index = folder / f"{name}{variant}{ext}.index.json"
                if index.is_file():
                    return _sharded(index)
    raise ModelLoadError(folder, "no weight file (diffusion_pytorch_model/model .safetensors or .bin) in the folder")


def _sharded(index_path: Path) -> dict[str, torch.Tensor]:
    try:
        weight_map = json.loads(index_path.read_text(encoding="utf-8"))["weight_map"]
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(index_path, f"unreadable shard index ({exc})") from None
    state: dict[str, torch.Tensor] = {}
    for shard in sorted(set(weight_map.values())):
        if not re.fullmatch(r"[\w.\-]+", shard):
            raise ModelLoadError(index_path, f"shard name {shard!r} is not a plain file name")
        state.update(read_state_dict(index_path.parent / shard))
    return state
