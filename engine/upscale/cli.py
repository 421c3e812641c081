"""`atelier upscale IMAGE --scale N -o OUT.png`: upscale an image file, keeping its Atelier settings."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from engine.upscale.registry import UPSCALERS, UpscalerError

DEFAULT_UPSCALER = "atelier-x4"


def _scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 1.0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 1, got {text}")
    return value


def _upscale(args: argparse.Namespace) -> int:
    """Upscale one image file and write it as a PNG (with the source's Atelier settings, if any)."""
    from PIL import Image

    from engine.metadata import MetadataError, read_image_settings, save_png
    from engine.pipeline.inputs import read_rgb
    from engine.pipeline.progress import Progress, TextProgressBar
    from engine.sampling.core import Cancelled
    from engine.settings.job import Upscale
    from engine.upscale.registry import upscale_image

    if args.model is not None and args.upscaler is not None:
        raise UpscalerError("give either --upscaler NAME or --model FILE, not both")
    upscaler = str(args.model) if args.model is not None else args.upscaler or DEFAULT_UPSCALER
    image = read_rgb(Path(args.image))
    try:
        settings = read_image_settings(Path(args.image))
        job = settings.job if settings.source == "atelier" else None
    except MetadataError:
        job = None  # a plain image: nothing to keep
    if job is not None:  # built first, so a setting the job cannot record fails before the work
        job = dataclasses.replace(job, upscale=Upscale(upscaler=upscaler, scale=args.scale, tile_size=args.tile))
    bar = TextProgressBar(sys.stderr)
    label = f"upscale {Path(upscaler).name} x{args.scale:g}, tiles"
    try:
        out = upscale_image(image, upscaler, args.scale, tile=args.tile, device=args.device,
                            on_tile=lambda done, total: bar(Progress(done, total, label=label)))
    except Cancelled as exc:
        raise UpscalerError(str(exc)) from exc
    finally:
        bar.done()
    if job is not None:
        save_png(Image.fromarray(out), args.output, job)
    else:
        Image.fromarray(out).save(args.output, format="PNG")
    print(args.output)
    return 0


def add_upscale_command(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register `upscale` on the command line's subparser set."""
    names = "; ".join(f"{name}: {spec.summary}" for name, spec in UPSCALERS.items())
    cmd = subparsers.add_parser(
        "upscale", help="upscale an image (Lanczos, bicubic, the built-in x4 model or an ESRGAN-family file, tiled)",
        description="Upscale an image file by a factor and write a PNG. A model upscaler runs in "
        "overlapping tiles (sized from free memory unless --tile is given) blended without seams. "
        "An image Atelier made keeps its settings, with the upscale recorded.",
    )
    cmd.add_argument("image", help="the image file")
    cmd.add_argument("--scale", type=_scale, required=True, metavar="N", help="upscale factor (>= 1; may be fractional)")
    cmd.add_argument("--upscaler", metavar="NAME", help=f"{names} (default: {DEFAULT_UPSCALER})")
    cmd.add_argument("--model", type=Path, metavar="FILE",
                     help="an upscaler model file instead: ESRGAN / Real-ESRGAN (RRDBNet, x1/x2/x4) or Real-ESRGAN "
                     "compact (SRVGGNetCompact), SwinIR or HAT weights, .safetensors or weights-only .pth; fp16 on CUDA")
    cmd.add_argument("--tile", type=int, metavar="T", help="tile side in input px for a model (default: from free memory)")
    cmd.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    cmd.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.png", help="where to write the PNG")
    cmd.set_defaults(handler=_upscale)
