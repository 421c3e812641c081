"""Where Atelier keeps user data (models, settings, recovery files) and finds what it ships.

`ATELIER_HOME` overrides the platform's user data directory (tests and portable installs use
it); nothing here creates folders as a side effect of importing.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import platformdirs

APP_NAME = "Atelier"
HOME_ENV = "ATELIER_HOME"
# The name `resources/` is installed under by a wheel (setup.py's package_dir) and a bundle.
RESOURCES_PACKAGE = "atelier_resources"
_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def find_resources_dir() -> Path:
    """The folder of shipped data (model configs, tokenizer files, built-in models, icons): the
    PyInstaller bundle's copy in a bundle, the checkout's `resources/` when running from source,
    else the installed `atelier_resources` package."""
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and bundle is not None:
        return Path(bundle) / RESOURCES_PACKAGE
    if (_SOURCE_ROOT / "pyproject.toml").is_file() and (_SOURCE_ROOT / "resources").is_dir():
        return _SOURCE_ROOT / "resources"
    spec = importlib.util.find_spec(RESOURCES_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    # Nothing shipped alongside: loaders then name the missing file under the checkout's path.
    return _SOURCE_ROOT / "resources"


RESOURCES_DIR = find_resources_dir()


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


def icons_dir() -> Path:
    """The folder of Atelier's icon (SVG and PNG sizes) for the window and the desktop entry."""
    return RESOURCES_DIR / "icons"


def recovery_dir() -> Path:
    """The folder that holds the autosaved recovery project."""
    return user_data_dir() / "recovery"
