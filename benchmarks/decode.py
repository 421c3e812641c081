"""Decode benchmark: peak memory of tiled VAE decoding against its stated bound, and seams.

Run: python benchmarks/decode.py [--size 2048] [--narrow N]

The bound (engine.decoding.vae.tiled_peak_bound): a tiled decode of any size needs at most the
peak of decoding one tile whole, plus the float32 output and blend-weight buffers (4 channels of
H x W), plus 10 %. The script measures, for an SD1.5-architecture AutoencoderKL with random weights:
- the whole-image decode peak at 512 and 1024 px (it grows with the area: 4x per doubling);
- the tiled decode peak at 1024 px and at --size (default 2048), checked against the bound;
- the largest pixel difference between tiled and whole decodes at 1024 px (seams would show here).
On the CPU the VAE's channel widths are divided by --narrow (default 4; 1 on CUDA) so the run
takes minutes, not an hour: the bound depends on the architecture's shape, not its width.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from diffusers import AutoencoderKL  # noqa: E402

from benchmarks.measure import peak_bytes  # noqa: E402
from engine.decoding.vae import decode, tiled_peak_bound  # noqa: E402
from engine.pipeline.decode import DEFAULT_TILES  # noqa: E402

MIB = 2**20


def sd_vae(narrow: int, device: torch.device) -> AutoencoderKL:
    """The SD1.5 VAE architecture (shipped config) with random weights, channels divided by `narrow`."""
    config = json.loads((ROOT / "resources" / "configs" / "sd1" / "vae" / "config.json").read_text())
    config["block_out_channels"] = [c // narrow for c in config["block_out_channels"]]
    config["norm_num_groups"] = max(1, config.get("norm_num_groups", 32) // narrow)
    torch.manual_seed(0)
    return AutoencoderKL.from_config(config).eval().to(device)


def latents(size: int, device: torch.device) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randn(1, 4, size // 8, size // 8, generator=g).to(device)  # (1, 4, h, w)


def timed_peak(fn, device: torch.device) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    peak = peak_bytes(fn, device)
    return time.perf_counter() - start, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048, help="largest image side for the tiled decode")
    parser.add_argument("--narrow", type=int, default=None, help="divide the VAE's channels (default 4 on CPU)")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    narrow = args.narrow or (1 if device.type == "cuda" else 4)
    vae = sd_vae(narrow, device)
    tiles = DEFAULT_TILES
    tile_px = tiles.tile * 8
    print(f"device {device}, SD1.5 VAE architecture, channels / {narrow}, tiles {tiles.tile} latent px "
          f"({tile_px} px) with {tiles.overlap} overlap")

    whole: dict[int, int] = {}
    for size in (tile_px, 1024):
        seconds, whole[size] = timed_peak(lambda s=size: decode(vae, latents(s, device)), device)
        print(f"  whole decode {size:>5} px: peak {whole[size] / MIB:8.1f} MiB  ({seconds:6.1f} s)")
    growth = whole[1024] / whole[tile_px]
    print(f"  whole-decode peak grows {growth:.1f}x from {tile_px} to 1024 px "
          f"(a whole {args.size} px decode would need about {whole[1024] * (args.size / 1024) ** 2 / MIB:,.0f} MiB)")

    ok = True
    for size in sorted({1024, args.size}):
        seconds, peak = timed_peak(lambda s=size: decode(vae, latents(s, device), tiles=tiles), device)
        bound = tiled_peak_bound(whole[tile_px], 1, size, size)
        ok &= peak <= bound
        print(f"  tiled decode {size:>5} px: peak {peak / MIB:8.1f} MiB  bound {bound / MIB:8.1f} MiB  "
              f"{'within' if peak <= bound else 'OVER'} the bound  ({seconds:6.1f} s)")

    z = latents(1024, device)
    diff = (decode(vae, z, tiles=tiles) - decode(vae, z)).abs()  # (1, 3, H, W) in [-1, 1] units
    print(f"  tiled vs whole at 1024 px: max |diff| {diff.max().item() * 127.5:.2f} / 255, "
          f"mean {diff.mean().item() * 127.5:.3f} / 255")
    print("bound holds" if ok else "BOUND EXCEEDED")


if __name__ == "__main__":
    main()
