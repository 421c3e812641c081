"""HAT, the Hybrid Attention Transformer (Chen et al. 2023, "Activating More Pixels in Image
Super-Resolution Transformer"), built from a state dict in its released key layout with every
hyper-parameter read off the tensors.

HAT is SwinIR's residual groups with two additions: each block adds a channel-attention conv branch
(CAB, scaled by 0.01) beside its window attention, and each group ends with an overlapping
cross-attention block (OCAB), whose queries are the window's tokens and whose keys and values come
from a larger window (window x (1 + overlap ratio)) centred on it. Windows are laid from the image's
corner, so a tiled run starts tiles on multiples of the window, as for SwinIR.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.upscale.swinir import (HEAD_FEATURES, Mlp, WindowAttention, WindowTransformerSR, _window_merge,
                                   _window_partition, pixelshuffle_upsample)

CONV_SCALE = 0.01  # weight of a block's conv branch (not stored in the weights; all released HATs use it)


@dataclass(frozen=True)
class HATShape:
    """Everything that sizes a HAT."""

    channels: int
    embed_dim: int
    depths: tuple[int, ...]
    heads: tuple[int, ...]
    window: int
    overlap_window: int  # the OCAB's key/value window: window + int(window * overlap_ratio)
    compress_ratio: int
    squeeze_factor: int
    mlp_ratio: float
    conv_residual: bool  # resi_connection "1conv" (else identity)
    patch_norm: bool
    qkv_bias: bool
    scale: int


def overlap_index(window: int, overlap: int) -> torch.Tensor:
    """(window^2, overlap^2) index into the OCAB's (window + overlap - 1)^2 relative position table."""
    def grid(n: int) -> torch.Tensor:
        return torch.stack(torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")).flatten(1)  # (2, n*n)
    rel = (grid(overlap)[:, None, :] - grid(window)[:, :, None]).permute(1, 2, 0) + (window - overlap + 1)
    return rel[..., 0] * (window + overlap - 1) + rel[..., 1]


class ChannelAttention(nn.Module):
    """RCAN's squeeze-and-excitation: channels reweighted by a gate on their global means."""

    def __init__(self, dim: int, squeeze: int) -> None:
        super().__init__()
        self.attention = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, dim // squeeze, 1), nn.ReLU(),
                                       nn.Conv2d(dim // squeeze, dim, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.attention(x)


class ConvBranch(nn.Module):
    """CAB: conv, GELU, conv, channel attention."""

    def __init__(self, dim: int, compress: int, squeeze: int) -> None:
        super().__init__()
        self.cab = nn.Sequential(nn.Conv2d(dim, dim // compress, 3, 1, 1), nn.GELU(),
                                 nn.Conv2d(dim // compress, dim, 3, 1, 1), ChannelAttention(dim, squeeze))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cab(x)


class HybridBlock(nn.Module):
    """HAB: (shifted) window attention plus the scaled conv branch on the normed input, then an MLP."""

    def __init__(self, shape: HATShape, heads: int, shift: int) -> None:
        super().__init__()
        dim = shape.embed_dim
        self.window, self.shift = shape.window, shift
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads, shape.window, shape.qkv_bias)
        self.conv_block = ConvBranch(dim, shape.compress_ratio, shape.squeeze_factor)
        self.mlp = Mlp(dim, int(dim * shape.mlp_ratio))

    def forward(self, x: torch.Tensor, size: tuple[int, int], mask: torch.Tensor) -> torch.Tensor:
        h, w = size
        b, _, c = x.shape  # (B, H W, C)
        y = self.norm1(x).view(b, h, w, c)
        conv = self.conv_block(y.permute(0, 3, 1, 2)).permute(0, 2, 3, 1).reshape(b, h * w, c)
        if self.shift:
            y = torch.roll(y, (-self.shift, -self.shift), dims=(1, 2))
        y = _window_merge(self.attn(_window_partition(y, self.window), mask if self.shift else None), self.window, h, w)
        if self.shift:
            y = torch.roll(y, (self.shift, self.shift), dims=(1, 2))
        x = x + y.reshape(b, h * w, c) + CONV_SCALE * conv
        return x + self.mlp(self.norm2(x))


class OverlapCrossAttention(nn.Module):
    """OCAB: each window's queries attend to keys and values of the larger window centred on it."""

    def __init__(self, shape: HATShape, heads: int) -> None:
        super().__init__()
        dim, self.heads = shape.embed_dim, heads
        self.window, self.overlap = shape.window, shape.overlap_window
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim, bias=shape.qkv_bias)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((self.window + self.overlap - 1) ** 2, heads))
        self.register_buffer("index", overlap_index(self.window, self.overlap), persistent=False)
        self.proj = nn.Linear(dim, dim)
        self.mlp = Mlp(dim, int(dim * shape.mlp_ratio))

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        h, w = size
        b, _, c = x.shape
        ws, ow, d = self.window, self.overlap, c // self.heads
        qkv = self.qkv(self.norm1(x)).view(b, h, w, 3, c)
        q = _window_partition(qkv[..., 0, :], ws)  # (B nW, ws*ws, C)
        kv = qkv[..., 1:, :].permute(0, 3, 4, 1, 2).reshape(b, 2 * c, h, w)  # (B, [k; v] channels, H, W)
        kv = F.unfold(kv, ow, stride=ws, padding=(ow - ws) // 2)  # (B, 2 C ow ow, nW)
        kv = kv.view(b, 2, c, ow * ow, -1).permute(1, 0, 4, 3, 2).reshape(2, -1, ow * ow, c)  # (2, B nW, ow*ow, C)
        n_windows = q.shape[0]
        q = q.view(n_windows, ws * ws, self.heads, d).transpose(1, 2) * d**-0.5  # (B nW, heads, ws*ws, d)
        k, v = (t.view(n_windows, ow * ow, self.heads, d).transpose(1, 2) for t in kv)  # (B nW, heads, ow*ow, d)
        bias = self.relative_position_bias_table[self.index.view(-1)].view(ws * ws, ow * ow, -1).permute(2, 0, 1)
        out = ((q @ k.transpose(-2, -1) + bias).softmax(dim=-1) @ v).transpose(1, 2).reshape(n_windows, ws * ws, c)
        x = self.proj(_window_merge(out, ws, h, w).reshape(b, h * w, c)) + x
        return x + self.mlp(self.norm2(x))


class HybridGroup(nn.Module):
    """RHAG: hybrid blocks (alternately shifted), an OCAB, a conv (or none), and the group's residual."""

    def __init__(self, shape: HATShape, depth: int, heads: int) -> None:
        super().__init__()
        self.residual_group = nn.Module()
        self.residual_group.blocks = nn.ModuleList(
            HybridBlock(shape, heads, 0 if i % 2 == 0 else shape.window // 2) for i in range(depth))
        self.residual_group.overlap_attn = OverlapCrossAttention(shape, heads)
        dim = shape.embed_dim
        self.conv = nn.Conv2d(dim, dim, 3, 1, 1) if shape.conv_residual else nn.Identity()

    def forward(self, x: torch.Tensor, size: tuple[int, int], mask: torch.Tensor) -> torch.Tensor:
        y = x
        for block in self.residual_group.blocks:
            y = block(y, size, mask)
        y = self.residual_group.overlap_attn(y, size)
        b, _, c = y.shape
        return self.conv(y.transpose(1, 2).reshape(b, c, *size)).flatten(2).transpose(1, 2) + x


class HAT(WindowTransformerSR):
    """Image in [0, 1] (B, C, H, W) -> (B, C, scale H, scale W)."""

    def __init__(self, shape: HATShape) -> None:
        super().__init__(shape.channels, shape.embed_dim, shape.window, shape.patch_norm, shape.scale)
        self.shape, dim = shape, shape.embed_dim
        self.layers = nn.ModuleList(HybridGroup(shape, d, h) for d, h in zip(shape.depths, shape.heads))
        self.conv_after_body = nn.Conv2d(dim, dim, 3, 1, 1) if shape.conv_residual else nn.Identity()
        self.conv_before_upsample = nn.Sequential(nn.Conv2d(dim, HEAD_FEATURES, 3, 1, 1), nn.LeakyReLU())
        self.upsample = pixelshuffle_upsample(shape.scale)
        self.conv_last = nn.Conv2d(HEAD_FEATURES, shape.channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        _, res = self.trunk(x)
        return self.finish(self.conv_last(self.upsample(self.conv_before_upsample(res))), h, w)

    def bytes_per_pixel(self) -> int:
        """Estimated peak float32 bytes per input pixel: a block's token maps and the larger of the
        window and the overlapping attention logits at the input size, and the head at the output size."""
        s = self.shape
        logits = max(s.heads) * max(s.window**2, s.overlap_window**2)
        return int(4 * 1.5 * (8 * s.embed_dim + s.embed_dim * s.mlp_ratio + 2 * logits + 3 * HEAD_FEATURES * s.scale**2))


def is_hat(keys: Mapping[str, torch.Tensor]) -> bool:
    """Whether a state dict is a HAT: SwinIR-like groups whose blocks hold a conv branch and an OCAB."""
    return ("conv_first.weight" in keys and "layers.0.residual_group.blocks.0.conv_block.cab.0.weight" in keys
            and "layers.0.residual_group.overlap_attn.qkv.weight" in keys)


_BLOCK = re.compile(r"layers\.(\d+)\.residual_group\.blocks\.(\d+)\.")


def _side(rows: int, what: str) -> int:
    side = math.isqrt(rows)
    if side * side != rows or side % 2 == 0:
        raise ValueError(f"a {what} relative position table of {rows} rows is not an odd square")
    return side


def hat_shape(state: Mapping[str, torch.Tensor]) -> HATShape:
    """The hyper-parameters of the HAT a state dict holds; ValueError for one it cannot be."""
    dim, channels = state["conv_first.weight"].shape[:2]
    blocks: dict[int, int] = {}
    for key in state:
        if m := _BLOCK.match(key):
            blocks[int(m[1])] = max(blocks.get(int(m[1]), 0), int(m[2]) + 1)
    depths = tuple(blocks[i] for i in range(len(blocks)))
    first = "layers.0.residual_group."
    tables = [state[f"layers.{i}.residual_group.blocks.0.attn.relative_position_bias_table"] for i in range(len(depths))]
    window = (_side(tables[0].shape[0], "window attention") + 1) // 2
    overlap = _side(state[first + "overlap_attn.relative_position_bias_table"].shape[0], "overlap attention") + 1 - window
    if "conv_before_upsample.0.weight" not in state:
        raise ValueError("a HAT without the pixelshuffle head: not a super-resolution model")
    convs = [k for k in state if re.fullmatch(r"upsample\.\d+\.weight", k)]
    scale = 3 if state["upsample.0.weight"].shape[0] == 9 * HEAD_FEATURES else 2 ** len(convs)
    cab = first + "blocks.0.conv_block.cab."
    return HATShape(channels, dim, depths, tuple(int(t.shape[1]) for t in tables), window, overlap,
                    dim // state[cab + "0.weight"].shape[0], dim // state[cab + "3.attention.1.weight"].shape[0],
                    state[first + "blocks.0.mlp.fc1.weight"].shape[0] / dim, "layers.0.conv.weight" in state,
                    "patch_embed.norm.weight" in state, first + "blocks.0.attn.qkv.bias" in state, scale)


def hat_from_state_dict(state: Mapping[str, torch.Tensor]) -> HAT:
    """A HAT shaped by and loaded with `state`; ValueError/RuntimeError if it does not fit."""
    model = HAT(hat_shape(state))
    derived = ("relative_position_index_SA", "relative_position_index_OCA", ".attn_mask", ".relative_position_index")
    model.load_state_dict({k: v for k, v in state.items() if not k.endswith(derived)}, strict=True)
    return model
