"""Where the shipped resources are found: the checkout, a PyInstaller bundle, an installed wheel."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from engine import paths

ROOT = Path(__file__).resolve().parents[2]


def test_a_checkout_uses_its_resources_folder() -> None:
    assert paths.find_resources_dir() == ROOT / "resources" == paths.RESOURCES_DIR
    assert (paths.builtin_models_dir() / "atelier-shapes" / "model_index.json").is_file()
    assert (paths.icons_dir() / "atelier.svg").is_file()


def test_a_bundle_uses_its_own_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert paths.find_resources_dir() == tmp_path / "atelier_resources"


def test_an_installed_wheel_uses_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "site-packages" / "atelier_resources"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(package.parent))
    monkeypatch.setattr(paths, "_SOURCE_ROOT", tmp_path / "site-packages")  # no checkout around it
    assert paths.find_resources_dir() == package
