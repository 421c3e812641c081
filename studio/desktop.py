"""Linux desktop integration for the current user: a freedesktop.org desktop entry ("Open with
Atelier" for projects and PNGs), the project file type and the icon, pointing at the `atelier`
that installs them (a venv's console script or a bundle's executable). No Qt here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from engine.paths import RESOURCES_DIR, icons_dir

DESKTOP_FILE = "atelier.desktop"
MIME_TYPE = "application/x-atelier-project"
APP_ICON = "atelier"
MIME_ICON = MIME_TYPE.replace("/", "-")  # the icon name the shared-mime-info XML gives the type
_TEMPLATES = RESOURCES_DIR / "desktop"
# Characters that make the desktop entry spec quote an Exec argument.
_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def data_home() -> Path:
    """Where per-user desktop data goes: $XDG_DATA_HOME, else ~/.local/share."""
    value = os.environ.get("XDG_DATA_HOME")
    return Path(value) if value and Path(value).is_absolute() else Path.home() / ".local" / "share"


def running_executable() -> Path:
    """The `atelier` command running now: a bundle's executable, or the console script on the
    command line, next to this interpreter, or on PATH."""
    if getattr(sys, "frozen", False):
        return Path(sys.executable).absolute()
    candidates = [Path(sys.argv[0]) if sys.argv and Path(sys.argv[0]).name == "atelier" else None,
                  Path(sys.executable).parent / "atelier"]
    found = shutil.which("atelier")
    candidates.append(Path(found) if found else None)
    for path in candidates:
        if path is not None and path.is_file() and os.access(path, os.X_OK):
            return path.absolute()
    raise FileNotFoundError("no installed `atelier` command found to point the desktop entry at; pass --exec")


def exec_argument(path: Path) -> str:
    """`path` as one argument of a desktop entry's Exec key (quoted and escaped as the spec says)."""
    text = str(path)
    if "\n" in text or "\r" in text:
        raise ValueError(f"{text!r}: a desktop entry cannot start a program whose path has a line break")
    if _RESERVED & set(text):
        for char in '\\"`$':
            text = text.replace(char, "\\" + char)
        text = f'"{text}"'
    return text.replace("%", "%%").replace("\\", "\\\\")  # then the string escapes of the file format


def desktop_entry(executable: Path) -> str:
    """The desktop entry text that starts `executable` with the file to open."""
    template = (_TEMPLATES / "atelier.desktop.in").read_text(encoding="utf-8")
    return (template.replace("@EXEC@", exec_argument(executable))
            .replace("@TRYEXEC@", str(executable).replace("\\", "\\\\")))


def _icon_sources() -> dict[str, Path]:
    """hicolor size folder ("16x16", ..., "scalable") -> the shipped icon file for it."""
    sources = {"scalable": icons_dir() / "atelier.svg"}
    for png in icons_dir().glob("atelier-*.png"):
        size = png.stem.removeprefix("atelier-")
        sources[f"{size}x{size}"] = png
    return sources


def installed_paths(data: Path) -> list[Path]:
    """Every file `install` writes under the data folder `data`."""
    paths = [data / "applications" / DESKTOP_FILE, data / "mime" / "packages" / "atelier.xml"]
    for folder, source in sorted(_icon_sources().items()):
        for kind, name in (("apps", APP_ICON), ("mimetypes", MIME_ICON)):
            paths.append(data / "icons" / "hicolor" / folder / kind / f"{name}{source.suffix}")
    return paths


def install(executable: Path, data: Path) -> list[Path]:
    """Write the desktop entry (starting `executable`), the MIME type and the icons under `data`,
    then refresh the desktop's caches; the written files."""
    if not (executable.is_file() and os.access(executable, os.X_OK)):
        raise FileNotFoundError(f"{executable}: not an executable file")
    entry = data / "applications" / DESKTOP_FILE
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_text(desktop_entry(executable.absolute()), encoding="utf-8")
    mime = data / "mime" / "packages" / "atelier.xml"
    mime.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_TEMPLATES / "atelier-mime.xml", mime)
    for folder, source in _icon_sources().items():
        for kind, name in (("apps", APP_ICON), ("mimetypes", MIME_ICON)):
            target = data / "icons" / "hicolor" / folder / kind / f"{name}{source.suffix}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    return installed_paths(data)


def uninstall(data: Path) -> list[Path]:
    """Remove what `install` wrote under `data` (and refresh the caches); the removed files."""
    removed = [path for path in installed_paths(data) if path.is_file()]
    for path in removed:
        path.unlink()
    return removed


def refresh_caches(data: Path) -> list[str]:
    """Rebuild the MIME database and the desktop entries' MIME cache under `data` (and an icon cache
    that already exists); one note per tool that is missing or failed."""
    icon_cache = data / "icons" / "hicolor" / "icon-theme.cache"
    commands = [["update-mime-database", str(data / "mime")],
                ["update-desktop-database", "-q", str(data / "applications")]]
    if icon_cache.is_file():  # creating one would hide icons other programs add later without updating it
        commands.append(["gtk-update-icon-cache", "-q", "-t", "-f", str(icon_cache.parent)])
    notes = []
    for command in commands:
        if not Path(command[-1]).is_dir():
            continue
        if shutil.which(command[0]) is None:
            notes.append(f"{command[0]} not found: the desktop picks the change up at the next login")
            continue
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            notes.append(f"{command[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return notes
