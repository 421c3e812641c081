"""Headless command-line commands (`atelier info`, ...); the GUI entry point adds its own."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

from engine.metadata import MetadataError, read_image_settings
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
        print(f"atelier: read from another tool's 'parameters' text (best effort)", file=sys.stderr)
        for key, value in settings.unmapped.items():
            print(f"atelier: not mapped: {key}: {value}", file=sys.stderr)
        for warning in settings.warnings:
            print(f"atelier: warning: {warning}", file=sys.stderr)
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


# Errors a command reports as one clear line instead of a traceback.
USER_ERRORS: tuple[type[Exception], ...] = (MetadataError, ValueError, OSError)
