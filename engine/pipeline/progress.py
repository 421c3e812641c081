"""What a running job reports, and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field

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
