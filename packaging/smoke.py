"""Start an installed Atelier the way a user does, far from the source tree, and check what it makes.

    python packaging/smoke.py PATH/TO/atelier [--json]

PATH/TO/atelier is a wheel venv's console script or the bundle's executable (dist/atelier/atelier).
Every step runs in an empty temporary folder with a minimal environment (no PYTHONPATH, no venv on
PATH, no hub settings, its own HOME and ATELIER_HOME, so no user model is found): `atelier --version`,
`atelier render` with the built-in model at its 128 px size, and the studio window under Qt's
offscreen platform opening that PNG (a screenshot, then quit). Prints each step's wall time;
exits 1 with the reason when a check fails. tests/packaging/ uses it on the wheel and the bundle.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "a large red star at the top left and a blue ring on a yellow background"
BUILTIN = "atelier-shapes"
SIZE = 128


class SmokeError(AssertionError):
    """An installed Atelier did not start or did not make what it should."""


@dataclass(frozen=True)
class SmokeTimes:
    """Wall seconds of each step, from process start to exit."""

    version_s: float
    render_s: float
    gui_s: float


def source_version() -> str:
    """The version in the checkout's engine/__init__.py (what the installed copy must report)."""
    match = re.search(r'^__version__ = "([^"]+)"', (ROOT / "engine" / "__init__.py").read_text(), re.M)
    if match is None:
        raise SmokeError("no __version__ in engine/__init__.py")
    return match.group(1)


def minimal_env(home: Path) -> dict[str, str]:
    """What a desktop session gives a program, and nothing of the developer's shell."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "ATELIER_HOME": str(home / "atelier"),
            "LANG": "C.UTF-8", "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(home)}


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.perf_counter()
    try:
        done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise SmokeError(f"{' '.join(args[1:])}: no exit after {timeout:.0f} s") from exc
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SmokeError(f"{' '.join(args[1:])} exited {done.returncode}:\n{done.stdout}\n{done.stderr[-4000:]}")
    return done, elapsed


def check_render(png: Path, version: str) -> None:
    """The PNG is the built-in model's size, shows a picture (not one flat colour), and its
    metadata names the version and the built-in model."""
    from PIL import Image

    if not png.is_file():
        raise SmokeError(f"render wrote no {png.name}")
    with Image.open(png) as image:
        image.load()
        size, texts, pixels = image.size, dict(image.text), image.convert("RGB")
    if size != (SIZE, SIZE):
        raise SmokeError(f"{png.name} is {size[0]}x{size[1]}, expected {SIZE}x{SIZE}")
    colours = pixels.getcolors(maxcolors=SIZE * SIZE) or []
    spread = [hi - lo for lo, hi in pixels.getextrema()]
    if len(colours) < 64 or max(spread) < 64:
        raise SmokeError(f"{png.name} looks blank: {len(colours)} colours, channel ranges {spread}")
    parameters = texts.get("parameters", "")
    if f"Version: atelier {version}" not in parameters:
        raise SmokeError(f"{png.name}: no 'Version: atelier {version}' in its parameters: {parameters!r}")
    job = json.loads(texts.get("atelier", "{}"))
    if BUILTIN not in json.dumps(job.get("model")):
        raise SmokeError(f"{png.name}: its settings name another model: {job.get('model')}")


def check_screenshot(png: Path) -> None:
    """The window drew itself: a picture of window size with more than a blank background."""
    from PIL import Image

    if not png.is_file():
        raise SmokeError("the studio saved no screenshot")
    with Image.open(png) as image:
        rgb = image.convert("RGB")
    if rgb.width < 400 or rgb.height < 300 or len(rgb.getcolors(maxcolors=1 << 20) or []) < 16:
        raise SmokeError(f"the studio's screenshot looks empty ({rgb.width}x{rgb.height})")


def smoke(atelier: Path, workdir: Path, timeout: float = 600) -> SmokeTimes:
    """Run the three steps with `atelier` in `workdir` (which should be empty); their times."""
    atelier = atelier.absolute()
    version = source_version()
    env = minimal_env(workdir / "home")
    (workdir / "home").mkdir(parents=True, exist_ok=True)
    out, version_s = _run([str(atelier), "--version"], workdir, env, timeout)
    if out.stdout.strip() != f"atelier {version}":
        raise SmokeError(f"--version printed {out.stdout.strip()!r}, expected 'atelier {version}'")
    image = workdir / "shapes.png"
    _, render_s = _run([str(atelier), "render", "--model", BUILTIN, "--prompt", PROMPT, "--seed", "7",
                        "--size", f"{SIZE}x{SIZE}", "-o", image.name], workdir, env, timeout)
    check_render(image, version)
    shot = workdir / "window.png"
    _, gui_s = _run([str(atelier), "gui", "--recover", "no", "--screenshot", str(shot), image.name], workdir, env,
                    timeout)
    check_screenshot(shot)
    return SmokeTimes(version_s=version_s, render_s=render_s, gui_s=gui_s)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("atelier", type=Path, help="the installed atelier executable")
    parser.add_argument("--json", action="store_true", help="print the times as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="atelier-smoke-") as tmp:
        try:
            times = smoke(args.atelier, Path(tmp))
        except SmokeError as exc:
            print(f"smoke: FAILED: {exc}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(asdict(times)))
    else:
        print(f"smoke: ok: --version {times.version_s:.2f} s, render {times.render_s:.2f} s, "
              f"studio start to screenshot {times.gui_s:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
