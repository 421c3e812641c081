"""Upscale benchmark: quality, throughput, tiling overhead and the peak memory of a tiled 4096 px upscale.

Run: python benchmarks/upscale.py [--scenes 20] [--tile 256]

- PSNR of atelier-x4, bicubic and lanczos against the 512 px render of held-out shapes-world scenes
  upscaled from their 128 px render (the built-in model's training case), and the throughput of each
  in output megapixels per second over those runs.
- Tiling overhead: time of a tiled 512 -> 2048 upscale (272 px tiles: 2 x 2 tiles overlapping by 32 px,
  the least overlap that keeps the output identical to the whole run) over one whole-image tile; target <= 1.15x.
- Peak memory of a 1024 -> 4096 upscale with --tile: the growth of the process's peak resident set
  (VmHWM, which sees torch's and numpy's allocations alike, unlike tracemalloc) over its resident set
  once the model is loaded, the input made and a small image upscaled, measured in a fresh process
  whose peak is reset at that point (/proc/self/clear_refs, so Linux only); checked against
  engine.upscale.tiling.tiled_peak_bound.
- User model files at their released sizes (random weights: speed does not depend on them): ESRGAN /
  Real-ESRGAN x4plus (RRDBNet, 64 features, 23 blocks), realesr-general-x4v3 (SRVGGNetCompact, 64
  features, 32 convs), SwinIR-M classical x4 (width 180, 6 groups of 6 blocks, window 8) and HAT_SRx4
  (width 180, 6 groups of 6 blocks, window 16, overlapping window 24), saved as .safetensors and run through upscale_image on a 192 px input with
  128 px tiles: output megapixels per second, and the tile size picked from free memory.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from engine.data import HELDOUT_SEEDS, make_sample  # noqa: E402
from engine.train.sr import psnr  # noqa: E402
from engine.upscale import UPSCALERS, upscale_image  # noqa: E402

MIB = 2**20
OVERHEAD_TILE = 272  # 512 px input: 2 x 2 tiles overlapping by 32 px

# Run in a fresh process whose peak RSS (VmHWM) is reset after the warm-up: ru_maxrss would not do, as
# a child spawned by this process starts with this process's peak (it is kept across fork and exec).
PEAK_SCRIPT = """
import json, sys
import numpy as np, torch
from engine.upscale import builtin_upscaler_dir, load_pixelshuffle_sr, tiled_peak_bound, tiled_upscale

def status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))

tile = int(sys.argv[1])
model = load_pixelshuffle_sr(builtin_upscaler_dir())
image = np.random.default_rng(0).integers(0, 256, (1024, 1024, 3), dtype=np.uint8)
tiled_upscale(model, image[:160, :160], 4, tile, torch.device("cpu"))  # warm-up: kernels, thread pools
with open("/proc/self/clear_refs", "w") as f:  # peak RSS (VmHWM) := current RSS, from here on
    f.write("5")
base = status("VmRSS")
out = tiled_upscale(model, image, 4, tile, torch.device("cpu"))
print(json.dumps({"growth": status("VmHWM") - base, "bound": tiled_peak_bound(1024, 1024, 4, tile, model.bytes_per_pixel()),
                  "shape": list(out.shape), "bytes_per_pixel": model.bytes_per_pixel()}))
"""


def quality(scenes: int) -> None:
    """PSNR and throughput of every upscaler on held-out 128 -> 512 scenes."""
    pairs = []
    for seed in range(HELDOUT_SEEDS.start, HELDOUT_SEEDS.start + scenes):
        sample = make_sample(seed, 512, low_size=128)
        assert sample.low_image is not None
        pairs.append((sample.low_image, sample.image))
    print(f"held-out scenes 128 -> 512 px ({scenes}):")
    for name in UPSCALERS:
        upscale_image(pairs[0][0], name, 4)  # warm-up
        start = time.perf_counter()
        scores = [psnr(upscale_image(low, name, 4), truth) for low, truth in pairs]
        seconds = time.perf_counter() - start
        print(f"  {name:<11} PSNR {np.mean(scores):6.2f} dB   {scenes * 512 * 512 / 1e6 / seconds:7.2f} MP/s out")


def overhead() -> None:
    """Tiled over whole-image time at 512 -> 2048: the best of 5 runs each, interleaved so load from
    other processes hits both alike."""
    image = make_sample(HELDOUT_SEEDS.start, 2048, low_size=512).low_image
    assert image is not None
    times: dict[int, list[float]] = {4096: [], OVERHEAD_TILE: []}
    outs: dict[int, np.ndarray] = {}
    for _ in range(5):
        for tile in times:
            start = time.perf_counter()
            outs[tile] = upscale_image(image, "atelier-x4", 4, tile=tile)
            times[tile].append(time.perf_counter() - start)
    whole, tiled = min(times[4096]), min(times[OVERHEAD_TILE])
    ref, out = outs[4096], outs[OVERHEAD_TILE]
    diff = np.abs(out.astype(np.int16) - ref)
    ratio = tiled / whole
    print(f"tiling overhead 512 -> 2048: whole {whole:.2f} s, {OVERHEAD_TILE} px tiles {tiled:.2f} s: "
          f"{ratio:.2f}x ({'within' if ratio <= 1.15 else 'OVER'} the 1.15x target); "
          f"max |diff| {diff.max()}, mean {diff.mean():.4f}")


def peak(tile: int) -> None:
    """Peak RSS growth of a tiled 1024 -> 4096 upscale, in a fresh process, against the stated bound."""
    run = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(tile)], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    result = json.loads(run.stdout.strip().splitlines()[-1])
    ok = result["growth"] <= result["bound"]
    print(f"peak memory 1024 -> 4096 px, {tile} px tiles (CPU): RSS growth {result['growth'] / MIB:.0f} MiB, "
          f"bound {result['bound'] / MIB:.0f} MiB ({'within' if ok else 'OVER'} the bound; "
          f"a whole-image run would need about {result['bytes_per_pixel'] * 1024**2 / MIB:.0f} MiB "
          f"for the model alone)")


def user_models() -> None:
    """Throughput of released-size ESRGAN-family networks loaded from files, tiled."""
    import tempfile

    import torch
    from safetensors.torch import save_file

    from engine.upscale.esrgan import RRDBNet
    from engine.upscale.model_file import load_upscaler_file
    from engine.upscale.srvgg import SRVGGNetCompact
    from engine.upscale.hat import HAT, HATShape
    from engine.upscale.swinir import SwinIR, SwinIRShape
    from engine.upscale.tiling import auto_tile

    image = make_sample(HELDOUT_SEEDS.start, 768, low_size=192).low_image
    assert image is not None
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        swinir_m = SwinIR(SwinIRShape(3, 180, (6,) * 6, (6,) * 6, 8, 2.0, False, True, True, "pixelshuffle", 4))
        hat_x4 = HAT(HATShape(3, 180, (6,) * 6, (6,) * 6, 16, 24, 3, 30, 2.0, True, True, True, 4))
        for name, net in (("RealESRGAN_x4plus (RRDBNet 64x23)", RRDBNet()),
                          ("realesr-general-x4v3 (SRVGG 64x32)", SRVGGNetCompact(3, 64, 32, 4)),
                          ("SwinIR-M classical x4 (180, 6x6)", swinir_m),
                          ("HAT_SRx4 (180, 6x6, window 16)", hat_x4)):
            path = Path(tmp) / "model.safetensors"
            save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
            model = load_upscaler_file(path)
            upscale_image(image[:64, :64], path, 4, tile=128)  # warm-up
            start = time.perf_counter()
            out = upscale_image(image, path, 4, tile=128)
            seconds = time.perf_counter() - start
            print(f"  {name:<36} {out.shape[0] * out.shape[1] / 1e6 / seconds:6.3f} MP/s out "
                  f"({seconds:.1f} s for 192 -> 768 px); auto tile on this CPU: "
                  f"{auto_tile(model.bytes_per_pixel, torch.device('cpu'))} px")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=20, help="held-out scenes for PSNR and throughput")
    parser.add_argument("--tile", type=int, default=256, help="tile side (input px) for the peak-memory run")
    parser.add_argument("--skip-user-models", action="store_true", help="skip the released-size ESRGAN-family runs")
    args = parser.parse_args()
    quality(args.scenes)
    overhead()
    peak(args.tile)
    if not args.skip_user_models:
        print("user model files (CPU, random weights at released sizes):")
        user_models()


if __name__ == "__main__":
    main()
