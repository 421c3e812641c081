"""Settings files: a job exported to and imported from JSON, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from engine.settings.codec import SettingsError
from engine.settings.job import Job, job_from_dict, job_to_dict

MAX_SETTINGS_BYTES = 4 * 1024 * 1024


class SettingsFileError(ValueError):
    """A settings file cannot be read: missing, too large, not JSON, or invalid settings."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def _process_umask() -> int:
    """The process's umask, read without changing it (os.umask would, for a moment, for every thread)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, then rename it over `path`. The file gets the
    permissions a plain open() would give it (those of the file it replaces, else 0o666 less the
    umask), not the owner-only ones of the temporary file."""
    path = Path(path)
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:
        mode = 0o666 & ~_process_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):  # POSIX; on Windows the temporary file is not owner-only to begin with
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def settings_to_json(job: Job) -> str:
    """The job as pretty-printed JSON text."""
    return json.dumps(job_to_dict(job), indent=2, ensure_ascii=False)


def settings_from_json(text: str, source: str = "settings") -> Job:
    """Parse JSON text into a job; a SettingsError names the bad field."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError("", f"{source} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise SettingsError("", f"{source} is nested too deeply to be settings") from None
    return job_from_dict(data)


def save_settings(job: Job, path: Path) -> None:
    """Export the job as a JSON settings file."""
    write_atomic(Path(path), settings_to_json(job).encode("utf-8"))


def load_settings(path: Path) -> Job:
    """Import a JSON settings file; raises SettingsFileError with the reason."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_SETTINGS_BYTES:
            raise SettingsFileError(path, f"too large for a settings file ({size} bytes)")
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise SettingsFileError(path, "no such file") from None
    except IsADirectoryError:
        raise SettingsFileError(path, "is a folder, not a settings file") from None
    except UnicodeDecodeError:
        raise SettingsFileError(path, "is not UTF-8 text") from None
    except OSError as exc:
        raise SettingsFileError(path, exc.strerror or str(exc)) from None
    try:
        return settings_from_json(text, source=path.name)
    except SettingsError as exc:
        raise SettingsFileError(path, str(exc)) from None
