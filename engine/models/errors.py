"""Typed errors for model files: every failure to read, recognise or load one names the path
and says why, so the GUI can show it instead of a traceback."""

from __future__ import annotations

from pathlib import Path


class ModelLoadError(Exception):
    """A model file or folder cannot be used: missing, unreadable, corrupt or not understood."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ModelNotFoundError(ModelLoadError):
    """The path no longer exists (moved, deleted, or a drive that is not mounted)."""


class UnsafeCheckpointError(ModelLoadError):
    """A pickle checkpoint that needs arbitrary Python code to load; it is refused."""


class UnknownModelError(ModelLoadError):
    """The file loads, but its tensors match no supported model family or kind."""


class IncompatibleModelError(ModelLoadError):
    """The model is valid but does not fit what it is combined with (e.g. ControlNet vs base)."""
