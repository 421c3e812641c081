"""The PyInstaller bundle (`make bundle` -> dist/atelier/): started headless from an empty folder
with a minimal environment. Skipped when no bundle was built (CI does not build it: see README)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "dist" / "atelier"
EXECUTABLE = BUNDLE / "atelier"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not EXECUTABLE.is_file(), reason="no bundle: run `make bundle` first")]


def test_bundle_renders_and_starts_the_studio_without_python(tmp_path: Path, smoke: ModuleType) -> None:
    times = smoke.smoke(EXECUTABLE, tmp_path)
    assert times.render_s < 120


def test_bundle_carries_the_resources_and_no_torchvision() -> None:
    internal = BUNDLE / "_internal"
    assert (internal / "atelier_resources" / "models" / "atelier-shapes" / "model_index.json").is_file()
    assert not (internal / "torchvision").exists()
    assert any(internal.rglob("libqoffscreen.so")) and any(internal.rglob("libqxcb.so"))
