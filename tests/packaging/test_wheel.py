"""The wheel and sdist: built from the checkout, installed with pip into a fresh venv that holds the
same torch as `make test`, and started from an empty folder with no path into the source tree."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from engine import __version__

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _run(args: list[str | Path], timeout: float = 900, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=env,
                          **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{' '.join(map(str, args))}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _resource_files() -> list[str]:
    """Every shipped file under resources/, relative to it."""
    return sorted(p.relative_to(ROOT / "resources").as_posix() for p in (ROOT / "resources").rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts)


def _one(folder: Path, pattern: str) -> Path:
    found = list(folder.glob(pattern))
    assert len(found) == 1, f"{pattern} in {folder}: {found}"
    return found[0]


@pytest.fixture(scope="session")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist and the wheel `python -m build` makes (the wheel is built from the sdist), from a
    copy of the checkout: building writes an egg-info folder into the source."""
    source = tmp_path_factory.mktemp("source") / "atelier"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "out"))
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--outdir", out, source])
    return {"sdist": _one(out, "atelier-*.tar.gz"), "wheel": _one(out, "atelier-*.whl")}


@pytest.fixture(scope="session")
def wheel_venv(dists: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with torch held by the constraint `make test` uses, then the wheel."""
    venv_dir = tmp_path_factory.mktemp("wheel-venv")
    _run([sys.executable, "-m", "venv", venv_dir])
    python = venv_dir / "bin" / "python"
    constraints = venv_dir / "constraints.txt"
    constraints.write_text(f"torch=={importlib.metadata.version('torch')}\n")
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-c", constraints]
    _run([*pip, "torch"])
    _run([*pip, dists["wheel"]])
    return venv_dir


def test_sdist_carries_the_resources(dists: dict[str, Path]) -> None:
    with tarfile.open(dists["sdist"]) as tar:
        names = set(tar.getnames())
    top = f"atelier-{__version__}"
    missing = [f for f in _resource_files() if f"{top}/resources/{f}" not in names]
    assert not missing, f"not in the sdist: {missing}"
    assert {f"{top}/setup.py", f"{top}/pyproject.toml", f"{top}/README.md"} <= names


def test_wheel_carries_the_resources_as_a_package(dists: dict[str, Path]) -> None:
    with zipfile.ZipFile(dists["wheel"]) as wheel:
        names = set(wheel.namelist())
        entry_points = wheel.read(f"atelier-{__version__}.dist-info/entry_points.txt").decode()
    missing = [f for f in _resource_files() if f"atelier_resources/{f}" not in names]
    assert not missing, f"not in the wheel: {missing}"
    assert {n.split("/")[0] for n in names} == {"engine", "studio", "atelier_resources",
                                                 f"atelier-{__version__}.dist-info"}
    assert "atelier = studio.cli:main" in entry_points


def test_installed_wheel_finds_its_resources_in_site_packages(wheel_venv: Path, tmp_path: Path) -> None:
    out = _run([wheel_venv / "bin" / "python", "-c", "import engine.paths as p; print(p.RESOURCES_DIR)"],
               cwd=tmp_path)
    resources = Path(out.stdout.strip())
    assert resources.is_relative_to(wheel_venv) and resources.name == "atelier_resources"
    assert (resources / "models" / "atelier-shapes" / "model_index.json").is_file()


def test_installed_wheel_renders_and_starts_the_studio_from_anywhere(wheel_venv: Path, tmp_path: Path,
                                                                     smoke: ModuleType) -> None:
    # --version, a render with the built-in model (PNG size, pixels, version in its metadata) and the
    # window opening that PNG, each from an empty folder with a minimal environment.
    times = smoke.smoke(wheel_venv / "bin" / "atelier", tmp_path)
    assert times.render_s < 120


def test_installed_wheel_installs_its_desktop_entry(wheel_venv: Path, tmp_path: Path) -> None:
    atelier = wheel_venv / "bin" / "atelier"
    _run([atelier, "install-desktop", "--data-home", tmp_path / "share"], cwd=tmp_path)
    entry = (tmp_path / "share" / "applications" / "atelier.desktop").read_text()
    assert f"Exec={atelier} %f" in entry.splitlines()
    assert (tmp_path / "share" / "icons" / "hicolor" / "256x256" / "apps" / "atelier.png").is_file()
