"""SwinIR (Liang et al. 2021, "SwinIR: Image Restoration Using Swin Transformer"), built from a state
dict in its released key layout with every hyper-parameter read off the tensors: embedding width,
blocks and heads per residual group, window size, MLP ratio, residual-connection kind and the
reconstruction head (classical `pixelshuffle`, lightweight `pixelshuffledirect`, real-world
`nearest+conv`, or none for x1 restoration models).

Inputs are padded by reflection to a multiple of the window size and the output cropped back, so any
size works; attention masks for the shifted windows are computed for the padded size (the masks and
position indices that released files carry as buffers are derived data and are rebuilt, not loaded).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

RGB_MEAN = (0.4488, 0.4371, 0.4040)  # subtracted before, added after (img_range 1, as released)
MASKED = -100.0  # attention logit between tokens that a cyclic shift brought together
HEAD_FEATURES = 64  # the reconstruction head's width in the pixelshuffle and nearest+conv heads


@dataclass(frozen=True)
class SwinIRShape:
    """Everything that sizes a SwinIR."""

    channels: int
    embed_dim: int
    depths: tuple[int, ...]
    heads: tuple[int, ...]
    window: int
    mlp_ratio: float
    three_conv: bool  # resi_connection "3conv" (else "1conv")
    patch_norm: bool
    qkv_bias: bool
    upsampler: str  # "pixelshuffle", "pixelshuffledirect", "nearest+conv" or "" (x1)
    scale: int


def _window_partition(x: torch.Tensor, w: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * H/w * W/w, w * w, C), windows in row-major order."""
    b, h, wd, c = x.shape
    x = x.view(b, h // w, w, wd // w, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, w * w, c)


def _window_merge(windows: torch.Tensor, w: int, h: int, wd: int) -> torch.Tensor:
    """The inverse of _window_partition -> (B, H, W, C)."""
    c = windows.shape[-1]
    x = windows.view(-1, h // w, wd // w, w, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, wd, c)


def shift_mask(h: int, wd: int, w: int, shift: int) -> torch.Tensor:
    """(windows, w*w, w*w) additive mask for shifted-window attention on an h x wd map."""
    regions = torch.zeros(1, h, wd, 1)
    cuts = (slice(0, -w), slice(-w, -shift), slice(-shift, None))
    label = 0
    for hs in cuts:
        for ws in cuts:
            regions[:, hs, ws, :] = label
            label += 1
    ids = _window_partition(regions, w).squeeze(-1)  # (windows, w*w)
    differ = ids[:, None, :] != ids[:, :, None]
    return torch.zeros(differ.shape).masked_fill(differ, MASKED)


def relative_index(w: int) -> torch.Tensor:
    """(w*w, w*w) index into the (2w-1)^2 relative position bias table."""
    coords = torch.stack(torch.meshgrid(torch.arange(w), torch.arange(w), indexing="ij")).flatten(1)  # (2, w*w)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (w - 1)  # (w*w, w*w, 2), from 0
    return rel[..., 0] * (2 * w - 1) + rel[..., 1]


class WindowAttention(nn.Module):
    """Multi-head self-attention inside each window, with a learned relative position bias."""

    def __init__(self, dim: int, heads: int, window: int, qkv_bias: bool) -> None:
        super().__init__()
        self.heads, self.window = heads, window
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        self.register_buffer("index", relative_index(window), persistent=False)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        n_windows, tokens, dim = x.shape  # (B nW, N, C)
        qkv = self.qkv(x).reshape(n_windows, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B nW, heads, N, C / heads)
        attn = (q * (dim // self.heads) ** -0.5) @ k.transpose(-2, -1)  # (B nW, heads, N, N)
        attn = attn + self.relative_position_bias_table[self.index.view(-1)].view(tokens, tokens, -1).permute(2, 0, 1)
        if mask is not None:
            per_image = mask.shape[0]
            attn = attn.view(-1, per_image, self.heads, tokens, tokens) + mask[None, :, None]
            attn = attn.view(-1, self.heads, tokens, tokens)
        out = attn.softmax(dim=-1) @ v  # (B nW, heads, N, C / heads)
        return self.proj(out.transpose(1, 2).reshape(n_windows, tokens, dim))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class SwinBlock(nn.Module):
    """A Swin transformer block: (shifted) window attention and an MLP, each pre-normed and residual."""

    def __init__(self, dim: int, heads: int, window: int, shift: int, mlp_ratio: float, qkv_bias: bool) -> None:
        super().__init__()
        self.window, self.shift = window, shift
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads, window, qkv_bias)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, size: tuple[int, int], mask: torch.Tensor | None) -> torch.Tensor:
        h, wd = size
        b, _, c = x.shape  # (B, H W, C)
        y = self.norm1(x).view(b, h, wd, c)
        if self.shift:
            y = torch.roll(y, (-self.shift, -self.shift), dims=(1, 2))
        y = self.attn(_window_partition(y, self.window), mask if self.shift else None)
        y = _window_merge(y, self.window, h, wd)
        if self.shift:
            y = torch.roll(y, (self.shift, self.shift), dims=(1, 2))
        x = x + y.reshape(b, h * wd, c)
        return x + self.mlp(self.norm2(x))


class ResidualGroup(nn.Module):
    """A series of blocks (alternately shifted by half a window) with its own residual group (RSTB)."""

    def __init__(self, dim: int, depth: int, heads: int, shape: SwinIRShape) -> None:
        super().__init__()
        self.residual_group = nn.Module()
        self.residual_group.blocks = nn.ModuleList(
            SwinBlock(dim, heads, shape.window, 0 if i % 2 == 0 else shape.window // 2, shape.mlp_ratio,
                      shape.qkv_bias) for i in range(depth))
        self.conv = _residual_conv(dim, shape.three_conv)

    def forward(self, x: torch.Tensor, size: tuple[int, int], mask: torch.Tensor) -> torch.Tensor:
        y = x
        for block in self.residual_group.blocks:
            y = block(y, size, mask)
        b, _, c = y.shape
        y = self.conv(y.transpose(1, 2).reshape(b, c, *size))  # (B, C, H, W)
        return y.flatten(2).transpose(1, 2) + x


def _residual_conv(dim: int, three: bool) -> nn.Module:
    if not three:
        return nn.Conv2d(dim, dim, 3, 1, 1)
    return nn.Sequential(nn.Conv2d(dim, dim // 4, 3, 1, 1), nn.LeakyReLU(0.2), nn.Conv2d(dim // 4, dim // 4, 1),
                         nn.LeakyReLU(0.2), nn.Conv2d(dim // 4, dim, 3, 1, 1))


def pixelshuffle_upsample(scale: int) -> nn.Sequential:
    """The classical head's upsampler: a conv and a x2 PixelShuffle per octave (one x3 for scale 3)."""
    stages = [(4, 2)] * int(math.log2(scale)) if scale != 3 else [(9, 3)]
    return nn.Sequential(*(m for k, s in stages for m in (
        nn.Conv2d(HEAD_FEATURES, k * HEAD_FEATURES, 3, 1, 1), nn.PixelShuffle(s))))


class WindowTransformerSR(nn.Module):
    """The trunk SwinIR and HAT share, with their released module names: the RGB mean shift, the first
    conv, an optional patch norm, residual groups over tokens, a final norm and the conv after the body.
    Subclasses add `layers` (each called as layer(tokens, (H, W), shift_mask)) and a head."""

    def __init__(self, channels: int, dim: int, window: int, patch_norm: bool, scale: int) -> None:
        super().__init__()
        self.window, self.scale, self.channels, self.patch_norm = window, scale, channels, patch_norm
        mean = torch.tensor(RGB_MEAN if channels == 3 else (0.0,) * channels).view(1, channels, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.conv_first = nn.Conv2d(channels, dim, 3, 1, 1)
        if patch_norm:
            self.patch_embed = nn.Module()
            self.patch_embed.norm = nn.LayerNorm(dim)
        self.norm = nn.LayerNorm(dim)

    def trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(input padded by reflection to whole windows, minus the mean; first conv + body's residual)."""
        h, w = x.shape[-2:]
        x = F.pad(x, (0, -w % self.window, 0, -h % self.window), mode="reflect") - self.mean
        feat = self.conv_first(x)
        b, c, ph, pw = feat.shape
        tokens = feat.flatten(2).transpose(1, 2)  # (B, H W, C)
        if self.patch_norm:
            tokens = self.patch_embed.norm(tokens)
        mask = shift_mask(ph, pw, self.window, self.window // 2).to(x)
        for layer in self.layers:
            tokens = layer(tokens, (ph, pw), mask)
        body = self.norm(tokens).transpose(1, 2).reshape(b, c, ph, pw)
        return x, self.conv_after_body(body) + feat

    def finish(self, out: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """The head's output with the mean added back, cropped to scale x the unpadded input."""
        return (out + self.mean)[..., :height * self.scale, :width * self.scale]


class SwinIR(WindowTransformerSR):
    """Image in [0, 1] (B, C, H, W) -> (B, C, scale H, scale W)."""

    def __init__(self, shape: SwinIRShape) -> None:
        super().__init__(shape.channels, shape.embed_dim, shape.window, shape.patch_norm, shape.scale)
        self.shape = shape
        dim, out = shape.embed_dim, shape.channels
        self.layers = nn.ModuleList(ResidualGroup(dim, d, h, shape) for d, h in zip(shape.depths, shape.heads))
        self.conv_after_body = _residual_conv(dim, shape.three_conv)
        if shape.upsampler in ("pixelshuffle", "nearest+conv"):
            self.conv_before_upsample = nn.Sequential(nn.Conv2d(dim, HEAD_FEATURES, 3, 1, 1), nn.LeakyReLU())
        if shape.upsampler == "pixelshuffle":
            self.upsample = pixelshuffle_upsample(shape.scale)
        elif shape.upsampler == "pixelshuffledirect":
            self.upsample = nn.Sequential(nn.Conv2d(dim, shape.scale**2 * out, 3, 1, 1), nn.PixelShuffle(shape.scale))
        elif shape.upsampler == "nearest+conv":
            self.conv_up1, self.conv_up2, self.conv_hr = (nn.Conv2d(HEAD_FEATURES, HEAD_FEATURES, 3, 1, 1)
                                                          for _ in range(3))
        if shape.upsampler != "pixelshuffledirect":
            self.conv_last = nn.Conv2d(HEAD_FEATURES if shape.upsampler else dim, out, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x, res = self.trunk(x)
        up = self.shape.upsampler
        if up == "pixelshuffle":
            out = self.conv_last(self.upsample(self.conv_before_upsample(res)))
        elif up == "pixelshuffledirect":
            out = self.upsample(res)
        elif up == "nearest+conv":
            y = self.conv_before_upsample(res)
            for conv in (self.conv_up1, self.conv_up2):
                y = F.leaky_relu(conv(F.interpolate(y, scale_factor=2, mode="nearest")), 0.2)
            out = self.conv_last(F.leaky_relu(self.conv_hr(y), 0.2))
        else:
            out = x + self.conv_last(res)
        return self.finish(out, h, w)

    def bytes_per_pixel(self) -> int:
        """Estimated peak float32 bytes per input pixel: a block's token maps (input, norm, q/k/v, MLP
        hidden) and attention logits at the input size, and the head's maps at the output size."""
        s = self.shape
        tokens = 8 * s.embed_dim + s.embed_dim * s.mlp_ratio + 2 * max(s.heads) * s.window**2
        head = 3 * HEAD_FEATURES * s.scale**2 if s.upsampler else 0
        return int(4 * 1.5 * (tokens + head))


def is_swinir(keys: Mapping[str, torch.Tensor]) -> bool:
    """Whether a state dict is a SwinIR (and not HAT, whose groups hold conv blocks besides attention)."""
    return ("conv_first.weight" in keys and "layers.0.residual_group.blocks.0.attn.qkv.weight" in keys
            and not any(".conv_block." in k or "overlap_attn" in k for k in keys))


_BLOCK = re.compile(r"layers\.(\d+)\.residual_group\.blocks\.(\d+)\.")


def swinir_shape(state: Mapping[str, torch.Tensor]) -> SwinIRShape:
    """The hyper-parameters of the SwinIR a state dict holds; ValueError for one it cannot be."""
    dim, channels = state["conv_first.weight"].shape[:2]
    blocks: dict[int, int] = {}
    for key in state:
        if m := _BLOCK.match(key):
            blocks[int(m[1])] = max(blocks.get(int(m[1]), 0), int(m[2]) + 1)
    if "absolute_pos_embed" in state:
        raise ValueError("a SwinIR with an absolute position embedding only takes its training size")
    depths = tuple(blocks[i] for i in range(len(blocks)))
    table = [state[f"layers.{i}.residual_group.blocks.0.attn.relative_position_bias_table"] for i in range(len(depths))]
    side = math.isqrt(table[0].shape[0])
    if side * side != table[0].shape[0] or side % 2 == 0:
        raise ValueError(f"a relative position table of {table[0].shape[0]} rows is not (2 w - 1)^2")
    hidden = state["layers.0.residual_group.blocks.0.mlp.fc1.weight"].shape[0]
    if "conv_up1.weight" in state:
        upsampler, scale = "nearest+conv", 4
    elif "conv_before_upsample.0.weight" in state:
        convs = sorted(int(k.split(".")[1]) for k in state if re.fullmatch(r"upsample\.\d+\.weight", k))
        first = state["upsample.0.weight"].shape[0] // HEAD_FEATURES
        upsampler, scale = "pixelshuffle", 3 if first == 9 else 2 ** len(convs)
    elif "upsample.0.weight" in state:
        squared = state["upsample.0.weight"].shape[0] // channels
        upsampler, scale = "pixelshuffledirect", math.isqrt(squared)
    else:
        upsampler, scale = "", 1
    return SwinIRShape(channels, dim, depths, tuple(int(t.shape[1]) for t in table), (side + 1) // 2,
                       hidden / dim, "layers.0.conv.0.weight" in state, "patch_embed.norm.weight" in state,
                       "layers.0.residual_group.blocks.0.attn.qkv.bias" in state, upsampler, scale)


def swinir_from_state_dict(state: Mapping[str, torch.Tensor]) -> SwinIR:
    """A SwinIR shaped by and loaded with `state`; ValueError/RuntimeError if it does not fit."""
    model = SwinIR(swinir_shape(state))
    derived = (".attn_mask", ".relative_position_index")  # buffers of the original code, rebuilt here
    model.load_state_dict({k: v for k, v in state.items() if not k.endswith(derived)}, strict=True)
    return model
