"""Where Atelier keeps user data: models, settings, recovery files.

`ATELIER_HOME` overrides the platform's user data directory (tests and portable installs use
it); nothing here creates folders as a side effect of importing.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "Atelier"
HOME_ENV = "ATELIER_HOME"
RESOURCES_DIR = Path(__file__).resolve().parent.parent / "resources"


def user_data_dir() -> Path:
    """The folder for the user's Atelier data (models, recovery, preferences)."""
    override = os.environ.get(HOME_ENV)
    return Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def user_models_dir() -> Path:
    """The default folder scanned for the user's own models."""
    return user_data_dir() / "models"


def builtin_models_dir() -> Path:
    """The folder of models that ship with Atelier."""
    return RESOURCES_DIR / "models"


def recovery_dir() -> Path:
    """The folder that holds the autosaved recovery project."""
    return user_data_dir() / "recovery"
