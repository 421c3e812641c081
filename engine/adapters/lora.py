"""LoRA (Hu et al. 2021, "Low-Rank Adaptation") applied by patching weights in place:
W' = W + strength * (alpha / rank) * up @ down, removed exactly by restoring the saved W.

Reads kohya/A1111 files (``lora_unet_*``, ``lora_te_*``, ``lora_te1_/te2_*`` with
``lora_down/lora_up/alpha``; UNet names in diffusers or original ``input_blocks`` style) and
diffusers/PEFT files (``unet.<module>.lora_A/lora_B``, ``text_encoder.<module>.lora.down/up``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from engine.models.checkpoint import read_state_dict
from engine.models.errors import IncompatibleModelError
from engine.models.original_names import to_original, unet_prefixes

_SUFFIXES = (
    (".lora_down.weight", "down"), (".lora_up.weight", "up"), (".alpha", "alpha"),
    (".lora_A.weight", "down"), (".lora_B.weight", "up"),
    (".lora.down.weight", "down"), (".lora.up.weight", "up"),
    ("_lora.down.weight", "down"), ("_lora.up.weight", "up"),
)
_TE_PREFIXES = (("lora_te_", "lora_te1_", "text_encoder."), ("lora_te2_", "text_encoder_2."))


@dataclass(frozen=True)
class LoraLayer:
    """One low-rank update: down (r, in[, kh, kw]), up (out, r[, 1, 1]) and alpha (None = rank)."""

    down: torch.Tensor
    up: torch.Tensor
    alpha: float | None = None

    def delta(self, shape: torch.Size, strength: float) -> torch.Tensor:
        """The weight update for a target of `shape` (float32)."""
        rank = self.down.shape[0]
        scale = strength * (self.alpha / rank if self.alpha is not None else 1.0)
        update = self.up.float().flatten(1) @ self.down.float().flatten(1)  # (out, in * kh * kw)
        if update.numel() != shape.numel():
            raise ValueError(f"LoRA update of {tuple(update.shape)} does not fit a weight of {tuple(shape)}")
        return (update * scale).reshape(shape)


def group_layers(state: dict[str, torch.Tensor]) -> tuple[dict[str, LoraLayer], list[str]]:
    """Group a LoRA state dict by module base name; returns layers and keys that are not LoRA parts."""
    parts: dict[str, dict[str, torch.Tensor]] = {}
    other = []
    for key, value in state.items():
        for suffix, role in _SUFFIXES:
            if key.endswith(suffix):
                parts.setdefault(key[: -len(suffix)], {})[role] = value
                break
        else:
            other.append(key)
    layers = {}
    for base, p in parts.items():
        if "down" in p and "up" in p:
            alpha = float(p["alpha"]) if "alpha" in p else None
            layers[base.replace(".processor.", ".")] = LoraLayer(p["down"], p["up"], alpha)
        else:
            other.append(base)
    return layers, other


def _targets(module: torch.nn.Module) -> dict[str, torch.nn.Module]:
    return {n: m for n, m in module.named_modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))}


def _unet_lookup(unet: torch.nn.Module) -> dict[str, torch.nn.Module]:
    lookup = {}
    prefixes = unet_prefixes(dict(unet.config)) if hasattr(unet, "config") else {}
    for name, mod in _targets(unet).items():
        lookup["lora_unet_" + name.replace(".", "_")] = mod
        lookup["unet." + name] = mod
        try:
            lookup["lora_unet_" + to_original(name, prefixes).replace(".", "_")] = mod
        except KeyError:
            pass
    # old diffusers attention-processor names: attn1.to_q_lora -> attn1.to_q
    lookup.update({k[: -len(".to_out.0")] + ".to_out": m for k, m in lookup.items() if k.endswith(".to_out.0")})
    return lookup


def _te_lookup(encoder: torch.nn.Module, prefixes: tuple[str, ...]) -> dict[str, torch.nn.Module]:
    lookup = {}
    aliases = {"q_proj": "to_q", "k_proj": "to_k", "v_proj": "to_v", "out_proj": "to_out"}
    for name, mod in _targets(encoder).items():
        full = name if name.startswith("text_model.") else "text_model." + name  # transformers 5 flattens
        for prefix in prefixes:
            if prefix.endswith("."):
                for candidate in (name, full):
                    lookup[prefix + candidate] = mod
                    last = candidate.rsplit(".", 1)
                    if len(last) == 2 and last[1] in aliases:
                        lookup[f"{prefix}{last[0]}.{aliases[last[1]]}"] = mod
            else:
                lookup[prefix + full.replace(".", "_")] = mod
    return lookup


@dataclass
class LoraPatch:
    """Weights patched by one or more LoRAs; `remove()` restores them bit for bit."""

    originals: dict[torch.nn.Module, torch.Tensor]
    applied: int
    unmatched: tuple[str, ...]

    def remove(self) -> None:
        """Put every patched weight back exactly as it was."""
        with torch.no_grad():
            for module, weight in self.originals.items():
                module.weight.copy_(weight)
        self.originals = {}

    def __enter__(self) -> LoraPatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


@torch.no_grad()
def apply_loras(
    loras: list[tuple[dict[str, torch.Tensor], float]],
    unet: torch.nn.Module,
    text_encoders: tuple[torch.nn.Module, ...] = (),
    source: str = "LoRA",
) -> LoraPatch:
    """Patch `unet` and `text_encoders` with (state dict, strength) pairs; see LoraPatch.remove."""
    lookup = _unet_lookup(unet)
    for encoder, prefixes in zip(text_encoders, _TE_PREFIXES):
        lookup.update(_te_lookup(encoder, prefixes))
    patch = LoraPatch({}, 0, ())
    unmatched: list[str] = []
    try:
        for state, strength in loras:
            layers, other = group_layers(state)
            hits = 0
            for base, layer in layers.items():
                module = lookup.get(base)
                if module is None:
                    unmatched.append(base)
                    continue
                if module not in patch.originals:
                    patch.originals[module] = module.weight.detach().clone()
                w = module.weight
                w.copy_((w.float() + layer.delta(w.shape, strength)).to(w.dtype))
                hits += 1
            if layers and hits == 0:
                raise IncompatibleModelError(source, f"none of its {len(layers)} layers fit this model "
                                             f"(e.g. {next(iter(layers))!r}); is it for another model family?")
            if not layers:
                raise IncompatibleModelError(source, f"no LoRA weights found (keys like {other[:2]})")
            patch.applied += hits
    except BaseException:
        patch.remove()
        raise
    patch.unmatched = tuple(unmatched)
    return patch


def load_lora(path: Path) -> dict[str, torch.Tensor]:
    """Read a LoRA file safely (safetensors, or weights-only torch files)."""
    return read_state_dict(Path(path))


