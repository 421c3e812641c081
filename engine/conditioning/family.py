"""Text conditioning per model family, in the form each denoiser takes it.

- SD1.x / SD2.x: one CLIP encoder's hidden states.
- SDXL: CLIP-L and OpenCLIP-G penultimate states side by side, the pooled OpenCLIP-G vector and
  the size/crop "time ids" (Podell et al. 2023, "SDXL").
- SD3: both CLIP encoders' penultimate states padded to the joint width, followed by the T5
  sequence (zeros when no T5 is loaded, as SD3 allows), and both pooled vectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from engine.conditioning.clip import PromptEmbedding, encode_prompt, pad_chunks

T5_TOKENS = 256


@dataclass(frozen=True)
class TextConditioning:
    """Keyword arguments for the denoiser, per prompt (batch dimension 1)."""

    hidden: torch.Tensor  # (1, L, C) encoder_hidden_states
    pooled: torch.Tensor | None = None  # (1, P) SDXL text_embeds / SD3 pooled_projections


def _pair(tokenizers: Sequence[Any], encoders: Sequence[Any], prompts: tuple[str, str], clip_skip: int,
          layer: str, device: torch.device) -> list[tuple[PromptEmbedding, PromptEmbedding]]:
    """Encode (prompt, negative) with each encoder, padded to the same number of chunks."""
    out = []
    for tok, enc in zip(tokenizers, encoders):
        pos, neg = (encode_prompt(tok, enc, p, clip_skip=clip_skip, layer=layer, device=device) for p in prompts)
        if pos.chunks != neg.chunks:
            empty = encode_prompt(tok, enc, "", clip_skip=clip_skip, layer=layer, device=device)
            pos, neg = pad_chunks(pos, neg, empty)
        out.append((pos, neg))
    return out


def encode_sd(tokenizer: Any, encoder: Any, prompt: str, negative: str, *, clip_skip: int = 1,
              device: torch.device | str = "cpu") -> tuple[TextConditioning, TextConditioning]:
    """SD1.x/SD2.x conditioning for (prompt, negative prompt)."""
    [(pos, neg)] = _pair([tokenizer], [encoder], (prompt, negative), clip_skip, "last", torch.device(device))
    return TextConditioning(pos.hidden), TextConditioning(neg.hidden)


def _zero_like(c: TextConditioning) -> TextConditioning:
    return TextConditioning(torch.zeros_like(c.hidden), None if c.pooled is None else torch.zeros_like(c.pooled))


def encode_sdxl(tokenizers: Sequence[Any], encoders: Sequence[Any], prompt: str, negative: str, *,
                clip_skip: int = 1, zero_empty_negative: bool = True,
                device: torch.device | str = "cpu") -> tuple[TextConditioning, TextConditioning]:
    """SDXL conditioning: hidden (1, L, 768 + 1280) and pooled (1, 1280) from the second encoder."""
    pairs = _pair(tokenizers, encoders, (prompt, negative), clip_skip, "penultimate", torch.device(device))
    conds = []
    for side in (0, 1):
        hidden = torch.cat([p[side].hidden for p in pairs], dim=-1)  # (1, L, C1 + C2)
        conds.append(TextConditioning(hidden, pairs[-1][side].pooled))
    pos, neg = conds
    if zero_empty_negative and not negative:
        neg = _zero_like(pos)  # diffusers' force_zeros_for_empty_prompt
    return pos, neg


def sdxl_time_ids(width: int, height: int, *, original: tuple[int, int] | None = None,
                  crop: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """SDXL's micro-conditioning: (original h, w, crop top, left, target h, w) as (1, 6)."""
    oh, ow = original or (height, width)
    return torch.tensor([[oh, ow, crop[0], crop[1], height, width]], dtype=torch.float32)


def encode_sd3(tokenizers: Sequence[Any], encoders: Sequence[Any], prompt: str, negative: str, *,
               joint_dim: int, clip_skip: int = 1,
               device: torch.device | str = "cpu") -> tuple[TextConditioning, TextConditioning]:
    """SD3 conditioning without T5: CLIP states padded to `joint_dim`, then 256 zero T5 tokens."""
    pairs = _pair(tokenizers, encoders, (prompt, negative), clip_skip, "penultimate", torch.device(device))
    conds = []
    for side in (0, 1):
        clip = torch.cat([p[side].hidden for p in pairs], dim=-1)  # (1, L, C1 + C2)
        clip = F.pad(clip, (0, joint_dim - clip.shape[-1]))  # (1, L, joint_dim)
        t5 = torch.zeros(1, T5_TOKENS, joint_dim, dtype=clip.dtype, device=clip.device)
        pooled = torch.cat([p[side].pooled for p in pairs], dim=-1)  # (1, P1 + P2)
        conds.append(TextConditioning(torch.cat([clip, t5], dim=1), pooled))
    return conds[0], conds[1]
