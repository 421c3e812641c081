"""Headless command-line commands (`atelier info`, ...); the GUI entry point adds its own."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

from engine.metadata import MetadataError, read_image_settings, save_png
from engine.pipeline.errors import GenerationError, NoModelError
from engine.pipeline.progress import TextProgressBar
from engine.render_args import add_render_arguments, job_from_args
from engine.settings import job_to_dict

Handler = Callable[[argparse.Namespace], int]


def _info(args: argparse.Namespace) -> int:
    """Print the settings recorded in an image as JSON."""
    settings = read_image_settings(Path(args.image))
    out = job_to_dict(settings.job)
    if args.verbose:
        out = {"source": settings.source, "settings": out, "unmapped": settings.unmapped,
               "warnings": list(settings.warnings)}
    print(json.dumps(out, indent=2, ensure_ascii=False))
    if settings.source != "atelier":
        print("atelier: read from another tool's 'parameters' text (best effort)", file=sys.stderr)
        for key, value in settings.unmapped.items():
            print(f"atelier: not mapped: {key}: {value}", file=sys.stderr)
        for warning in settings.warnings:
            print(f"atelier: warning: {warning}", file=sys.stderr)
    return 0


class CommandError(Exception):
    """A command failed for a reason the user can fix (reported as one line)."""


def output_paths(output: Path, count: int) -> list[Path]:
    """Where `render` writes `count` images: OUT.png for one, OUT-0001.png, OUT-0002.png, ... for more."""
    if count == 1:
        return [output]
    return [output.with_name(f"{output.stem}-{i:04d}{output.suffix or '.png'}") for i in range(1, count + 1)]


def _render(args: argparse.Namespace) -> int:
    """Run a job headless and write its images as PNGs with their settings."""
    from PIL import Image

    from engine.models import ModelLoadError  # torch and diffusers load only for this command
    from engine.pipeline import Cancelled, Engine

    engine = Engine(device=args.device)
    job = job_from_args(args, engine.recommended)
    bar = TextProgressBar(sys.stderr)
    try:
        results = engine.run(job, progress=bar)
    except (ModelLoadError, Cancelled) as exc:
        raise CommandError(str(exc)) from exc
    finally:
        bar.done()
    for result, path in zip(results, output_paths(args.output, len(results))):
        save_png(Image.fromarray(result.image), path, result.job)
        print(path)
        for note in result.notes:
            print(f"atelier: {path.name}: {note}", file=sys.stderr)
    return 0


def add_commands(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register the headless commands on a subparser set."""
    info = subparsers.add_parser(
        "info", help="print the generation settings recorded in an image as JSON",
        description="Print the generation settings recorded in a PNG (Atelier's own, or A1111-style "
        "'parameters' written by other tools) as Atelier settings JSON.",
    )
    info.add_argument("image", help="a PNG image")
    info.add_argument("-v", "--verbose", action="store_true",
                      help="also print the source, unmapped fields and warnings")
    info.set_defaults(handler=_info)
    render = subparsers.add_parser(
        "render", help="generate images headless from settings, flags or an image's metadata",
        description="Run a generation job without the window: settings from a JSON file or from an image "
        "Atelier made (--from), flags override them; writes PNGs that carry the settings.",
    )
    add_render_arguments(render)
    render.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    render.set_defaults(handler=_render)
    from engine.face.cli import add_faces_command  # light: the face modules load when it runs
    add_faces_command(subparsers)
    from engine.detect.cli import add_detect_command  # light: detectors load when it runs
    add_detect_command(subparsers)
    from engine.upscale.cli import add_upscale_command  # light: torch loads when a model upscaler runs
    add_upscale_command(subparsers)


# Errors a command reports as one clear line instead of a traceback.
USER_ERRORS: tuple[type[Exception], ...] = (MetadataError, ValueError, OSError, CommandError, NoModelError,
                                             GenerationError)
