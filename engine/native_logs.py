"""Quieting native libraries for the command line: mediapipe's C++ side (TFLite, absl) logs to file
descriptor 2 directly, which would bury a command's one-line answer or error."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to the null device for the block; Python exceptions still propagate
    and are reported after it."""
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
