"""The studio starts as a real X11 window under Xvfb and draws something."""

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
