"""What a running job reports, and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TextIO

import numpy as np

from engine.settings import Job


@dataclass(frozen=True)
class Progress:
    """One sampling step done: step i of total for pass `batch` of `batches`, with a preview.

    A pass runs in `phases`: phase 0 generates the images, then come the hires pass (when the job
    upscales) and the job's detail passes, in that order.
    A phase may run in `parts` (a detail pass samples once per image and detection): this step
    belongs to part `part` of them. `label` names what runs when it is not the base generation."""

    step: int
    total: int
    batch: int = 0
    batches: int = 1
    preview: np.ndarray | None = field(default=None, repr=False)  # (h, w, 3) uint8
    phase: int = 0
    phases: int = 1
    part: int = 0
    parts: int = 1
    label: str = ""

    @property
    def fraction(self) -> float:
        """Overall progress in [0, 1]."""
        in_phase = (self.part + self.step / max(self.total, 1)) / max(self.parts, 1)
        return (self.batch + (self.phase + in_phase) / max(self.phases, 1)) / max(self.batches, 1)

    @property
    def text(self) -> str:
        """What runs, for a status line: "step 3/20", "hires 1/1: step 3/10" or "detail 1/1 (shapes 2/3): step 3/8"."""
        step = f"step {self.step}/{self.total}"
        return f"{self.label}: {step}" if self.label else step


@dataclass(frozen=True)
class GeneratedImage:
    """A result and the exact settings that reproduce it (its own seed)."""

    image: np.ndarray = field(repr=False)  # (H, W, 3) uint8
    job: Job
    notes: tuple[str, ...] = ()  # what the user should know, e.g. a detail pass that found nothing


class TextProgressBar:
    """A one-line text progress bar for a terminal stream (rewritten in place with '\\r')."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.drawn = False
        self._length = 0  # of the line drawn last: a shorter one must blank its tail

    def __call__(self, progress: Progress) -> None:
        filled = round(progress.fraction * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        line = f"[{bar}] {progress.fraction:4.0%} {progress.text} pass {progress.batch + 1}/{progress.batches}"
        self.stream.write("\r" + line.ljust(self._length))
        self.stream.flush()
        self._length = len(line)
        self.drawn = True

    def done(self) -> None:
        """End the bar's line (if one was drawn)."""
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False
            self._length = 0
