"""The `atelier` command: starts the studio, or runs a headless command without loading Qt."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine import __version__
from engine.cli import USER_ERRORS, CommandError, add_commands


def _gui(args: argparse.Namespace) -> int:
    if args.file is not None and not args.file.is_file():
        raise CommandError(f"{args.file}: no such file")
    from studio.app import run_app  # Qt loads only for the GUI

    return run_app(sys.argv[:1] + list(args.qt_args), screenshot=args.screenshot, recover=args.recover,
                   open_path=args.file)


def _desktop(args: argparse.Namespace) -> int:
    from studio import desktop

    if not sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        raise CommandError("desktop entries are a freedesktop.org (Linux) feature")
    data = args.data_home or desktop.data_home()
    if args.remove:
        files = desktop.uninstall(data)
        print(f"removed {len(files)} files from {data}" if files else f"nothing of Atelier's under {data}")
    else:
        executable = args.executable or desktop.running_executable()
        files = desktop.install(executable, data)
        print(f"installed {files[0]} (starts {executable.absolute()}), the {desktop.MIME_TYPE} type and icons")
    for note in desktop.refresh_caches(data):
        print(f"atelier: {note}", file=sys.stderr)
    return 0


def _add_desktop_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    install = sub.add_parser(
        "install-desktop", help="add Atelier to this user's applications menu and 'Open with' (Linux)",
        description="Install a desktop entry that starts this atelier, the Atelier project file type "
        "(*.atelier) and the icon under $XDG_DATA_HOME (~/.local/share), for the current user.")
    install.add_argument("--exec", dest="executable", type=Path, metavar="PATH",
                         help="the atelier executable the entry starts (default: the one running)")
    install.add_argument("--data-home", type=Path, metavar="DIR", help="default: $XDG_DATA_HOME or ~/.local/share")
    install.set_defaults(handler=_desktop, remove=False)
    remove = sub.add_parser("uninstall-desktop", help="remove what install-desktop added",
                            description="Remove the desktop entry, file type and icons install-desktop added.")
    remove.add_argument("--data-home", type=Path, metavar="DIR", help="default: $XDG_DATA_HOME or ~/.local/share")
    remove.set_defaults(handler=_desktop, remove=True, executable=None)


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
    gui.add_argument("file", nargs="?", type=Path,
                     help="an Atelier project or an image to open (a PNG's recorded settings load too)")
    gui.add_argument("qt_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    gui.set_defaults(handler=_gui)
    add_commands(sub)
    _add_desktop_commands(sub)
    return parser


def _with_command(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """`atelier FILE` (how the desktop opens a file) means `atelier gui FILE`."""
    commands = next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if argv and not argv[0].startswith("-") and argv[0] not in commands \
            and (Path(argv[0]).suffix or Path(argv[0]).exists()):
        return ["gui", *argv]
    return argv


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `atelier` console script."""
    parser = build_parser()
    args = parser.parse_args(_with_command(parser, sys.argv[1:] if argv is None else argv))
    handler = getattr(args, "handler", None)
    if handler is None:
        args.qt_args, args.screenshot, args.recover, args.file = [], None, "ask", None
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
