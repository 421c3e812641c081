"""Create or refresh the project's virtual environment; used by `make run` and `make test`.

Order matters: torch is installed first (only when the venv has none, so a CUDA build someone
put there is kept), then the project with a constraint that pins the installed torch, so no
dependency can pull a different torch. A stamp keyed on the dependency spec makes a re-run
with nothing changed return at once.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TORCH = "torch==2.13.0"
# Installed without their declared dependencies, which pyproject.toml lists instead: mediapipe
# 0.10.21 is the last release whose wheel carries the legacy face/hand/pose models, and its own
# list would add opencv-contrib-python (a second cv2, not headless, with Qt plugins that clash with
# PySide6) and jax, which those models never import.
NO_DEPS = ("mediapipe==0.10.21",)


def _venv_python(venv_dir: Path) -> Path:
    return venv_dir / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def spec_hash(extras: str) -> str:
    """A hash of everything that decides what gets installed."""
    h = hashlib.sha256()
    for path in (ROOT / "pyproject.toml", ROOT / "setup.py", Path(__file__).resolve()):
        h.update(path.read_bytes())
    h.update(extras.encode())
    return h.hexdigest()[:16]


def installed_version(python: Path, dist: str) -> str | None:
    """The version of `dist` installed in the environment of `python`, or None."""
    code = (
        "import importlib.metadata as m, sys\n"
        "try: print(m.version(sys.argv[1]))\n"
        "except m.PackageNotFoundError: pass\n"
    )
    out = subprocess.run([str(python), "-c", code, dist], capture_output=True, text=True, check=True)
    return out.stdout.strip() or None


def pip(python: Path, *args: str) -> None:
    """Run pip inside the venv, failing loudly."""
    cmd = [str(python), "-m", "pip", "install", "--disable-pip-version-check", *args]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def setup(venv_dir: Path, extras: str, torch_spec: str) -> None:
    """Bring `venv_dir` up to date with the project (and `extras`) installed editable."""
    python = _venv_python(venv_dir)
    if not python.exists():
        print(f"creating {venv_dir}", flush=True)
        venv.EnvBuilder(with_pip=True).create(venv_dir)
    digest = spec_hash(extras)
    stamp = venv_dir / f".atelier-{extras or 'base'}.stamp"
    if stamp.exists() and stamp.read_text().strip() == digest and installed_version(python, "torch"):
        print(f"{venv_dir} is up to date", flush=True)
        return
    torch_version = installed_version(python, "torch")
    if torch_version is None:
        pip(python, torch_spec)
        torch_version = installed_version(python, "torch")
    else:
        print(f"keeping the installed torch {torch_version}", flush=True)
    constraints = venv_dir / "atelier-constraints.txt"
    constraints.write_text(f"torch=={torch_version}\n")
    target = f"{ROOT}[{extras}]" if extras else str(ROOT)
    pip(python, "-c", str(constraints), "-e", target)
    pip(python, "--no-deps", *NO_DEPS)
    stamp.write_text(digest + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv")
    parser.add_argument("--extras", default="", help="comma-separated extras, e.g. test")
    parser.add_argument("--torch", default=DEFAULT_TORCH, help="what to install when no torch is present")
    args = parser.parse_args()
    try:
        setup(args.venv, args.extras, args.torch)
    except subprocess.CalledProcessError as exc:
        print(f"setup failed: {' '.join(map(str, exc.cmd))} exited with {exc.returncode}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
