"""Latents <-> pixels: AutoencoderKL with its scaling/shift factors, VQGAN (VQModel) with codebook
quantization, and tiled decoding with overlap blending for large images."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class LatentScaling:
    """How a VAE's raw latents map to the diffusion model's: z_model = (z_vae - shift) * scale."""

    scale: float = 1.0
    shift: float = 0.0

    @staticmethod
    def of(vae: Any) -> LatentScaling:
        """Read scaling_factor and shift_factor from a diffusers VAE/VQ config."""
        config = vae.config
        scale = getattr(config, "scaling_factor", None)
        shift = getattr(config, "shift_factor", None)
        return LatentScaling(float(scale) if scale is not None else 1.0, float(shift) if shift is not None else 0.0)


@dataclass(frozen=True)
class TileSpec:
    """Tiled decoding: tile and overlap in latent pixels."""

    tile: int = 64
    overlap: int = 16

    def __post_init__(self) -> None:
        if self.tile < 8:
            raise ValueError(f"tile must be >= 8 latent pixels, got {self.tile}")
        if not 0 <= self.overlap < self.tile // 2 + 1:
            raise ValueError(f"overlap must be in [0, tile/2], got {self.overlap} for tile {self.tile}")


def is_vq(vae: Any) -> bool:
    """Whether the autoencoder is a VQGAN (diffusers VQModel)."""
    return hasattr(vae, "quantize")


def _decode_raw(vae: Any, z: torch.Tensor) -> torch.Tensor:
    if is_vq(vae):
        return vae.decode(z, force_not_quantize=False).sample  # quantizes to the codebook first
    return vae.decode(z).sample


@torch.no_grad()
def encode(vae: Any, images: torch.Tensor, generator: torch.Generator | None = None, sample: bool = False) -> torch.Tensor:
    """Images (B, 3, H, W) in [-1, 1] -> model latents (B, C, H/f, W/f), scaled and shifted."""
    scaling = LatentScaling.of(vae)
    images = images.to(device=vae.device, dtype=vae.dtype)
    if is_vq(vae):
        z = vae.encode(images).latents
    else:
        dist = vae.encode(images).latent_dist
        z = dist.sample(generator) if sample else dist.mode()
    return (z.float() - scaling.shift) * scaling.scale


@torch.no_grad()
def decode(vae: Any, latents: torch.Tensor, tiles: TileSpec | None = None) -> torch.Tensor:
    """Model latents (B, C, h, w) -> images (B, 3, h*f, w*f) in [-1, 1] (float32)."""
    scaling = LatentScaling.of(vae)
    z = (latents / scaling.scale + scaling.shift).to(device=vae.device, dtype=vae.dtype)
    if tiles is None or (z.shape[-2] <= tiles.tile and z.shape[-1] <= tiles.tile):
        return _decode_raw(vae, z).float().clamp(-1, 1)
    return _decode_tiled(vae, z, tiles).clamp(-1, 1)


def _starts(size: int, tile: int, overlap: int) -> list[int]:
    """Tile origins covering [0, size) with at least `overlap` shared between neighbours."""
    if size <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, size - tile, stride)) + [size - tile]
    return sorted(set(starts))


def _ramp(length: int, overlap_lo: int, overlap_hi: int, device: torch.device) -> torch.Tensor:
    """1-D blend weights for one tile along one axis.

    Within each overlap the outer quarter (next to the tile's edge, where zero padding distorts
    the decoder's output) gets weight 0, the middle half ramps linearly, the inner quarter gets 1;
    the neighbour's mirror-image ramp makes the weights sum to 1.
    """
    w = torch.ones(length, device=device)
    for n, lead in ((overlap_lo, True), (overlap_hi, False)):
        if n <= 0:
            continue
        margin, ramp = n // 4, n - 2 * (n // 4)
        edge = torch.cat([torch.zeros(margin, device=device),
                          torch.linspace(0, 1, ramp + 2, device=device)[1:-1],
                          torch.ones(n - margin - ramp, device=device)])
        if lead:
            w[:n] = torch.minimum(w[:n], edge)
        else:
            w[length - n:] = torch.minimum(w[length - n:], edge.flip(0))
    return w


class _GroupNormStats:
    """Run a module's GroupNorms on shared, whole-image statistics while it sees one tile.

    A decoder's GroupNorms normalise over the whole image; a tile decoded alone would use its
    own statistics and shift its colours. Each tile is first decoded with the statistics
    gathered so far (its own on the first pass) while its per-group sums are recorded; the sums
    over all tiles give the whole-image estimate used by the next pass.
    """

    def __init__(self, module: torch.nn.Module) -> None:
        self.norms = [m for m in module.modules() if isinstance(m, torch.nn.GroupNorm)]
        self.shared: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # (mean, var), each (B, G)
        self._moments: dict[int, tuple[float, torch.Tensor, torch.Tensor]] = {}  # (n, mean, M2) so far
        self.core = (0.0, 1.0, 0.0, 1.0)  # the part of the current tile that is its own (y0, y1, x0, x1)

    def _record(self, key: int, own: torch.Tensor) -> None:
        """Merge this tile's own part into the running per-group moments (Chan et al.'s pairwise
        update: exact, and without the cancellation of sum-of-squares)."""
        dims = tuple(range(2, own.dim()))
        var_b, mean_b = torch.var_mean(own, dim=dims, unbiased=False)  # (B, G) each, no full-size temporary
        n_b = float(own[0, 0].numel())
        mean_b, m2_b = mean_b.double(), var_b.double() * n_b
        if key not in self._moments:
            self._moments[key] = (n_b, mean_b, m2_b)
            return
        n_a, mean_a, m2_a = self._moments[key]
        n = n_a + n_b
        delta = mean_b - mean_a
        self._moments[key] = (n, mean_a + delta * (n_b / n), m2_a + m2_b + delta.square() * (n_a * n_b / n))

    def _forward(self, norm: torch.nn.GroupNorm):  # type: ignore[no-untyped-def]
        def forward(x: torch.Tensor) -> torch.Tensor:
            b, c = x.shape[:2]
            g = norm.num_groups
            xf = x.float()
            grouped = xf.reshape(b, g, c // g, *x.shape[2:])  # (B, G, C/G, ...), a view for contiguous x
            if x.dim() == 4:
                h, w = x.shape[2:]
                y0, y1, x0, x1 = self.core
                own = grouped[..., round(y0 * h):round(y1 * h), round(x0 * w):round(x1 * w)]  # this tile's share
            else:  # (B, C, N) inside attention: no spatial layout to crop
                own = grouped
            self._record(id(norm), own)
            if id(norm) in self.shared:
                mean, var = self.shared[id(norm)]
            else:
                var, mean = torch.var_mean(grouped, dim=tuple(range(2, grouped.dim())), unbiased=False)
            # y = x * scale + shift per channel: one output-sized tensor, as GroupNorm itself allocates.
            scale = torch.rsqrt(var.float() + norm.eps).repeat_interleave(c // g, dim=1)  # (B, C)
            shift = -mean.float().repeat_interleave(c // g, dim=1) * scale
            if norm.affine:
                scale, shift = scale * norm.weight.float(), shift * norm.weight.float() + norm.bias.float()
            shape = (b, c) + (1,) * (x.dim() - 2)
            return torch.addcmul(shift.reshape(shape), xf, scale.reshape(shape)).to(x.dtype)
        return forward

    def end_pass(self) -> None:
        """Turn the moments recorded this pass into the shared statistics for the next one."""
        self.shared = {key: (mean, m2 / n) for key, (n, mean, m2) in self._moments.items()}
        self._moments = {}

    def __enter__(self) -> _GroupNormStats:
        for norm in self.norms:
            norm.forward = self._forward(norm)  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        for norm in self.norms:
            del norm.forward


def _decode_tiled(vae: Any, z: torch.Tensor, tiles: TileSpec, passes: int = 2) -> torch.Tensor:
    """Decode overlapping latent tiles and blend them (no visible seams).

    The first pass only estimates the GroupNorm statistics of the whole image from the tiles;
    the last pass decodes with them. Peak memory is one tile's activations plus the output.
    """
    with _GroupNormStats(vae) as norms:
        for _ in range(passes - 1):
            _blend_tiles(vae, z, tiles, norms)
            norms.end_pass()
        return _blend_tiles(vae, z, tiles, norms)


def tiled_peak_bound(tile_peak_bytes: int, batch: int, height: int, width: int) -> int:
    """The stated peak-memory bound of a tiled decode of a (batch, 3, height, width) image: the peak
    of decoding one tile whole, plus the float32 output (3 channels) and blend-weight (1 channel)
    buffers, plus 10 % for the blending temporaries. It does not grow with the image beyond those
    buffers (benchmarks/decode.py measures it against a 2048 x 2048 decode)."""
    buffers = 4 * (3 * batch + 1) * height * width  # float32 out + weight
    return int(1.1 * (tile_peak_bytes + buffers))


def _core_span(starts: list[int], i: int, extent: int, size: int, tiles: TileSpec) -> tuple[float, float]:
    """The part of a tile along one axis (as fractions) that is its own once overlaps are split evenly."""
    lo = (starts[i - 1] + tiles.tile + starts[i]) / 2 if i > 0 else float(starts[i])
    hi = (starts[i] + extent + starts[i + 1]) / 2 if i + 1 < len(starts) else float(size)
    return (lo - starts[i]) / extent, (hi - starts[i]) / extent


def _blend_tiles(vae: Any, z: torch.Tensor, tiles: TileSpec, norms: _GroupNormStats) -> torch.Tensor:
    b, _, h, w = z.shape  # (B, C, h, w)
    ys, xs = _starts(h, tiles.tile, tiles.overlap), _starts(w, tiles.tile, tiles.overlap)
    out: torch.Tensor | None = None
    weight: torch.Tensor | None = None
    f = 0
    for yi, y in enumerate(ys):
        for xi, x in enumerate(xs):
            th, tw = min(tiles.tile, h - y), min(tiles.tile, w - x)
            # Each tile adds to the statistics only the part of the image it alone covers.
            norms.core = (*_core_span(ys, yi, th, h, tiles), *_core_span(xs, xi, tw, w, tiles))
            pixels = _decode_raw(vae, z[:, :, y:y + th, x:x + tw]).float()  # (B, 3, th*f, tw*f)
            if out is None:
                f = pixels.shape[-1] // tw
                out = torch.zeros(b, 3, h * f, w * f, device=pixels.device)
                weight = torch.zeros(1, 1, h * f, w * f, device=pixels.device)
            top = (ys[yi - 1] + tiles.tile - y) * f if yi > 0 else 0
            bottom = (y + th - ys[yi + 1]) * f if yi + 1 < len(ys) else 0
            left = (xs[xi - 1] + tiles.tile - x) * f if xi > 0 else 0
            right = (x + tw - xs[xi + 1]) * f if xi + 1 < len(xs) else 0
            wy = _ramp(th * f, max(top, 0), max(bottom, 0), pixels.device)
            wx = _ramp(tw * f, max(left, 0), max(right, 0), pixels.device)
            tile_w = (wy[:, None] * wx[None, :])[None, None]  # (1, 1, th*f, tw*f)
            out[:, :, y * f:(y + th) * f, x * f:(x + tw) * f] += pixels * tile_w
            weight[:, :, y * f:(y + th) * f, x * f:(x + tw) * f] += tile_w
    assert out is not None and weight is not None
    return out / weight.clamp_min(1e-8)


def to_uint8(images: torch.Tensor) -> list["np.ndarray"]:  # noqa: F821
    """Images (B, 3, H, W) in [-1, 1] -> list of (H, W, 3) uint8 arrays."""
    arr = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return [a.permute(1, 2, 0).cpu().numpy() for a in arr]


def from_uint8(image: "np.ndarray", device: torch.device | str = "cpu") -> torch.Tensor:  # noqa: F821
    """An (H, W, 3) uint8 array -> (1, 3, H, W) float in [-1, 1]."""
    t = torch.from_numpy(image).to(device).permute(2, 0, 1)[None].float()
    return t / 127.5 - 1.0
