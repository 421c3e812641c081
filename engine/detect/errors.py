"""The error every detector raises for input the user can fix (unknown name, unreadable model)."""

from __future__ import annotations


class DetectorError(ValueError):
    """A detector that cannot be found, loaded or run on its input; the message names the file."""
