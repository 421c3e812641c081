"""The `atelier` command: starts the studio, or runs a headless command without loading Qt."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine import __version__
from engine.cli import USER_ERRORS, add_commands


def _gui(args: argparse.Namespace) -> int:
    from studio.app import run_app  # Qt loads only for the GUI

    return run_app(sys.argv[:1] + list(args.qt_args), screenshot=args.screenshot, recover=args.recover)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every command."""
    parser = argparse.ArgumentParser(
        prog="atelier",
        description="Atelier, a local studio for diffusion and flow image generation. "
        "With no command it opens the studio window.",
    )
    parser.add_argument("--version", action="version", version=f"atelier {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    gui = sub.add_parser("gui", help="open the studio window (the default)")
    gui.add_argument("--screenshot", type=Path, metavar="PNG",
                     help="save a picture of the window once it is shown, then quit")
    gui.add_argument("--recover", choices=("ask", "yes", "no"), default="ask",
                     help="what to do with a session left by a crash (default: ask)")
    gui.add_argument("qt_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    gui.set_defaults(handler=_gui)
    add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `atelier` console script."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        args.qt_args, args.screenshot, args.recover = [], None, "ask"
        handler = _gui
    try:
        return handler(args)
    except USER_ERRORS as exc:
        print(f"atelier: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
