"""The studio as a user meets it: a real X11 window under Xvfb, driven with real X input events
(xdotool): a brush stroke on the canvas, Ctrl+Enter to generate with a tiny model, a screenshot."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, ImageStat

ROOT = Path(__file__).resolve().parents[2]
XVFB = shutil.which("Xvfb")
XDOTOOL = shutil.which("xdotool")
IMPORT = shutil.which("import")  # ImageMagick's screen grabber


@pytest.fixture
def xvfb_display():
    """Start Xvfb on a free display number and yield its DISPLAY string."""
    if XVFB is None:
        pytest.skip("Xvfb is not installed (.ci/run installs it)")
    for number in range(90, 140):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
            break
    proc = subprocess.Popen([XVFB, f":{number}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"Xvfb did not start: {proc.stderr.read().decode(errors='replace')}")
        time.sleep(0.05)
    yield f":{number}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.mark.xvfb
def test_app_opens_a_real_window(xvfb_display: str, tmp_path: Path) -> None:
    shot = tmp_path / "window.png"
    env = {**os.environ, "DISPLAY": xvfb_display, "QT_QPA_PLATFORM": "xcb", "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "studio", "gui", "--screenshot", str(shot)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    with Image.open(shot) as im:
        assert im.width >= 640 and im.height >= 400
        stddev = ImageStat.Stat(im.convert("L")).stddev[0]
    assert stddev > 5, "the window screenshot is blank"


def _xdotool(display: str, *args: str) -> str:
    out = subprocess.run([XDOTOOL, *args], env={**os.environ, "DISPLAY": display}, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"the app exited while waiting for {what}: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.xvfb
def test_draw_generate_and_screenshot_in_a_real_window(xvfb_display: str, tmp_path: Path, tiny_models) -> None:  # type: ignore[no-untyped-def]
    if XDOTOOL is None or IMPORT is None:
        pytest.skip("xdotool and ImageMagick are not installed (.ci/run installs them)")
    from PySide6.QtCore import QSettings

    from engine.models.families import Family
    from engine.project import load_project
    from engine.settings import Job, settings_to_json

    home = tmp_path / "home"
    shutil.copytree(tiny_models[Family.SD1].folder, home / "models" / "tiny-sd1")  # an installed user model
    prefs = QSettings(str(home / "preferences.ini"), QSettings.Format.IniFormat)
    prefs.setValue("job/last", settings_to_json(Job(prompt="a red star", width=64, height=64, steps=4,
                                                    sampler="euler", schedule="karras", seed=5)))
    prefs.sync()
    env = {**os.environ, "DISPLAY": xvfb_display, "QT_QPA_PLATFORM": "xcb", "HF_HUB_OFFLINE": "1",
           "ATELIER_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "studio", "gui", "--recover", "no"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        window = _xdotool(xvfb_display, "search", "--sync", "--onlyvisible", "--name", "^Atelier$").split()[0]
        time.sleep(1.0)  # the first layout pass and the canvas fit
        geometry = dict(line.split("=") for line in _xdotool(xvfb_display, "getwindowgeometry", "--shell",
                                                             window).split())
        cx = int(geometry["X"]) + int(geometry["WIDTH"]) // 2  # the canvas is centred in the window's middle
        cy = int(geometry["Y"]) + int(geometry["HEIGHT"]) // 2
        _xdotool(xvfb_display, "mousemove", str(cx - 60), str(cy - 60), "mousedown", "1",
                 "mousemove", str(cx - 20), str(cy - 20), "mousemove", str(cx + 20), str(cy + 20),
                 "mousemove", str(cx + 60), str(cy + 60), "mouseup", "1")
        _xdotool(xvfb_display, "key", "ctrl+Return")  # the pointer is over the app: it has the focus
        autosave = home / "recovery" / "session.atelier"

        def generated() -> bool:  # the app autosaves after every generation
            try:
                return autosave.exists() and len(load_project(autosave).history) >= 1
            except Exception:  # noqa: BLE001 (a half-written file is not an answer yet)
                return False

        _wait_for(generated, 180, "the generation to reach History", proc)
        shot = tmp_path / "screen.png"
        subprocess.run([IMPORT, "-window", "root", str(shot)], env=env, check=True, timeout=60)
        project = load_project(autosave)
        background = project.layers[0].pixels
        assert background[..., 3].any(), "the brush stroke did not reach the canvas"
        assert project.history[0].job.prompt == "a red star" and project.history[0].image.shape == (64, 64, 3)
        with Image.open(shot) as im:
            assert ImageStat.Stat(im.convert("L")).stddev[0] > 5, "the screenshot is blank"
        _xdotool(xvfb_display, "key", "ctrl+q")
        assert proc.wait(timeout=30) == 0
        assert not autosave.exists()  # a clean quit leaves no recovery file behind
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
