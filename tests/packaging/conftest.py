"""Fixtures for the packaging tests: packaging/smoke.py loaded as a module."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def smoke() -> ModuleType:
    """packaging/smoke.py, the check that starts an installed Atelier the way a user does."""
    spec = importlib.util.spec_from_file_location("atelier_smoke", ROOT / "packaging" / "smoke.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module
