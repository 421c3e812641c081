"""A job's prompt and negative prompt as keyword arguments for its denoiser call, per family."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from engine.conditioning.family import encode_sd, encode_sd3, encode_sdxl, sdxl_time_ids
from engine.models import Family, LoadedModel


@dataclass(frozen=True)
class JobConditioning:
    """Denoiser keyword arguments for one image (batch dimension 1): cond and uncond."""

    cond: dict[str, Any]
    uncond: dict[str, Any]
    guide: dict[str, Any] | None = None  # the prompt for the model's guide (autoguidance), when it runs

    def batched_guide(self, n: int) -> dict[str, Any] | None:
        """The guide's cond with every tensor repeated to a batch of n (None without a guide)."""
        return None if self.guide is None else _repeat(self.guide, n)

    def batched(self, n: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """(cond, uncond) with every tensor repeated to a batch of n."""
        return _repeat(self.cond, n), _repeat(self.uncond, n)


def _repeat(value: Any, n: int) -> Any:
    if isinstance(value, torch.Tensor):
        return value.expand(n, *value.shape[1:])  # (n, ...)
    if isinstance(value, dict):
        return {k: _repeat(v, n) for k, v in value.items()}
    return value


@torch.no_grad()
def encode_job_text(model: LoadedModel, prompt: str, negative: str, *, clip_skip: int, width: int, height: int,
                    device: torch.device, guided: bool = False) -> JobConditioning:
    """Encode (prompt, negative) the way the family's denoiser takes them (SDXL: size time ids for width x
    height); `guided` also encodes the prompt with the model's guide, when it has one (autoguidance)."""
    text = _encode(model, prompt, negative, clip_skip=clip_skip, width=width, height=height, device=device)
    if not guided or model.guide is None:
        return text
    if model.guide.text_encoders is model.text_encoders:  # a guide UNet on the model's own text states
        return dataclasses.replace(text, guide=text.cond)
    guide = _encode(model.guide, prompt, negative, clip_skip=clip_skip, width=width, height=height, device=device)
    return dataclasses.replace(text, guide=guide.cond)


def _encode(model: LoadedModel, prompt: str, negative: str, *, clip_skip: int, width: int, height: int,
            device: torch.device) -> JobConditioning:
    if model.family in (Family.SD1, Family.SD2):
        pos, neg = encode_sd(model.tokenizers[0], model.text_encoders[0], prompt, negative, clip_skip=clip_skip,
                             device=device)
        return JobConditioning({"encoder_hidden_states": pos.hidden}, {"encoder_hidden_states": neg.hidden})
    if model.family is Family.SDXL:
        pos, neg = encode_sdxl(model.tokenizers, model.text_encoders, prompt, negative, clip_skip=clip_skip,
                               device=device)
        ids = sdxl_time_ids(width, height).to(device)  # (1, 6)
        return JobConditioning(
            {"encoder_hidden_states": pos.hidden, "added_cond_kwargs": {"text_embeds": pos.pooled, "time_ids": ids}},
            {"encoder_hidden_states": neg.hidden, "added_cond_kwargs": {"text_embeds": neg.pooled, "time_ids": ids}},
        )
    if model.family is Family.SD3:
        joint = int(model.denoiser.config.joint_attention_dim)
        pos, neg = encode_sd3(model.tokenizers, model.text_encoders, prompt, negative, joint_dim=joint,
                              clip_skip=clip_skip, device=device)
        return JobConditioning({"encoder_hidden_states": pos.hidden, "pooled_projections": pos.pooled},
                               {"encoder_hidden_states": neg.hidden, "pooled_projections": neg.pooled})
    raise ValueError(f"no text conditioning for model family {model.family!r}")
