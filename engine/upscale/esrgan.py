"""RRDBNet, the generator of ESRGAN (Wang et al. 2018, "ESRGAN: Enhanced Super-Resolution Generative
Adversarial Networks") and Real-ESRGAN (Wang et al. 2021), built from a state dict in any of its three
key layouts, with its shape read off the tensors.

Layouts. BasicSR / Real-ESRGAN (`conv_first`, `body.N.rdbM.convK`, `conv_body`, `conv_up1`...,
`conv_hr`, `conv_last`) is the module's own. The original ESRGAN repository's later one
(`RRDB_trunk.N.RDBM.convK`, `trunk_conv`, `upconv1`, `HRconv`) and its first one, a flat
`nn.Sequential` (`model.0`, `model.1.sub.N.RDBM.convK.0`, `model.1.sub.<blocks>` as the trunk's last
conv, then per x2 stage an upsample, a conv and an activation, so convs at `model.3`, `model.6`...,
then the two HR convs), are renamed onto it.

Scale. Every x2 stage is a nearest upsample and a conv; Real-ESRGAN's x2 and x1 models first fold the
image with a pixel unshuffle by 2 or 4 (the first conv then takes 4 or 16 times the channels), so
scale = 2 ** stages / unshuffle.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

RESIDUAL_SCALE = 0.2  # each dense block and each RRDB adds 0.2 x its output to its input
SLOPE = 0.2  # leaky ReLU


class DenseBlock(nn.Module):
    """A residual dense block: five 3x3 convs, each seeing the input and all earlier outputs."""

    def __init__(self, features: int, growth: int) -> None:
        super().__init__()
        for k in range(1, 6):
            out = features if k == 5 else growth
            setattr(self, f"conv{k}", nn.Conv2d(features + (k - 1) * growth, out, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for k in range(1, 5):
            feats.append(F.leaky_relu(getattr(self, f"conv{k}")(torch.cat(feats, 1)), SLOPE))
        return x + RESIDUAL_SCALE * self.conv5(torch.cat(feats, 1))


class RRDB(nn.Module):
    """Residual-in-residual dense block: three dense blocks inside a scaled skip."""

    def __init__(self, features: int, growth: int) -> None:
        super().__init__()
        self.rdb1, self.rdb2, self.rdb3 = (DenseBlock(features, growth) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + RESIDUAL_SCALE * self.rdb3(self.rdb2(self.rdb1(x)))


class RRDBNet(nn.Module):
    """Image in [0, 1] (B, C, H, W) -> (B, C_out, scale H, scale W)."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, features: int = 64, blocks: int = 23,
                 growth: int = 32, stages: int = 2, unshuffle: int = 1) -> None:
        super().__init__()
        if unshuffle not in (1, 2, 4) or 2**stages < unshuffle or min(features, blocks, growth) < 1:
            raise ValueError(f"bad RRDBNet shape: features={features}, blocks={blocks}, growth={growth}, "
                             f"stages={stages}, unshuffle={unshuffle}")
        self.channels, self.unshuffle, self.stages = in_channels, unshuffle, stages
        self.scale = 2**stages // unshuffle
        self.features, self.growth = features, growth
        self.conv_first = nn.Conv2d(in_channels * unshuffle**2, features, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(features, growth) for _ in range(blocks)))
        self.conv_body = nn.Conv2d(features, features, 3, 1, 1)
        for k in range(1, stages + 1):
            setattr(self, f"conv_up{k}", nn.Conv2d(features, features, 3, 1, 1))
        self.conv_hr = nn.Conv2d(features, features, 3, 1, 1)
        self.conv_last = nn.Conv2d(features, out_channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if self.unshuffle > 1:  # padded by reflection to a multiple of u, cropped back at the end
            u = self.unshuffle
            x = F.pad(x, (0, -width % u, 0, -height % u), mode="reflect")
            x = F.pixel_unshuffle(x, u)  # (B, C u^2, H / u, W / u)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for k in range(1, self.stages + 1):
            feat = F.leaky_relu(getattr(self, f"conv_up{k}")(F.interpolate(feat, scale_factor=2, mode="nearest")), SLOPE)
        out = self.conv_last(F.leaky_relu(self.conv_hr(feat), SLOPE))
        return out[..., :height * self.scale, :width * self.scale]

    def bytes_per_pixel(self) -> int:
        """Estimated peak float32 bytes per input pixel of a forward pass: three feature maps at the
        output size (an upsample, its conv, the activation) and, at the trunk's size, the skip, the
        block's input and a dense block's concatenation."""
        out = 3 * self.features * self.scale**2
        trunk = (3 * self.features + self.features + 4 * self.growth) / self.unshuffle**2
        return int(4 * 1.25 * (out + trunk))


_SEQUENTIAL_RDB = re.compile(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)$")
_TRUNK_RDB = re.compile(r"RRDB_trunk\.(\d+)\.RDB(\d)\.conv(\d)\.(weight|bias)$")
_SEQUENTIAL_CONV = re.compile(r"model\.(\d+)\.(weight|bias)$")
_TRUNK_NAMES = {"trunk_conv": "conv_body", "HRconv": "conv_hr", "upconv1": "conv_up1", "upconv2": "conv_up2",
                "upconv3": "conv_up3"}


def is_rrdbnet(keys: Mapping[str, torch.Tensor]) -> bool:
    """Whether a state dict is an RRDBNet in one of the three layouts."""
    return (("conv_first.weight" in keys and any(k.startswith(("body.0.rdb1.", "RRDB_trunk.0.RDB1.")) for k in keys))
            or ("model.0.weight" in keys and "model.1.sub.0.RDB1.conv1.0.weight" in keys))


def _from_sequential(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The flat-Sequential layout renamed: model.1.sub.<last> is the trunk conv; convs after model.1
    sit every 3 indices (upsample, conv, activation) and the last two are the HR convs."""
    blocks = 1 + max((int(m[1]) for k in state if (m := _SEQUENTIAL_RDB.match(k))), default=-1)
    top = sorted({int(m[1]) for k in state if (m := _SEQUENTIAL_CONV.match(k))})
    if not top or top[0] != 0 or len(top) < 3:
        raise ValueError("an ESRGAN state dict in the model.N layout without its first or last convolutions")
    *ups, hr, last = top[1:]
    if ups != [3 + 3 * k for k in range(len(ups))] or hr != (ups[-1] + 2 if ups else 2) or last != hr + 2:
        raise ValueError(f"an ESRGAN state dict in the model.N layout with convolutions at unexpected places: {top}")
    names = {0: "conv_first", hr: "conv_hr", last: "conv_last"} | {i: f"conv_up{k + 1}" for k, i in enumerate(ups)}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if m := _SEQUENTIAL_RDB.match(key):
            out[f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"] = value
        elif m := _SEQUENTIAL_CONV.match(key):
            out[f"{names[int(m[1])]}.{m[2]}"] = value
        elif key.startswith(f"model.1.sub.{blocks}."):
            out["conv_body." + key.rsplit(".", 1)[1]] = value
        else:
            out[key] = value  # left for the strict load to name
    return out


def _from_trunk(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        head, _, tail = key.partition(".")
        if m := _TRUNK_RDB.match(key):
            out[f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"] = value
        else:
            out[f"{_TRUNK_NAMES.get(head, head)}.{tail}"] = value
    return out


def rrdbnet_from_state_dict(state: Mapping[str, torch.Tensor]) -> RRDBNet:
    """An RRDBNet shaped by and loaded with `state` (any of the three layouts); ValueError if it does not fit."""
    if "model.0.weight" in state:
        state = _from_sequential(state)
    elif any(k.startswith("RRDB_trunk.") for k in state):
        state = _from_trunk(state)
    first, last = state["conv_first.weight"], state["conv_last.weight"]
    features, in_folded = first.shape[:2]
    out_channels = last.shape[0]
    blocks = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("body."))
    growth = state["body.0.rdb1.conv1.weight"].shape[0]
    stages = sum(1 for k in state if re.fullmatch(r"conv_up\d+\.weight", k))
    fold = in_folded / out_channels  # the input has as many channels as the output
    unshuffle = math.isqrt(int(fold)) if fold in (1, 4, 16) else 0
    if unshuffle == 0:
        raise ValueError(f"an RRDBNet whose first conv takes {in_folded} channels for {out_channels} out: "
                         "not a plain or pixel-unshuffled image input")
    model = RRDBNet(out_channels, out_channels, features, blocks, growth, stages, unshuffle)
    model.load_state_dict(dict(state), strict=True)
    return model
