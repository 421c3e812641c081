"""Errors a job reports to the user: what is missing, or what to change."""

from __future__ import annotations

from pathlib import Path


class NoModelError(Exception):
    """No base model is installed (or none matches the name the settings give)."""

    def __init__(self, models_dir: Path, detail: str = "") -> None:
        self.models_dir = Path(models_dir)
        text = f"no model installed: put a checkpoint in {self.models_dir}"
        super().__init__(f"{detail}; {text}" if detail else text)


class GenerationError(Exception):
    """A job cannot run as asked (out of memory, unsupported option); the message says what to change."""
