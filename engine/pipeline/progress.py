"""What a running job reports, and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TextIO

import numpy as np

from engine.settings import Job


@dataclass(frozen=True)
class Progress:
    """One sampling step done: step i of total for pass `batch` of `batches`, with a preview."""

    step: int
    total: int
    batch: int = 0
    batches: int = 1
    preview: np.ndarray | None = field(default=None, repr=False)  # (h, w, 3) uint8

    @property
    def fraction(self) -> float:
        """Overall progress in [0, 1]."""
        return (self.batch + self.step / max(self.total, 1)) / max(self.batches, 1)


@dataclass(frozen=True)
class GeneratedImage:
    """A result and the exact settings that reproduce it (its own seed)."""

    image: np.ndarray = field(repr=False)  # (H, W, 3) uint8
    job: Job


class TextProgressBar:
    """A one-line text progress bar for a terminal stream (rewritten in place with '\\r')."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.drawn = False

    def __call__(self, progress: Progress) -> None:
        filled = round(progress.fraction * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r[{bar}] {progress.fraction:4.0%} step {progress.step}/{progress.total} "
                          f"pass {progress.batch + 1}/{progress.batches}")
        self.stream.flush()
        self.drawn = True

    def done(self) -> None:
        """End the bar's line (if one was drawn)."""
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False
