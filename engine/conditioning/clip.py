"""CLIP text conditioning with weights, 75-token chunking and clip skip, as A1111 does it.

A prompt longer than 75 tokens is split into chunks of 75 (at the last comma when one lies
within the last 20 tokens, or at ``BREAK``); each chunk is encoded as its own 77-token window
(BOS + 75 + EOS/padding) and the windows are concatenated along the sequence. Weights scale
each token's embedding, then the chunk's mean is restored so weights change emphasis, not
overall magnitude.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from engine.conditioning.prompt import BREAK, parse_weighted_prompt

CHUNK_TOKENS = 75
COMMA_BACKTRACK = 20
HiddenLayer = Literal["last", "penultimate"]


@dataclass
class TokenChunk:
    """Up to 75 token ids with their weights (without BOS/EOS)."""

    ids: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class PromptEmbedding:
    """Encoded prompt: hidden states (1, 77 * chunks, C) and the pooled vector (1, P) if any."""

    hidden: torch.Tensor
    pooled: torch.Tensor | None = None

    @property
    def chunks(self) -> int:
        """How many 77-token windows the prompt took."""
        return self.hidden.shape[1] // (CHUNK_TOKENS + 2)


def chunk_tokens(tokenizer: Any, prompt: str) -> list[TokenChunk]:
    """Tokenize a weighted prompt into 75-token chunks (A1111's comma-aware splitting)."""
    comma_id = tokenizer.convert_tokens_to_ids(",</w>")
    chunks: list[TokenChunk] = []
    current = TokenChunk()
    last_comma = -1

    def close(force: bool = False) -> None:
        nonlocal current, last_comma
        if current.ids or force:
            chunks.append(current)
        current, last_comma = TokenChunk(), -1

    for fragment in parse_weighted_prompt(prompt):
        if fragment.text == BREAK and fragment.weight == -1:
            close(force=True)
            continue
        ids = tokenizer(fragment.text, add_special_tokens=False, truncation=False)["input_ids"]
        for token in ids:
            if token == comma_id:
                last_comma = len(current.ids)
            elif len(current.ids) == CHUNK_TOKENS and last_comma >= 0 and CHUNK_TOKENS - last_comma <= COMMA_BACKTRACK:
                # Move the words after the last comma into the next chunk, keeping phrases whole.
                cut = last_comma + 1
                moved = TokenChunk(current.ids[cut:], current.weights[cut:])
                current.ids, current.weights = current.ids[:cut], current.weights[:cut]
                close()
                current = moved
            if len(current.ids) == CHUNK_TOKENS:
                close()
            current.ids.append(token)
            current.weights.append(fragment.weight)
    close()
    return chunks or [TokenChunk()]


def _window(tokenizer: Any, chunk: TokenChunk) -> tuple[list[int], list[float]]:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    n_pad = CHUNK_TOKENS - len(chunk.ids)
    ids = [tokenizer.bos_token_id, *chunk.ids, tokenizer.eos_token_id] + [pad] * n_pad
    weights = [1.0, *chunk.weights, 1.0] + [1.0] * n_pad
    return ids, weights


def window_ids(tokenizer: Any, prompt: str) -> list[list[int]]:
    """The 77-token id windows of a prompt exactly as `encode_prompt` feeds them to the encoder
    (weights aside): what a text encoder must be trained on to match inference."""
    return [_window(tokenizer, chunk)[0] for chunk in chunk_tokens(tokenizer, prompt)]


def _apply_weights(hidden: torch.Tensor, weights: list[float]) -> torch.Tensor:
    """Scale each token's embedding by its weight, then restore the window's mean (A1111)."""
    w = torch.tensor(weights, dtype=hidden.dtype, device=hidden.device)[None, :, None]  # (1, 77, 1)
    original_mean = hidden.float().mean()
    weighted = hidden * w
    new_mean = weighted.float().mean()
    # A mean near zero (possible for layer-normed outputs) would blow the rescale up: skip it.
    if new_mean.abs() <= 1e-4 * weighted.float().abs().mean() or original_mean.abs() <= 1e-4 * hidden.float().abs().mean():
        return weighted
    return weighted * (original_mean / new_mean).to(hidden.dtype)


def _hidden(text_encoder: Any, ids: torch.Tensor, clip_skip: int, layer: HiddenLayer) -> tuple[torch.Tensor, Any]:
    out = text_encoder(ids, output_hidden_states=True)
    if layer == "penultimate":  # SDXL style: no final layer norm
        return out.hidden_states[-(clip_skip + 1)], out
    if clip_skip <= 1:
        return out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0], out
    hidden = out.hidden_states[-clip_skip]
    return _final_norm(text_encoder)(hidden), out


def _final_norm(text_encoder: Any) -> torch.nn.Module:
    """The encoder's final layer norm (transformers 5 flattened `text_model` away)."""
    norm = getattr(text_encoder, "final_layer_norm", None)
    return norm if norm is not None else text_encoder.text_model.final_layer_norm


@torch.no_grad()
def encode_prompt(
    tokenizer: Any,
    text_encoder: Any,
    prompt: str,
    *,
    clip_skip: int = 1,
    layer: HiddenLayer = "last",
    device: torch.device | str = "cpu",
) -> PromptEmbedding:
    """Encode a weighted prompt of any length with one CLIP text encoder.

    `clip_skip` counts as A1111 does: 1 uses the last layer, 2 the one before it.
    The pooled output comes from the first chunk (as A1111 and diffusers use it).
    """
    if clip_skip < 1:
        raise ValueError(f"clip_skip must be >= 1, got {clip_skip}")
    hidden_states, pooled = [], None
    for i, chunk in enumerate(chunk_tokens(tokenizer, prompt)):
        ids, weights = _window(tokenizer, chunk)
        ids_t = torch.tensor([ids], device=device)  # (1, 77)
        hidden, out = _hidden(text_encoder, ids_t, clip_skip, layer)  # (1, 77, C)
        if any(w != 1.0 for w in weights):
            hidden = _apply_weights(hidden, weights)
        hidden_states.append(hidden)
        if i == 0:
            pooled = getattr(out, "text_embeds", None)
            if pooled is None:
                pooled = getattr(out, "pooler_output", None)
    return PromptEmbedding(torch.cat(hidden_states, dim=1), pooled)


def pad_chunks(a: PromptEmbedding, b: PromptEmbedding, empty: PromptEmbedding) -> tuple[PromptEmbedding, PromptEmbedding]:
    """Pad the shorter of two embeddings with empty-prompt windows so they batch together."""
    target = max(a.chunks, b.chunks)

    def pad(e: PromptEmbedding) -> PromptEmbedding:
        missing = target - e.chunks
        if missing == 0:
            return e
        filler = empty.hidden[:, : CHUNK_TOKENS + 2].to(e.hidden).repeat(1, missing, 1)
        return PromptEmbedding(torch.cat([e.hidden, filler], dim=1), e.pooled)

    return pad(a), pad(b)
