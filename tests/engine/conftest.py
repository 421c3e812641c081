"""Engine fixtures: tiny config folders and tiny random models of every family, built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from engine.models.families import Family  # noqa: E402
from engine.models.resources import ResourcePaths  # noqa: E402
from tests.engine.models.tiny import TinyModel, build_tiny, write_tiny_configs  # noqa: E402


@pytest.fixture(scope="session")
def tiny_resources(tmp_path_factory: pytest.TempPathFactory) -> ResourcePaths:
    """Config folders like resources/configs/ but with tiny sizes; the real tokenizer files."""
    return write_tiny_configs(tmp_path_factory.mktemp("configs"))


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[Family, TinyModel]:
    """One tiny model per family, saved as a diffusers folder and as an original single file."""
    out: Path = tmp_path_factory.mktemp("models")
    return {family: build_tiny(family, out, seed=i) for i, family in enumerate(Family)}
